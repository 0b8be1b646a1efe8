"""The measuring rules, table-driven: settle after a weight change, windows at least a scrape
long, every ready canary pod scraped, both arms' requests in a window (or twice its length),
counter resets and scrape gaps counted once."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.core import evidence, measuring
from tests.unit.fake_cluster import T0, make_plan

KEY = ("t", "podinfo-2")
PLAN = make_plan()  # interval 15 s; the settle time below is 12 s
SETTLE = timedelta(seconds=12)


@dataclass(frozen=True)
class Report:
    """At second ``at`` a reconcile reported this."""

    at: int
    judged: bool = True
    weight: int | None = None
    ready: int = 1
    phase: str | None = None
    """The phase reported (None: Progressing when ``judged``, else Succeeded)."""

    @property
    def reported(self) -> str:
        return self.phase or ("Progressing" if self.judged else "Succeeded")


@dataclass(frozen=True)
class Scrape:
    """At second ``at`` the snapshot held these pods' cumulative requests; ``expect`` is the
    ``(canary, stable)`` requests the tick hands to the Rollout (None: nothing yet)."""

    at: int
    pods: dict[str, int]
    expect: tuple[int, int] | None = None
    asked: bool = True
    """Whether the snapshot's query asked for the Rollout's pods (False: sent before it was
    judged)."""
    buckets: bool = True
    """Whether it asked for their latency buckets (each request in one bucket)."""


@dataclass(frozen=True)
class Fail:
    """At second ``at`` Prometheus was out: ``OUTAGE_TICKS`` ticks in a row failed."""

    at: int


def _snapshot(
    pods: dict[str, int], buckets: bool = False
) -> dict[evidence.PodKey, evidence.PodCounters]:
    """``{"s1": 100, "c1": 10}``: s-pods are stable's (podinfo), c-pods the canary's; with
    ``buckets``, every request in the 4th bucket."""
    return {
        evidence.PodKey("t", "podinfo" if pod[0] == "s" else "podinfo-canary", pod): (
            evidence.PodCounters(
                requests=requests, buckets=_cumulative(requests) if buckets else ()
            )
        )
        for pod, requests in pods.items()
    }


def _cumulative(requests: int) -> tuple[int, ...]:
    return (0, 0, 0) + (requests,) * 23


CASES: dict[str, list[Report | Scrape | Fail]] = {
    "the first window is a full interval after the first scrape": [
        Report(0, weight=10),
        Scrape(0, {"s1": 100, "c1": 10}),
        Scrape(15, {"s1": 200, "c1": 20}, expect=(10, 100)),
    ],
    "counts scraped while judging settles are dropped; the window starts after": [
        Report(0, weight=10),
        Scrape(0, {"s1": 100, "c1": 10}),
        Scrape(10, {"s1": 150, "c1": 15}),
        Scrape(15, {"s1": 200, "c1": 20}),
        Scrape(25, {"s1": 250, "c1": 25}, expect=(10, 100)),
    ],
    "counts while settling after a weight change are not credited to the new step": [
        Report(0, weight=10),
        Scrape(0, {"s1": 100, "c1": 10}),
        Scrape(15, {"s1": 200, "c1": 20}, expect=(10, 100)),
        Report(16, weight=50),
        Scrape(20, {"s1": 300, "c1": 60}),
        Scrape(30, {"s1": 400, "c1": 100}),
        Scrape(35, {"s1": 450, "c1": 130}, expect=(70, 150)),
    ],
    "a reconcile at the same weight does not restart the settle time": [
        Report(0, weight=10),
        Scrape(0, {"s1": 100, "c1": 10}),
        Report(10, weight=10),
        Scrape(15, {"s1": 200, "c1": 20}, expect=(10, 100)),
    ],
    "a window shorter than the analysis interval stays open": [
        Report(0, weight=10),
        Scrape(0, {"s1": 0, "c1": 0}),
        Scrape(12, {"s1": 10, "c1": 1}),
        Scrape(14, {"s1": 20, "c1": 2}),
        Scrape(15, {"s1": 30, "c1": 3}, expect=(3, 30)),
        Scrape(29, {"s1": 40, "c1": 4}),
        Scrape(30, {"s1": 50, "c1": 5}, expect=(2, 20)),
    ],
    "a scrape gap of the canary pod keeps the window open; its counts arrive later": [
        Report(0, weight=10),
        Scrape(0, {"s1": 100, "c1": 10}),
        Scrape(15, {"s1": 200}),
        Scrape(20, {"s1": 250, "c1": 25}, expect=(15, 150)),
    ],
    "a window with stable's requests only (a canary scrape lost) waits for the canary's": [
        Report(0, weight=10),
        Scrape(0, {"s1": 100, "c1": 10}),
        Scrape(15, {"s1": 200, "c1": 10}),
        Scrape(20, {"s1": 250, "c1": 25}, expect=(15, 150)),
    ],
    "a window with the canary's requests only (a stable scrape lost) waits for stable's": [
        Report(0, weight=10),
        Scrape(0, {"s1": 100, "c1": 10}),
        Scrape(15, {"s1": 100, "c1": 20}),
        Scrape(20, {"s1": 250, "c1": 25}, expect=(15, 150)),
    ],
    "a canary that gets nothing is still judged, at twice the window": [
        Report(0, weight=10),
        Scrape(0, {"s1": 100, "c1": 10}),
        Scrape(15, {"s1": 200, "c1": 10}),
        Scrape(29, {"s1": 300, "c1": 10}),
        Scrape(30, {"s1": 310, "c1": 10}, expect=(0, 210)),
    ],
    "at 100% a window of the canary's requests alone closes on time": [
        Report(0, weight=100),
        Scrape(0, {"s1": 100, "c1": 10}),
        Scrape(15, {"s1": 100, "c1": 110}, expect=(100, 0)),
    ],
    "a new canary pod not yet scraped keeps the window open": [
        Report(0, weight=10, ready=2),
        Scrape(0, {"s1": 100, "c1": 10}),
        Scrape(15, {"s1": 200, "c1": 20}),
        Scrape(20, {"s1": 250, "c1": 25, "c2": 4}, expect=(19, 150)),
    ],
    "a restarted canary pod counts from zero again": [
        Report(0, weight=10),
        Scrape(0, {"s1": 100, "c1": 50}),
        Scrape(15, {"s1": 200, "c1": 7}, expect=(7, 100)),
    ],
    "a Rollout that stops being judged drops its open window and its first tick after": [
        Report(0, weight=10),
        Scrape(0, {"s1": 100, "c1": 10}),
        Scrape(13, {"s1": 150, "c1": 15}),
        Report(14, judged=False),
        Scrape(15, {"s1": 200, "c1": 20}),
        Report(16, weight=10),
        # Its pods were not asked for meanwhile (the query holds the judged Rollouts' only):
        # the first snapshot to hold them again is a baseline, not a delta.
        Scrape(30, {"s1": 300, "c1": 30}),
        Scrape(45, {"s1": 400, "c1": 40}, expect=(10, 100)),
    ],
    "a Rollout's first snapshot gives its pods' lifetime counts to no window": [
        Report(0, weight=5),
        Scrape(0, {}, asked=False),  # a slow query sent before the Rollout was judged
        Scrape(20, {"s1": 38000, "c1": 16}),
        Scrape(35, {"s1": 38300, "c1": 31}, expect=(15, 300)),
    ],
    "a Rollout whose pods have served nothing yet is measured from its next snapshot": [
        Report(0, weight=10),
        Scrape(0, {}),
        Scrape(15, {"s1": 50, "c1": 5}, expect=(5, 50)),
    ],
    "counts reaching back before a weight change (no snapshot meanwhile) go to no window": [
        Report(0, weight=10),
        Scrape(0, {"s1": 100, "c1": 10}),
        Scrape(15, {"s1": 200, "c1": 20}, expect=(10, 100)),
        Report(30, weight=50),  # Prometheus unreachable from 15 s to 60 s
        Scrape(60, {"s1": 600, "c1": 400}),
        Scrape(75, {"s1": 650, "c1": 450}, expect=(50, 50)),
    ],
    "after an outage a new window starts at the first answer, and waits for both arms": [
        Report(0, weight=20),
        Scrape(0, {"s1": 100, "c1": 20}),
        Scrape(15, {"s1": 200, "c1": 40}, expect=(20, 100)),
        Scrape(17, {"s1": 200, "c1": 45}),
        Fail(19),  # Prometheus out, then restarted: its targets loaded, stable's pod first
        Scrape(40, {"s1": 200, "c1": 45}),
        Scrape(47, {"s1": 450, "c1": 45}),
        Scrape(55, {"s1": 460, "c1": 45}),
        Scrape(56, {"s1": 460, "c1": 100}, expect=(55, 260)),
    ],
    "after an outage a canary that really gets nothing is judged at twice the window": [
        Report(0, weight=20),
        Scrape(0, {"s1": 100, "c1": 20}),
        Scrape(15, {"s1": 200, "c1": 40}, expect=(20, 100)),
        Fail(17),
        Scrape(40, {"s1": 200, "c1": 40}),
        Scrape(50, {"s1": 300, "c1": 40}),
        Scrape(69, {"s1": 400, "c1": 40}),
        Scrape(70, {"s1": 410, "c1": 40}, expect=(0, 210)),
    ],
    "a window closes only on a snapshot with its buckets": [
        Report(0, weight=10),
        Scrape(0, {"s1": 100, "c1": 10}),
        Scrape(13, {"s1": 150, "c1": 15}, buckets=False),
        Scrape(15, {"s1": 200, "c1": 20}, buckets=False),
        Scrape(17, {"s1": 250, "c1": 25}, expect=(15, 150)),
    ],
    "a window begun on a snapshot without its buckets begins again on one with them": [
        Report(0, weight=10),
        Scrape(0, {"s1": 100, "c1": 10}),
        Scrape(11, {"s1": 150, "c1": 15}, buckets=False),  # the settle's last snapshot
        Scrape(13, {"s1": 170, "c1": 17}, buckets=False),
        Scrape(14, {"s1": 180, "c1": 18}),
        Scrape(28, {"s1": 300, "c1": 30}),
        Scrape(29, {"s1": 310, "c1": 31}, expect=(13, 130)),
    ],
}


@pytest.mark.parametrize("steps", CASES.values(), ids=CASES.keys())
def test_measuring_hands_out_complete_windows_only(steps: list[Report | Scrape | Fail]) -> None:
    """Each scrape hands the Rollout exactly the counts the table expects, or nothing."""
    state = measuring.State(settle=SETTLE)
    for step in steps:
        now = T0 + timedelta(seconds=step.at)
        if isinstance(step, Fail):
            state = measuring.unanswered(state)
            continue
        if isinstance(step, Report):
            report = measuring.Reconciled.of(PLAN, step.reported, step.weight, step.ready)
            state = measuring.reconciled(state, KEY, report, now)
            continue
        asked = (KEY,) if step.asked else ()
        bucketed = asked if step.buckets else ()
        snapshot = _snapshot(step.pods, step.buckets)
        state, ready = measuring.advance(state, snapshot, now, asked, bucketed)
        got = ready.get(KEY)
        counts = None if got is None else (got.canary.requests, got.stable.requests)
        assert counts == step.expect, f"at {step.at}s"
        if got is not None:  # the window's buckets span exactly its counts
            assert (sum(got.canary.buckets), sum(got.stable.buckets)) == counts


def test_only_judged_rollouts_with_a_plan_are_measured() -> None:
    """A Rollout outside the judged phases, or gone, is not measured (while Initializing its
    pods are asked for, for a baseline); its Deployments still lead back to it."""
    state = measuring.State()
    state = measuring.reconciled(state, KEY, measuring.Reconciled.of(PLAN, "Pending", None, 0), T0)
    assert measuring.judged(state) == {}
    assert measuring.owner(state, "t", "podinfo-canary") == KEY
    assert measuring.owner(state, "t", "podinfo") == KEY
    assert measuring.owner(state, "u", "podinfo") is None
    ticks = range(measuring.WATCH_EVERY)
    assert [measuring.queried(state, tick) for tick in ticks] == [{}] * len(ticks)
    starting = measuring.Reconciled.of(PLAN, "Initializing", 0, 0)
    state = measuring.reconciled(state, KEY, starting, T0)
    assert measuring.judged(state) == {}  # not judged yet: only asked for, for a baseline
    asked = [measuring.queried(state, tick) for tick in ticks]
    assert sorted(asked, key=len) == [{}] * (len(ticks) - 1) + [{KEY: PLAN}]  # on its turn
    judged = measuring.Reconciled.of(PLAN, "Paused", None, 0)
    state = measuring.reconciled(state, KEY, judged, T0)
    assert measuring.judged(state) == {KEY: PLAN}
    assert [measuring.queried(state, tick) for tick in ticks] == [{KEY: PLAN}] * len(ticks)
    state = measuring.reconciled(state, KEY, measuring.Reconciled(), T0)
    assert measuring.judged(state) == {}
    assert [measuring.queried(state, tick) for tick in ticks] == [{}] * len(ticks)
    assert measuring.owner(state, "t", "podinfo") == KEY


def test_rollouts_watched_for_a_baseline_are_spread_over_the_ticks() -> None:
    """300 Rollouts starting at once: over WATCH_EVERY ticks in a row each is asked for on
    exactly one, about a fifth on each; a judged Rollout on every tick. Between its turns a
    watched Rollout's pods stay in the baseline (they are forgotten after KEEP_ABSENT
    snapshots without them)."""
    state = measuring.State()
    starting = measuring.Reconciled.of(PLAN, "Initializing", 0, 0)
    keys = [("t", f"app-{i}") for i in range(300)]
    for key in keys:
        state = measuring.reconciled(state, key, starting, T0)
    judged = ("u", "web")
    state = measuring.reconciled(state, judged, measuring.Reconciled.of(PLAN, "Paused", 5, 1), T0)
    for first in (0, 7):
        ticks = [measuring.queried(state, tick) for tick in range(first, first + 5)]
        assert all(judged in asked for asked in ticks)
        turns = Counter(key for asked in ticks for key in asked if key != judged)
        assert turns == Counter(keys)
        assert all(40 <= len(asked) - 1 <= 80 for asked in ticks), [len(a) for a in ticks]
    assert measuring.WATCH_EVERY == 5 < evidence.KEEP_ABSENT


@pytest.mark.parametrize(
    ("tick", "every"), [(2, 5), (1, 10), (5, 2), (3, 3), (10, 1), (15, 1), (60, 1), (0.1, 20)]
)
def test_a_watched_rollout_is_asked_for_about_every_ten_seconds_whatever_the_tick(
    tick: float, every: int
) -> None:
    """The turn is counted in time: at a 15 s tick a watched Rollout is asked for on every
    tick (its baseline would be 75 s old on one tick in five), at a 5 s tick on one in two; at
    a very short tick never so seldom that its pods' counters are forgotten meanwhile."""
    assert measuring.watch_every(timedelta(seconds=tick)) == every
    assert every <= evidence.KEEP_ABSENT // 2
    state = measuring.State()
    starting = measuring.Reconciled.of(PLAN, "Initializing", 0, 0)
    keys = [("t", f"app-{i}") for i in range(50)]
    for key in keys:
        state = measuring.reconciled(state, key, starting, T0)
    ticks = [measuring.queried(state, n, every) for n in range(every)]
    assert Counter(key for asked in ticks for key in asked) == Counter(keys)


