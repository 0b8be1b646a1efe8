"""A Rollout's custom metric query is its tenant's PromQL: Prometheus may take the whole query
timeout (30 s by default) to answer it. The measuring tick asks one query for every Rollout and
nothing per Rollout; a completed window of a Rollout with custom metrics waits for its queries,
asked by threads of their own (the askers), and then joins the work queue. So a hanging custom
query holds one asker: the tick goes on, and a failing canary is still rolled back by a worker.
Before, the tick asked them one after another itself: one tenant's slow query stopped the
measuring of every Rollout. Deterministic: no false-failure rate."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench import replay
from canary.api.metrics import ControllerMetrics
from canary.cli import build_parser, main
from canary.core import judge
from canary.model.status import Condition
from canary.ports import Ref
from canary.runtime import reconciler as rec
from canary.runtime.controller import ASKERS, Asking, Controller, _merge
from canary.runtime.memory import VirtualClock
from tests.fakes import FakeMetrics
from tests.unit.fake_cluster import make_rollout
from tests.unit.test_reconciler_and_controller_drive_releases import World, _pod

WINDOW = timedelta(seconds=16)
"""Past the 12 s settle time and the plan's interval: the second tick completes a window."""

METRIC = {
    "name": "queue-depth",
    "query": 'max(queue_depth{namespace="{{namespace}}", deployment="{{canary}}"})',
    "max": 10,
}
ASKED = 'max(queue_depth{deployment="podinfo-canary",namespace="t"})'
"""The query asked for t/podinfo-2's canary: rendered and confined."""

WAIT_SECONDS = 10.0
"""How long a test waits for a thread before it fails (never reached when the code is right)."""


@dataclass
class HangingMetrics(FakeMetrics):
    """Answers a custom query only once ``release`` is set, noting which thread asked."""

    release: threading.Event = field(default_factory=threading.Event)
    asked: list[tuple[str, str]] = field(default_factory=list)
    waiting: threading.Event = field(default_factory=threading.Event)

    broken: bool = False
    """Raise what no adapter should (a bug) instead of answering."""

    def value(self, query: str) -> float | None:
        if self.broken:
            raise RuntimeError("a bug")
        self.asked.append((query, threading.current_thread().name))
        self.waiting.set()
        if not self.release.wait(WAIT_SECONDS):
            raise AssertionError(f"{query!r} was asked and never answered")
        return super().value(query)


def _started() -> tuple[World, Controller, HangingMetrics]:
    """t/podinfo-2, with a custom metric, at its first step (10%), and the tick's baseline."""
    rollout = make_rollout(
        analysis={"minRequestsPerStep": 50, "successRate": {"min": 99}, "metrics": [METRIC]}
    )
    world = World(rollout)
    metrics = HangingMetrics()
    controller = Controller(
        world.reconciler, world.store, metrics, world.clock, settle=timedelta(seconds=12)
    )
    for _ in range(3):
        controller.work(world.ref)
        world.cluster.settle()
    metrics.pods = dict(
        [_pod("t", "podinfo", "s1", 100, 0), _pod("t", "podinfo-canary", "c1", 10, 0)]
    )
    controller.measure()
    _drain(controller)
    return world, controller, metrics


def _window(
    world: World, controller: Controller, metrics: FakeMetrics, canary: tuple[int, int]
) -> None:
    """The next tick, 16 s on, with the canary at ``canary`` (cumulative requests, failures)
    and the stable at 20 times its requests, none failing."""
    world.clock.advance(WINDOW)
    metrics.pods = dict(
        [
            _pod("t", "podinfo", "s1", 100 + 20 * canary[0], 0),
            _pod("t", "podinfo-canary", "c1", *canary),
        ]
    )
    controller.measure()


def _condition(world: World, kind: str) -> Condition:
    """The Rollout's stored condition of type ``kind``."""
    stored = world.store.get(world.ref)
    assert stored is not None
    return {c.type: c for c in stored.status.conditions}[kind]


def _drain(controller: Controller) -> dict[str, rec.Measurement | None]:
    """What the work queue holds, by Rollout name (taken out)."""
    queued: dict[str, rec.Measurement | None] = {}
    while (item := controller.queue.pop_due()) is not None:
        queued[item[0].name] = item[1]
        controller.queue.done(item[0])
    return queued


def test_the_tick_asks_no_custom_query_and_the_window_waits_for_the_askers() -> None:
    world, controller, metrics = _started()
    _window(world, controller, metrics, (70, 0))
    assert metrics.asked == []
    assert _drain(controller) == {}
    waiting = controller.asking.take_now()
    assert waiting is not None
    ref, window = waiting
    assert ref == world.ref
    assert window.evidence is not None
    assert (window.evidence.canary.requests, window.evidence.custom) == (60, {})
    assert window.custom_queries == (("queue-depth", ASKED),)


