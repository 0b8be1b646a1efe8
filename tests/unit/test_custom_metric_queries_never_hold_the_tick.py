"""A Rollout's custom metric query is its tenant's PromQL: Prometheus may take the whole query
timeout (30 s by default) to answer it. The measuring tick asks one query for every Rollout and
nothing per Rollout; a completed window's custom queries ride with its counts to the worker that
takes the Rollout, which asks them just before the reconcile. So a hanging custom query holds
that one worker, while the tick and the other Rollouts' windows go on. Before, the tick asked
them one after another itself: one tenant's slow query stopped the measuring of every Rollout.
Deterministic: no false-failure rate."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from bench import replay
from canary.core import judge
from canary.runtime import reconciler as rec
from canary.runtime.controller import Controller, _merge
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
"""The query the worker sends for t/podinfo-2's canary: rendered and confined."""

WAIT_SECONDS = 10.0
"""How long a test waits for a thread before it fails (never reached when the code is right)."""


@dataclass
class HangingMetrics(FakeMetrics):
    """Answers a custom query only once ``release`` is set, noting which thread asked."""

    release: threading.Event = field(default_factory=threading.Event)
    asked: list[tuple[str, str]] = field(default_factory=list)
    waiting: threading.Event = field(default_factory=threading.Event)

    def value(self, query: str) -> float | None:
        self.asked.append((query, threading.current_thread().name))
        self.waiting.set()
        if not self.release.wait(WAIT_SECONDS):
            raise AssertionError(f"{query!r} was asked and never answered")
        return super().value(query)


def _measured() -> tuple[World, Controller, HangingMetrics, dict[str, rec.Measurement | None]]:
    """t/podinfo-2, with a custom metric, at its first step; the tick's baseline, then a window
    of 60 canary requests. What the tick queued, by Rollout name."""
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
    world.clock.advance(WINDOW)
    metrics.pods = dict(
        [_pod("t", "podinfo", "s1", 1300, 1), _pod("t", "podinfo-canary", "c1", 70, 0)]
    )
    controller.measure()
    queued: dict[str, rec.Measurement | None] = {}
    while (item := controller.queue.pop_due()) is not None:
        queued[item[0].name] = item[1]
        controller.queue.done(item[0])
    return world, controller, metrics, queued


def test_the_tick_asks_no_custom_query_and_the_window_carries_it_rendered() -> None:
    _, _, metrics, queued = _measured()
    assert metrics.asked == []
    window = queued["podinfo-2"]
    assert window is not None
    assert window.evidence is not None
    assert (window.evidence.canary.requests, window.evidence.custom) == (60, {})
    assert window.custom_queries == (("queue-depth", ASKED),)


def test_a_hanging_custom_query_holds_one_worker_while_the_tick_goes_on() -> None:
    world, controller, metrics, queued = _measured()
    worker = threading.Thread(
        target=controller.serve, args=(world.ref, queued["podinfo-2"]), name="worker-1"
    )
    worker.start()
    assert metrics.waiting.wait(WAIT_SECONDS)
    assert metrics.asked == [(ASKED, "worker-1")]
    # Meanwhile the next tick runs, and asks nothing of the hanging query.
    world.clock.advance(WINDOW)
    metrics.pods = dict(
        [_pod("t", "podinfo", "s1", 2500, 2), _pod("t", "podinfo-canary", "c1", 130, 0)]
    )
    controller.measure()
    assert metrics.asked == [(ASKED, "worker-1")]
    assert worker.is_alive()
    metrics.values[ASKED] = 50.0  # above the metric's max of 10: the step fails on it
    metrics.release.set()
    worker.join(WAIT_SECONDS)
    assert not worker.is_alive()
    assert world.phase() == "RollingBack"
    stored = world.store.get(world.ref)
    assert stored is not None
    healthy = {c.type: c for c in stored.status.conditions}["Healthy"]
    assert (healthy.status, healthy.message) == ("False", "failed: queue-depth")


def test_a_custom_query_prometheus_cannot_answer_reports_the_outage() -> None:
    world, controller, metrics, queued = _measured()
    metrics.available = False
    metrics.release.set()
    controller.serve(world.ref, queued["podinfo-2"])
    stored = world.store.get(world.ref)
    assert stored is not None
    healthy = {c.type: c for c in stored.status.conditions}["Healthy"]
    assert (healthy.status, healthy.reason) == ("Unknown", "MetricsUnavailable")
    assert "cannot reach Prometheus" in healthy.message
    assert world.phase() == "Progressing"


def test_waiting_windows_keep_the_newer_windows_queries_and_an_early_look_keeps_them() -> None:
    counts = judge.Evidence(judge.Arm(10, 0), judge.Arm(190, 0))
    older = rec.Measurement(evidence=counts, custom_queries=(("m", "old"),))
    newer = rec.Measurement(evidence=counts, custom_queries=(("m", "new"),))
    early = rec.Measurement(early=counts)
    summed = judge.Evidence(judge.Arm(20, 0), judge.Arm(380, 0))
    assert _merge(older, newer) == rec.Measurement(evidence=summed, custom_queries=(("m", "new"),))
    assert _merge(older, early).custom_queries == (("m", "old"),)
    assert _merge(early, newer).custom_queries == (("m", "new"),)
    assert _merge(newer, rec.Measurement(error="down")).custom_queries == (("m", "new"),)


def test_the_replay_answers_custom_queries_by_query_not_in_tape_order() -> None:
    """Live, two workers asked their Rollouts' queries at once, b's noted first; the replay
    reconciles a first and must still get a's answer, and raise for a query never asked."""
    tape = [
        {"kind": "value", "at": "2026-01-01T00:00:01Z", "query": "b", "value": 2.0},
        {"kind": "value", "at": "2026-01-01T00:00:01Z", "query": "a", "value": 1.0},
    ]
    metrics = replay._TapeMetrics(replay._World.of(tape))
    assert (metrics.value("a"), metrics.value("b")) == (1.0, 2.0)
    with pytest.raises(replay.Diverged, match="'a'"):
        metrics.value("a")