EARLY: dict[str, list[Report | Scrape]] = {
    "counts while settling are offered early, summed since the weight change": [
        Report(0, weight=10),
        Scrape(0, {"s1": 100, "c1": 10}),
        Scrape(5, {"s1": 150, "c1": 15}, expect=(5, 50)),
        Scrape(10, {"s1": 200, "c1": 20}, expect=(10, 100)),
    ],
    "a tick that completes a window offers its counts early too; the sum goes on after it": [
        Report(0, weight=10),
        Scrape(0, {"s1": 100, "c1": 10}),
        Scrape(15, {"s1": 200, "c1": 20}, expect=(10, 100)),
        Scrape(20, {"s1": 250, "c1": 25}, expect=(15, 150)),
    ],
    "a weight change starts the sum again": [
        Report(0, weight=10),
        Scrape(0, {"s1": 100, "c1": 10}),
        Scrape(5, {"s1": 150, "c1": 15}, expect=(5, 50)),
        Report(6, weight=20),
        Scrape(10, {"s1": 190, "c1": 25}, expect=(10, 40)),
    ],
    "nothing early while a ready canary pod is not scraped yet, then all it served": [
        Report(0, weight=10, ready=2),
        Scrape(0, {"s1": 100, "c1": 10}),
        Scrape(5, {"s1": 150, "c1": 15}),
        Scrape(10, {"s1": 200, "c1": 20, "c2": 4}, expect=(14, 100)),
    ],
    "nothing early while the canary has served nothing since the weight change": [
        Report(0, weight=10),
        Scrape(0, {"s1": 100, "c1": 10}),
        Scrape(5, {"s1": 150, "c1": 10}),
    ],
    "a tick bringing either arm's requests offers the sum; one bringing neither does not": [
        Report(0, weight=10),
        Scrape(0, {"s1": 100, "c1": 10}),
        Scrape(4, {"s1": 100, "c1": 15}, expect=(5, 0)),  # stable's pod not scraped again yet
        Scrape(8, {"s1": 190, "c1": 15}, expect=(5, 90)),  # now it is: compare again
        Scrape(10, {"s1": 190, "c1": 15}),
    ],
    "nothing early from a tick reaching back well before the weight change": [
        Report(0, weight=10),
        Scrape(0, {"s1": 100, "c1": 10}),
        Report(30, weight=50),  # Prometheus unreachable from 0 s to 45 s
        Scrape(45, {"s1": 1000, "c1": 50}),
        Scrape(50, {"s1": 1050, "c1": 80}, expect=(30, 50)),
    ],
    "nothing early from a Rollout's first snapshot (its pods' lifetime counts)": [
        Report(0, weight=5),
        Scrape(0, {}, asked=False),
        Scrape(5, {"s1": 38000, "c1": 16}),
        Scrape(10, {"s1": 38100, "c1": 21}, expect=(5, 100)),
    ],
    "asked for while Initializing, the first step's first counts are offered at once": [
        Report(0, judged=False, phase="Initializing", weight=0, ready=0),
        Scrape(0, {"s1": 38000}),  # the baseline: no canary pod has served yet
        Report(3, weight=5),
        Scrape(5, {"s1": 38100, "c1": 16}, expect=(16, 100)),
    ],
    "watched on its turn only, the first step's first tick counts from its last turn": [
        Report(0, judged=False, phase="Initializing", weight=0, ready=0),
        Scrape(0, {"s1": 38000}),
        Scrape(2, {}, asked=False),  # not its turn: its pods were not asked for
        Scrape(4, {}, asked=False),
        Report(5, weight=5),
        Scrape(6, {"s1": 38150, "c1": 16}, expect=(16, 150)),
    ],
    "a query sent before Initializing was asked then is still only the baseline": [
        Report(0, judged=False, phase="Initializing", weight=0, ready=0),
        Scrape(1, {}, asked=False),
        Report(3, weight=5),
        Scrape(5, {"s1": 38100, "c1": 16}),
        Scrape(10, {"s1": 38200, "c1": 21}, expect=(5, 100)),
    ],
    "a Rollout that left Initializing for a phase not asked for has its baseline again": [
        Report(0, judged=False, phase="Initializing", weight=0, ready=0),
        Scrape(0, {"s1": 38000}),
        Report(2, judged=False, phase="Pending"),  # the spec turned invalid: not asked for
        Scrape(4, {}, asked=False),
        Report(10, judged=False, phase="Initializing", weight=0, ready=0),
        Report(11, weight=5),
        Scrape(14, {"s1": 39000, "c1": 16}),  # the first since it was asked for again
        Scrape(18, {"s1": 39100, "c1": 21}, expect=(5, 100)),
    ],
    "nothing early once the Rollout is no longer judged": [
        Report(0, weight=10),
        Scrape(0, {"s1": 100, "c1": 10}),
        Report(3, judged=False),
        Scrape(5, {"s1": 150, "c1": 15}),
    ],
}


