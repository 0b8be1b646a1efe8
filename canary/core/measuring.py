"""When a Rollout's measured counts are ready to be judged: the measuring rules, pure.

The controller keeps one frozen :class:`State`. After each reconcile it calls
:func:`reconciled` with what the reconciler learned (:class:`Reconciled`); on each measuring
tick it asks :func:`queried` which Rollouts to query for, runs ONE Prometheus query, and calls
:func:`advance` with the snapshot, which returns the next state and, for each Rollout whose
window is complete, the counts its two arms served since it was last judged. The rules:

- **Settle after a weight change** (or when judging begins): for ``settle`` (a scrape interval
  and a little) the counters Prometheus holds were scraped partly at the old weight, so nothing
  is counted and the window starts over afterwards.
- **Windows at least one scrape long**: Prometheus scrapes each pod at its own moment, so only
  a window of at least ``max(interval, settle)`` holds every pod's share.
- **Every ready canary pod scraped**: until as many canary pods appear in the snapshot as are
  ready, stable's count has no counterpart; the window stays open.
- **Both arms' requests in a window**: at a weight that sends both arms traffic, a window that
  holds one arm's requests only most likely missed the other's scrape (Prometheus loses a
  scrape now and then, and scrapes each pod at its own moment). Judged, that arm's lag would
  read as "the canary gets no traffic" (the traffic-share check) or, with no stable requests,
  leave the absolute SLO checks with nothing to tell a breach both arms share. So it stays
  open until it holds both, or is ``LONGEST_WINDOW`` times its length: a canary that really gets
  nothing is still caught, one window later (on the twin with staggered scrapes, a healthy
  canary was rolled back for "received 0 of 1584 requests" in 2 of 600 seeds).
- **A baseline before the first step**: the tick asks for a Rollout's pods from
  ``Initializing`` on (:data:`WATCHED_PHASES`: the canary is being started, at weight 0), not
  only once its steps are judged, so the counters are in hand before the first weight is set.
  A Rollout first asked for once judged has no baseline: that first snapshot only becomes one,
  and the canary failures Prometheus had already scraped by then were never counted (up to 10
  at 100 req/s in runs K and K2 at N = 1000, docs/benchmarks.md). A Rollout is watched about
  once per :data:`WATCH_SPAN` (on its own turn: one tick in :func:`watch_every`, 5 at the
  default 2 s tick), so that many starting at once do not weigh on
  the query that judges the others; between its turns its pods' last counters stay in the
  baseline (``canary.core.evidence`` keeps an absent pod's), so its first step's first tick
  counts from its last turn: the canary's share of that is all the step's (it had weight 0),
  the stable's a few seconds more (which the early look allows, ``judge.evaluate_early``; no
  window counts it, the settle time drops it).
- **A new window after an outage** (the controller calls :func:`unanswered` once Prometheus
  could not be read for ``OUTAGE_TICKS`` ticks in a row, when it tells the judged Rollouts):
  Prometheus may have been restarted, and then scrapes each pod again only once its targets
  are loaded and at the pod's own moment, up to 15 s after it first answers (5 s to load
  them, a 10 s interval). So its first answers hold one arm's new counts beside the other's
  from before the outage, and a window open across it would be judged on them: twice its
  length by then, so judged on one arm's alone (the chaos test: healthy canaries at 20% rolled
  back for "received 0 of 1158 requests", then, with the window's clock merely started again,
  for "0 of 990": the canary pod's first scrape came 13 s after the first answer). The open
  window ends there: its counts go to no window (the early look, summed since the weight
  changed, keeps them), and a new one starts with the first answer's counts, under the rules
  above: a settled length, and both arms' requests or twice its length. A single failed tick
  is not an outage and ends nothing.
- **Latency buckets near a window's ends only**: the buckets are nearly all of Prometheus'
  work on the tick's query (1.800 of 1.835 s at N = 1000, docs/benchmarks.md), and a window
  needs them only at its two ends. So :func:`bucketed` picks the Rollouts whose buckets the
  query asks for: those whose window may begin (the settle time ends) or close (its length is
  reached) by about when the answer is due, and any not yet judged on a settled window (watched,
  first seen, after an outage); the others come with their requests and failures only
  (``canary.core.evidence`` keeps their last buckets). A window begins only on a snapshot with
  the Rollout's buckets (else it begins again on the next that has them) and closes only on
  one, so its buckets span exactly its counts. Early looks see the buckets served since the
  last snapshot that held them, when one does: a latency regression's early look waits for
  those ticks (an error regression's does not).
- **Counter resets, new pods, scrape gaps** are ``canary.core.evidence``'s rules.
- **Early looks**: a canary that is clearly failing must not wait for the settle time and a
  full window. So every tick also adds its counts to what the step served since its weight
  changed (settle included); when either arm's grew on a tick and the canary has served some,
  with every ready canary pod scraped, :func:`early` offers them to the judge's fail-only look
  (``judge.evaluate_early``), which has its own share of the false-rollback budget. Either
  arm: Prometheus scrapes each pod at its own moment, so stable's requests often come a tick
  after the canary's, and a comparison with stable can only fail once they have (run H in
  docs/benchmarks.md: looks that followed canary requests only left its three slowest bad
  Rollouts waiting for their canary's next scrape, 10 s). The look is an e-process, so one
  more look spends no budget. Also on a tick that completes a window: the look (all counts
  since the weight change) may fail before the window (the settled counts only) does; the
  reconcile takes the look first, then the window (until run V, looks skipped those ticks: a
  third of them at a 15 s interval and a 5 s tick).
  :func:`failing_early` takes that look here, with the step and weight the last reconcile
  reported (:class:`Look`): a look that would not fail changes nothing, so only a failing one
  needs a reconcile (at N = 1000, taking the look here cut the reconciles by 41%: run L
  against run J in docs/benchmarks.md, one run each).
- **Failing windows first**: :func:`failing_windows` judges each completed window as the
  reconcile will (``canary.core.window``, with the step records the last reconcile reported),
  so that the controller hands a failing one to a worker before the windows of healthy
  Rollouts. Only an order: the reconcile judges it again.

Pure: no clock (``now`` is a parameter), no I/O, no logging. Rollouts are keyed by
``(namespace, name)``.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from canary.core import evidence, judge, window
from canary.core.plan import Plan
from canary.model.status import RolloutStatus

Key = tuple[str, str]
"""A Rollout: ``(namespace, name)``."""

LONGEST_WINDOW = 2
"""A window long enough but holding one arm's requests only, at a weight that sends both some,
stays open until it is this many times as long (see the module's rules)."""

JUDGED_PHASES = frozenset({"Progressing", "Paused", "WaitingApproval"})
"""The phases in which a Rollout's steps are judged, so its counts are measured."""

WATCHED_PHASES = frozenset({"Initializing"})
"""The phases before judging in which a Rollout's pods are asked for all the same: only to
take the baseline its first step's counts are measured from."""

WATCH_SPAN = timedelta(seconds=10)
"""How often a watched Rollout is asked for (:func:`watch_every` ticks): at N = 1000 in run L
(docs/benchmarks.md), asked for on every 2 s tick, the Rollouts still initializing were 60-75%
of those the queries of the round's first three minutes asked for. Counted in time, not ticks,
so that a longer ``--tick`` does not leave a first step's baseline older."""


def watch_every(tick: timedelta) -> int:
    """On one tick in how many a watched Rollout is asked for, at the controller's ``tick``:
    :data:`WATCH_SPAN` in ticks (every tick when the tick is that long or longer), and never so
    many that its pods' counters would be forgotten between its turns
    (``evidence.KEEP_ABSENT`` snapshots)."""
    return max(1, min(round(WATCH_SPAN / tick), evidence.KEEP_ABSENT // 2))


WATCH_EVERY = watch_every(timedelta(seconds=2))
""":func:`watch_every` at the default 2 s tick (5)."""

SETTLE = timedelta(seconds=12)
"""The default settle time: Linkerd's Prometheus scrapes every 10 s."""


@dataclass(frozen=True)
class Look:
    """The step a Rollout's status is on (0-based), that step's canary weight, and the
    status's step records: what the judge's early look at it, and its look at a completed
    window (``canary.core.window``), need besides the counts."""

    step: int
    weight: int | None
    steps: tuple[window.Counted, ...] = ()

    @classmethod
    def of(cls, status: RolloutStatus) -> Look | None:
        """The step ``status`` is on (None: it has not begun one)."""
        index = status.current_step_index
        if index >= len(status.steps):
            return None
        return cls(index, status.steps[index].weight, window.counted(status.steps))


@dataclass(frozen=True)
class Reconciled:
    """What one reconcile learned that measuring needs: the plan (None when the Rollout is
    gone or could not be planned), whether it is being judged, the canary weight it set (None
    when it set none), how many canary pods are ready, and the step it left the Rollout on
    (None: unknown, so every early look is offered to a reconcile)."""

    plan: Plan | None = None
    judged: bool = False
    weight_set: int | None = None
    canary_ready: int = 0
    look: Look | None = None
    watched: bool = False
    """Not judged yet, but about to be: its pods are asked for (:data:`WATCHED_PHASES`)."""

    @classmethod
    def of(
        cls,
        plan: Plan | None,
        phase: str,
        weight_set: int | None,
        canary_ready: int,
        look: Look | None = None,
    ) -> Reconciled:
        """The report of a reconcile that left the Rollout in ``phase``."""
        judged = plan is not None and phase in JUDGED_PHASES
        watched = plan is not None and phase in WATCHED_PHASES
        return cls(plan, judged, weight_set, canary_ready, look if judged else None, watched)


@dataclass(frozen=True)
class Track:
    """One Rollout's measuring state."""

    plan: Plan | None = None
    judged: bool = False
    watched: bool = False
    """Not judged, but its pods asked for: a baseline for its first step (the module's rules)."""
    canary_ready: int = 0
    weight: int | None = None
    settling_since: datetime | None = None
    """When the weight last changed or judging began."""
    window_since: datetime | None = None
    """When the window now being counted began (None: not begun)."""
    window_buckets: bool = True
    """Whether the snapshot the open window counts from held the Rollout's latency buckets
    (:func:`bucketed`): only then may the window close, on a snapshot that holds them too."""
    counts: judge.Evidence | None = None
    """What the arms served in the open window."""
    early: judge.Evidence | None = None
    """What the arms served since the weight last changed or judging began, settle included."""
    early_fresh: bool = False
    """Whether the last tick added either arm's requests to ``early``, which holds canary
    requests, with every ready canary pod scraped: they are offered for an early look."""
    look: Look | None = None
    """The step and weight the last reconcile left the Rollout on (None: not reported)."""
    ticked: bool = False
    """Whether a snapshot that asked for the Rollout's pods has come back since they were
    first asked for (while it was watched or judged, without a break). Until then they were not
    asked for (the query asks for the watched and judged Rollouts' pods only, and one sent
    before may come back after), so the first snapshot to hold them has no baseline for them:
    it would hand their whole lifetime's counts (a stable pod's days of requests) to the step.
    That first snapshot is the baseline."""


@dataclass(frozen=True)
class State:
    """The measuring state of every Rollout, and the counters of the last snapshot."""

    settle: timedelta = SETTLE
    baseline: evidence.Snapshot | None = None
    baseline_at: datetime | None = None
    """When ``baseline`` was taken: the next snapshot's deltas cover what was served since."""
    tracks: Mapping[Key, Track] = field(default_factory=dict)
    owners: Mapping[tuple[str, str], Key] = field(default_factory=dict)
    """``(namespace, Deployment)`` → the Rollout whose stable or canary Deployment it is."""
    routes: Mapping[tuple[str, str], Key] = field(default_factory=dict)
    """``(namespace, route)`` → the Rollout last planned to steer that route."""
    unanswered: bool = False
    """Whether Prometheus was out (:func:`unanswered`) since ``baseline`` was taken."""
    pace: timedelta | None = None
    """The time between the last two snapshots (None: fewer than two yet)."""


def reconciled(state: State, key: Key, report: Reconciled, now: datetime) -> State:
    """The state after a reconcile of ``key`` reported ``report``."""
    old = state.tracks.get(key, Track())
    track = replace(
        old, canary_ready=report.canary_ready, plan=report.plan or old.plan, look=report.look
    )
    owners, routes = state.owners, state.routes
    if report.plan is not None:
        namespace = key[0]
        owners = {
            **owners,
            (namespace, report.plan.target): key,
            (namespace, report.plan.canary_deployment): key,
        }
        routes = {**routes, (namespace, report.plan.route_name): key}
    was_asked = old.judged or old.watched
    if report.judged:
        track = replace(
            track,
            judged=True,
            watched=False,
            settling_since=old.settling_since if old.judged else now,
            ticked=old.ticked if was_asked else False,
        )
    else:
        track = replace(
            track,
            judged=False,
            watched=report.watched,
            counts=None,
            window_since=None,
            early=None,
            early_fresh=False,
            ticked=old.ticked if was_asked and report.watched else False,
        )
    if report.weight_set is not None and old.weight != report.weight_set:
        # Counts served at the old weight must not be credited to the new step.
        track = replace(
            track,
            weight=report.weight_set,
            counts=None,
            settling_since=now,
            early=None,
            early_fresh=False,
        )
    return replace(state, tracks={**state.tracks, key: track}, owners=owners, routes=routes)


def forget(state: State, key: Key) -> State:
    """The state without the Rollout ``key`` (it was deleted): its track, and its Deployments
    and route leading back to it, so that what is kept never outgrows the Rollouts there are."""
    if key not in state.tracks:
        return state
    return replace(
        state,
        tracks={k: track for k, track in state.tracks.items() if k != key},
        owners={k: v for k, v in state.owners.items() if v != key},
        routes={k: v for k, v in state.routes.items() if v != key},
    )


def owner(state: State, namespace: str, deployment: str) -> Key | None:
    """The Rollout whose stable or canary Deployment ``deployment`` is, if one is known."""
    return state.owners.get((namespace, deployment))


def route_owner(state: State, namespace: str, route: str) -> Key | None:
    """The Rollout that steers the route ``route``, if one is known."""
    return state.routes.get((namespace, route))


def judged(state: State) -> dict[Key, Plan]:
    """The Rollouts being judged, with their plans."""
    return {
        key: track.plan
        for key, track in state.tracks.items()
        if track.judged and track.plan is not None
    }


def queried(state: State, tick: int, every: int = WATCH_EVERY) -> dict[Key, Plan]:
    """The Rollouts whose pods the query of the controller's ``tick``-th tick asks for, with
    their plans: those being judged, and those watched for a baseline before their first step
    whose turn it is (one tick in ``every``: :func:`watch_every` of the controller's tick)."""
    return {
        key: track.plan
        for key, track in state.tracks.items()
        if track.plan is not None
        and (track.judged or (track.watched and _turn(key, every) == tick % every))
    }


def bucketed(
    state: State, queried: Collection[Key], now: datetime, tick: timedelta
) -> frozenset[Key]:
    """The Rollouts among ``queried`` whose latency buckets the query sent at ``now`` asks for
    (the module's rules): every one but a judged Rollout whose open window began on a snapshot
    with its buckets and can neither begin anew (its settle time ends) nor close (its length
    is reached) by about when the answer is due: ``now`` and the time between the last two
    snapshots (at least a tick; when queries are slower than the tick, about one's length).
    Decided from the state and ``now`` alone, so a replay of the controller's tape, whose
    snapshots carry when they were sent, asks for the same."""
    last = state.baseline_at
    if last is None or state.unanswered:
        return frozenset(queried)
    horizon = now + max(tick, state.pace or tick)
    wanted: set[Key] = set()
    for key in queried:
        track = state.tracks.get(key)
        if (
            track is None
            or track.plan is None
            or not (track.judged and track.ticked and track.window_buckets)
            or track.window_since is None
            or _ends_between(track.settling_since, state.settle, last, horizon)
            or track.window_since + max(track.plan.interval, state.settle) <= horizon
        ):
            wanted.add(key)
    return frozenset(wanted)


def _ends_between(
    since: datetime | None, settle: timedelta, last: datetime, horizon: datetime
) -> bool:
    """Whether a settle time that began at ``since`` ends after ``last`` and by ``horizon``."""
    return since is not None and last < since + settle <= horizon


def unanswered(state: State) -> State:
    """The state once Prometheus has been out (unreadable for ``OUTAGE_TICKS`` ticks in a
    row): the judged Rollouts' open windows end at its next answer (the module's rules)."""
    return state if state.unanswered else replace(state, unanswered=True)


def _turn(key: Key, every: int) -> int:
    """The tick (modulo ``every``) on which a watched Rollout is asked for: spread by a stable
    hash of its key, the same in every process."""
    return zlib.crc32(f"{key[0]}/{key[1]}".encode()) % every


def advance(
    state: State,
    snapshot: evidence.Snapshot,
    now: datetime,
    asked: Collection[Key],
    bucketed: Collection[Key] | None = None,
) -> tuple[State, dict[Key, judge.Evidence]]:
    """The next state, and the counts of every Rollout whose window ``snapshot`` completes.
    ``asked``: the Rollouts whose pods the snapshot's query asked for; a Rollout judged since
    the query was sent gets nothing from it. ``bucketed``: those whose latency buckets it asked
    for (:func:`bucketed`; None: all asked)."""
    has_buckets = asked if bucketed is None else bucketed
    baseline, deltas = evidence.advance(state.baseline, snapshot)
    began = state.baseline_at
    pods = Counter(pod.target for pod in snapshot)
    tracks = dict(state.tracks)
    ready: dict[Key, judge.Evidence] = {}
    for key, track in state.tracks.items():
        if track.watched and not track.ticked and key in asked:
            tracks[key] = replace(track, ticked=True)  # the baseline for its first step
    for key, plan in judged(state).items():
        track = tracks[key]
        namespace = key[0]
        fresh_buckets = key in has_buckets
        tick = judge.Evidence(
            canary=deltas.get((namespace, plan.canary_deployment), judge.Arm()),
            stable=deltas.get((namespace, plan.target), judge.Arm()),
        )
        visible = pods[(namespace, plan.canary_deployment)]
        since = track.settling_since
        if not track.ticked or (
            since is not None and began is not None and began < since - state.settle
        ):
            # The Rollout's first snapshot (its pods' lifetime counts: see Track.ticked), or
            # snapshots stopped (Prometheus unreachable or slow) well before the weight
            # changed, so this tick's counts reach back into the previous step: credit them to
            # no look and no window.
            held = track.ticked or key in asked
            tracks[key] = replace(
                track,
                window_since=now,
                window_buckets=fresh_buckets,
                early_fresh=False,
                ticked=held,
            )
            continue
        early = tick if track.early is None else _sum(track.early, tick)
        grew = tick.canary.requests > 0 or tick.stable.requests > 0
        fresh = grew and early.canary.requests > 0 and visible >= track.canary_ready
        track = replace(track, early=early, early_fresh=fresh)
        if (since is not None and now - since < state.settle) or not (
            track.window_buckets or state.unanswered
        ):
            # Settling, or the open window began on a snapshot without the Rollout's buckets:
            # it begins (again) here.
            tracks[key] = replace(track, window_since=now, window_buckets=fresh_buckets)
            continue
        if state.unanswered:  # after an outage, a new window (the module's rules)
            counts, started = tick, now
        else:
            counts = tick if track.counts is None else _sum(track.counts, tick)
            started = track.window_since or now
        long_enough = max(plan.interval, state.settle)
        if (
            fresh_buckets
            and now - started >= long_enough
            and visible >= track.canary_ready
            and (
                _both_served(counts, track.weight) or now - started >= LONGEST_WINDOW * long_enough
            )
        ):
            ready[key] = counts
            tracks[key] = replace(track, window_since=now, window_buckets=True, counts=None)
        else:
            tracks[key] = replace(
                track,
                window_since=started,
                window_buckets=track.window_buckets or fresh_buckets,
                counts=counts,
            )
    pace = None if state.baseline_at is None else now - state.baseline_at
    state = replace(
        state, baseline=baseline, baseline_at=now, tracks=tracks, unanswered=False, pace=pace
    )
    return state, ready


def _both_served(counts: judge.Evidence, weight: int | None) -> bool:
    """Whether a window holds both arms' requests, or needs not: at a weight that leaves one
    arm no traffic (0 or 100%), or unknown."""
    if weight is None or not 0 < weight < 100:
        return True
    return counts.canary.requests > 0 and counts.stable.requests > 0


def early(state: State) -> dict[Key, judge.Evidence]:
    """The counts the last :func:`advance` offers for an early look: for each judged Rollout
    whose tick added either arm's requests, the canary's being some, with every ready canary
    pod scraped (whether or not the tick completed a window) — what it served since its
    weight last changed."""
    return {
        key: track.early
        for key, track in state.tracks.items()
        if track.judged and track.early_fresh and track.early is not None
    }


def failing_early(state: State) -> dict[Key, judge.Evidence]:
    """The offers of :func:`early` that the judge's early look fails, taken with the step and
    weight of each Rollout's last reconcile, as the reconcile will take it; an offer of a
    Rollout with no step reported is kept (its reconcile looks). A look that does not fail
    changes nothing, so only these need a reconcile."""
    offers = early(state)
    failing: dict[Key, judge.Evidence] = {}
    for key, counts in offers.items():
        track = state.tracks[key]
        look = track.look
        if look is None or track.plan is None:
            failing[key] = counts
            continue
        seen = judge.Evidence(counts.canary, counts.stable, canary_weight=look.weight)
        if judge.evaluate_early(track.plan.thresholds, seen, look.step) is not None:
            failing[key] = counts
    return failing


def failing_windows(
    state: State, ready: Mapping[Key, judge.Evidence], now: datetime
) -> frozenset[Key]:
    """The Rollouts among ``ready`` (the windows :func:`advance` completed) whose step the
    judge fails with the window added, taken with the steps of each Rollout's last reconcile,
    as the reconcile will take it (custom metrics aside). Only an order: a failing window is a
    rollback, so its reconcile goes before the windows of healthy Rollouts; the reconcile
    judges again from its own status."""
    failing: set[Key] = set()
    for key, counts in ready.items():
        track = state.tracks[key]
        look = track.look
        if look is None or track.plan is None or look.step >= len(look.steps):
            continue
        if window.fails(track.plan, look.steps, look.step, now, counts):
            failing.add(key)
    return frozenset(failing)


def _sum(a: judge.Evidence, b: judge.Evidence) -> judge.Evidence:
    return judge.Evidence(a.canary + b.canary, a.stable + b.stable)