def test_a_hanging_custom_query_holds_one_asker_and_a_failing_canary_still_rolls_back() -> None:
    world, controller, metrics = _started()
    _window(world, controller, metrics, (70, 0))
    stop = threading.Event()
    asker = threading.Thread(target=controller.run_asker, args=(stop,), name="asker-0")
    asker.start()
    try:
        assert metrics.waiting.wait(WAIT_SECONDS)
        assert metrics.asked == [(ASKED, "asker-0")]
        # Meanwhile the canary fails 40 of its next 60 requests: the tick, which asks nothing
        # of the hanging query, finds the window failing, and a worker rolls it back.
        _window(world, controller, metrics, (130, 40))
        queued = _drain(controller)
        failing = queued[world.ref.name]
        assert failing is not None
        assert (failing.failing, failing.custom_queries) == (True, ())
        controller.work(world.ref, failing)
        assert world.phase() == "RollingBack"
        assert world.route_weight() == 0
        assert asker.is_alive()
        assert metrics.asked == [(ASKED, "asker-0")]
    finally:
        metrics.release.set()
        stop.set()
        asker.join(WAIT_SECONDS)
    assert not asker.is_alive()


def test_an_answer_out_of_bounds_fails_the_step_and_an_outage_is_reported() -> None:
    world, controller, metrics = _started()
    metrics.release.set()
    _window(world, controller, metrics, (70, 0))
    metrics.available = False
    assert controller.ask_now() == 1
    assert controller.run_due() == 1
    healthy = _condition(world, "Healthy")
    assert (healthy.status, healthy.reason) == ("Unknown", "MetricsUnavailable")
    assert "cannot reach Prometheus" in healthy.message
    assert world.phase() == "Progressing"
    metrics.available = True
    metrics.values[ASKED] = 50.0  # above the metric's max of 10
    _window(world, controller, metrics, (130, 0))
    assert controller.run_due() == 1  # it asks the window's query first
    healthy = _condition(world, "Healthy")
    assert (healthy.status, healthy.message) == ("False", "failed: queue-depth")
    assert world.phase() == "RollingBack"


def test_a_rollouts_windows_are_asked_one_at_a_time_and_those_that_wait_add_up() -> None:
    asking, ref = Asking(), Ref("t", "a")
    counts = judge.Evidence(judge.Arm(10, 0), judge.Arm(190, 0))
    asking.put(ref, rec.Measurement(evidence=counts, custom_queries=(("m", "old"),)))
    taken = asking.take_now()
    assert taken is not None
    asking.put(ref, rec.Measurement(evidence=counts, custom_queries=(("m", "q2"),)))
    asking.put(ref, rec.Measurement(evidence=counts, custom_queries=(("m", "q3"),)))
    assert asking.take_now() is None  # its first window is still being asked
    assert len(asking) == 2
    asking.done(ref)
    summed = judge.Evidence(judge.Arm(20, 0), judge.Arm(380, 0))
    assert asking.take_now() == (
        ref,
        rec.Measurement(evidence=summed, custom_queries=(("m", "q3"),)),
    )
    asking.done(ref)
    assert len(asking) == 0


def test_the_registry_exports_how_many_windows_wait_for_their_queries() -> None:
    asking = Asking()
    metrics = ControllerMetrics(asking=lambda: len(asking))
    counts = judge.Evidence(judge.Arm(10, 0), judge.Arm(190, 0))
    for name in ("a", "b", "c"):
        asking.put(Ref("t", name), rec.Measurement(evidence=counts, custom_queries=(("m", "q"),)))
    assert asking.take_now() is not None  # one being asked still counts

    def waiting() -> float:
        exposition = metrics.exposition().decode()
        (family,) = [
            f
            for f in text_string_to_metric_families(exposition)
            if f.name == "canary_custom_queries_waiting"
        ]
        return float(family.samples[0].value)

    assert waiting() == 3
    asking.done(Ref("t", "a"))
    assert waiting() == 2


def test_waiting_windows_keep_the_newer_windows_queries() -> None:
    counts = judge.Evidence(judge.Arm(10, 0), judge.Arm(190, 0))
    older = rec.Measurement(evidence=counts, custom_queries=(("m", "old"),))
    newer = rec.Measurement(evidence=counts, custom_queries=(("m", "new"),))
    summed = judge.Evidence(judge.Arm(20, 0), judge.Arm(380, 0))
    assert _merge(older, newer) == rec.Measurement(evidence=summed, custom_queries=(("m", "new"),))
    assert _merge(older, rec.Measurement(early=counts)).custom_queries == (("m", "old"),)
    assert _merge(newer, rec.Measurement(error="down")).custom_queries == (("m", "new"),)