@pytest.mark.parametrize("steps", EARLY.values(), ids=EARLY.keys())
def test_measuring_offers_early_counts_since_the_weight_changed(
    steps: list[Report | Scrape],
) -> None:
    """Each scrape offers the Rollout, for a fail-only look, exactly the counts the table
    expects (since its weight changed), or nothing."""
    state = measuring.State(settle=SETTLE)
    for step in steps:
        now = T0 + timedelta(seconds=step.at)
        if isinstance(step, Report):
            report = measuring.Reconciled.of(PLAN, step.reported, step.weight, step.ready)
            state = measuring.reconciled(state, KEY, report, now)
            continue
        asked = (KEY,) if step.asked else ()
        state, _ = measuring.advance(state, _snapshot(step.pods), now, asked)
        got = measuring.early(state).get(KEY)
        counts = None if got is None else (got.canary.requests, got.stable.requests)
        assert counts == step.expect, f"at {step.at}s"


def test_a_route_leads_back_to_the_rollout_last_planned_to_steer_it() -> None:
    """The route of a planned Rollout leads back to it; a later Rollout of the same route
    takes it over."""
    plan = make_plan(traffic={"routeName": "podinfo-route"})
    state = measuring.State()
    state = measuring.reconciled(state, KEY, measuring.Reconciled.of(plan, "Pending", None, 0), T0)
    assert measuring.route_owner(state, "t", "podinfo-route") == KEY
    assert measuring.route_owner(state, "t", "podinfo") is None
    assert measuring.route_owner(state, "u", "podinfo-route") is None
    later = ("t", "podinfo-3")
    state = measuring.reconciled(
        state, later, measuring.Reconciled.of(plan, "Pending", None, 0), T0
    )
    assert measuring.route_owner(state, "t", "podinfo-route") == later


def test_forgetting_a_deleted_rollout_drops_its_track_deployments_and_route() -> None:
    """A forgotten Rollout is not measured and nothing leads back to it; what leads to another
    Rollout stays; forgetting an unknown Rollout changes nothing."""
    state = measuring.State()
    judged = measuring.Reconciled.of(PLAN, "Progressing", 10, 1)
    state = measuring.reconciled(state, KEY, judged, T0)
    other = ("u", "web")
    state = measuring.reconciled(state, other, judged, T0)
    assert measuring.forget(state, ("t", "never-seen")) is state
    state = measuring.forget(state, KEY)
    assert measuring.judged(state) == {other: PLAN}
    assert measuring.owner(state, "t", "podinfo") is None
    assert measuring.owner(state, "t", "podinfo-canary") is None
    assert measuring.route_owner(state, "t", PLAN.route_name) is None
    assert measuring.owner(state, "u", "podinfo") == other
    assert measuring.route_owner(state, "u", PLAN.route_name) == other
    assert set(state.tracks) == {other}


@given(
    gaps=st.lists(st.integers(1, 9), min_size=5, max_size=60),
    served=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), min_size=60, max_size=60),
    change_at=st.integers(0, 59),
)
def test_buckets_asked_for_by_the_rule_span_exactly_each_windows_counts(
    gaps: list[int], served: list[tuple[int, int]], change_at: int
) -> None:
    """Ticks at random times, the weight changed once on the way, each query asking for the
    buckets ``measuring.bucketed`` picks (the answer's time a second after it is sent): every
    window handed out has exactly one bucketed response for each request it counts."""
    state = measuring.State(settle=SETTLE)
    state = measuring.reconciled(
        state, KEY, measuring.Reconciled.of(PLAN, "Progressing", 10, 1), T0
    )
    at, canary, stable = T0, 0, 0
    for index, gap in enumerate(gaps):
        at += timedelta(seconds=gap)
        if index == change_at:
            report = measuring.Reconciled.of(PLAN, "Progressing", 50, 1)
            state = measuring.reconciled(state, KEY, report, at)
        wanted = measuring.bucketed(state, [KEY], at, timedelta(seconds=2))
        canary, stable = canary + served[index][0], stable + served[index][1]
        snapshot = _snapshot({"c1": canary, "s1": stable}, KEY in wanted)
        state, ready = measuring.advance(state, snapshot, at + timedelta(seconds=1), [KEY], wanted)
        if (got := ready.get(KEY)) is not None:
            assert sum(got.canary.buckets) == got.canary.requests
            assert sum(got.stable.buckets) == got.stable.requests