def test_the_replay_answers_custom_queries_by_query_not_in_tape_order() -> None:
    """Live, two askers asked their Rollouts' queries at once, b's noted first; the replay
    asks a's first and must still get a's answer, and raise for a query never asked."""
    tape = [
        {"kind": "value", "at": "2026-01-01T00:00:01Z", "query": "b", "value": 2.0},
        {"kind": "value", "at": "2026-01-01T00:00:01Z", "query": "a", "value": 1.0},
    ]
    metrics = replay._TapeMetrics(replay._World.of(tape), VirtualClock(datetime(2026, 1, 1)))
    assert (metrics.value("a"), metrics.value("b")) == (1.0, 2.0)
    with pytest.raises(replay.Diverged, match="'a'"):
        metrics.value("a")


def test_an_asker_survives_a_crash_and_the_window_reports_it() -> None:
    world, controller, metrics = _started()
    metrics.broken = True
    _window(world, controller, metrics, (70, 0))
    stop = threading.Event()
    asker = threading.Thread(target=controller.run_asker, args=(stop,), name="asker-0")
    asker.start()
    try:
        item = None
        for _ in range(int(WAIT_SECONDS / 0.05)):
            if (item := controller.queue.pop_due()) is not None:
                break
            time.sleep(0.05)
        assert item == (
            world.ref,
            rec.Measurement(error="custom metric queries: unexpected RuntimeError"),
        )
        assert asker.is_alive()
        assert len(controller.asking) == 0
    finally:
        stop.set()
        asker.join(WAIT_SECONDS)


def test_the_askers_are_a_flag_and_nonsense_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """`canary run --custom-query-workers` sets how many askers run (default ``ASKERS``); 0
    exits 2 naming the flag, before anything is contacted."""
    run = ["run", "--prometheus-url", "http://127.0.0.1:1"]
    assert build_parser().parse_args(run).custom_query_workers == ASKERS
    assert main([*run, "--custom-query-workers", "0"]) == 2
    assert "--custom-query-workers must be at least 1 (got 0)" in capsys.readouterr().err


def test_tenants_take_turns_a_namespace_being_asked_for_waits_behind_others() -> None:
    """team-a's two windows came first; one of its queries is being asked, so the next asker
    takes team-b's window before team-a's second; with no other tenant waiting, it takes that."""
    asking = Asking()
    a1, a2, b1 = Ref("team-a", "r1"), Ref("team-a", "r2"), Ref("team-b", "r1")
    for ref in (a1, a2, b1):
        asking.put(ref, rec.Measurement(custom_queries=(("m", f"q-{ref}"),)))
    order = [item[0] for _ in range(3) if (item := asking.take_now()) is not None]
    assert order == [a1, b1, a2]


@dataclass
class TenantMetrics(FakeMetrics):
    """Hangs every custom query of ``slow`` until ``release``; answers the others at once."""

    slow: str = "team-a"
    release: threading.Event = field(default_factory=threading.Event)

    def value(self, query: str) -> float | None:
        if f'namespace="{self.slow}"' in query and not self.release.wait(WAIT_SECONDS):
            raise AssertionError(f"{query!r} was asked and never answered")
        return 1.0


def test_one_tenants_hanging_queries_do_not_hold_another_tenants_window() -> None:
    """Two askers; team-a's two Rollouts' queries hang, team-b's window arrived last. It is
    answered and queued for the workers while team-a's first query still hangs."""
    world = World(make_rollout())
    metrics = TenantMetrics()
    controller = Controller(world.reconciler, world.store, metrics, world.clock)
    counts = judge.Evidence(judge.Arm(10, 0), judge.Arm(190, 0))
    refs = [Ref("team-a", "r1"), Ref("team-a", "r2"), Ref("team-b", "r1")]
    for ref in refs:
        query = f'max(m{{namespace="{ref.namespace}"}})'
        controller.asking.put(ref, rec.Measurement(evidence=counts, custom_queries=(("m", query),)))
    stop = threading.Event()
    askers = [
        threading.Thread(target=controller.run_asker, args=(stop,), name=f"asker-{i}")
        for i in range(2)
    ]
    for asker in askers:
        asker.start()
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        queued: dict[Ref, rec.Measurement | None] = {}
        while refs[2] not in queued and time.monotonic() < deadline:
            if (item := controller.queue.pop_due()) is not None:
                queued[item[0]] = item[1]
            time.sleep(0.01)
        answered = queued.get(refs[2])
        assert answered is not None, "team-b's window waited behind team-a's hanging queries"
        assert answered.evidence is not None
        assert answered.evidence.custom == {"m": 1.0}
        assert not metrics.release.is_set()
    finally:
        metrics.release.set()
        stop.set()
        for asker in askers:
            asker.join(WAIT_SECONDS)
    assert not any(asker.is_alive() for asker in askers)