def test_a_steady_rollout_s_buckets_are_asked_for_near_its_windows_ends_only() -> None:
    """Every 2 s for 4 minutes at one weight (15 s windows): the buckets are asked for on
    the ticks where a window may begin or end, and every window is still handed out."""
    state = measuring.State(settle=SETTLE)
    state = measuring.reconciled(
        state, KEY, measuring.Reconciled.of(PLAN, "Progressing", 10, 1), T0
    )
    asked = windows = 0
    for tick in range(1, 121):
        at = T0 + timedelta(seconds=2 * tick)
        wanted = measuring.bucketed(state, [KEY], at, timedelta(seconds=2))
        asked += KEY in wanted
        snapshot = _snapshot({"c1": 10 * tick, "s1": 90 * tick}, KEY in wanted)
        state, ready = measuring.advance(state, snapshot, at, [KEY], wanted)
        windows += KEY in ready
    assert windows == 14  # the first at 26 s (settled at 10 s), then one every 16 s
    assert asked <= 36, asked


def test_buckets_are_asked_for_a_baseline_and_after_an_outage() -> None:
    """A Rollout watched for its baseline, or judged but not yet seen, gets its buckets asked
    for, and so does every Rollout after an outage (the next answer begins new windows)."""
    state = measuring.State(settle=SETTLE)
    watched, judged = ("t", "a"), KEY
    state = measuring.reconciled(
        state, watched, measuring.Reconciled.of(PLAN, "Initializing", None, 0), T0
    )
    assert measuring.bucketed(state, [watched, judged], T0, timedelta(seconds=2)) == {
        watched,
        judged,
    }
    state = measuring.reconciled(
        state, judged, measuring.Reconciled.of(PLAN, "Progressing", 10, 1), T0
    )
    for second in range(0, 28, 2):
        at = T0 + timedelta(seconds=second)
        state, _ = measuring.advance(
            state, _snapshot({"c1": second, "s1": 9 * second}, True), at, [judged]
        )
    later = T0 + timedelta(seconds=28)  # two seconds into a window (the first closed at 26 s)
    assert measuring.bucketed(state, [watched, judged], later, timedelta(seconds=2)) == {watched}
    outage = measuring.unanswered(state)
    assert measuring.bucketed(outage, [watched, judged], later, timedelta(seconds=2)) == {
        watched,
        judged,
    }
