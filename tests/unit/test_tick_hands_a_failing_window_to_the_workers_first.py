"""The measuring tick judges each window it completes as the Rollout's reconcile will
(``canary.core.window``, with the steps the last reconcile reported): a window whose step fails
with it added is a rollback, so it is handed to the workers before the windows of healthy
Rollouts (when the workers fall behind, those wait: run S waited up to 60 s). Only the order
changes; the reconcile judges again. The tick's flag must be the reconcile's verdict: over
random counts, a window is flagged if and only if its reconcile rolls the canary back.
Deterministic (seeded): no false-failure rate."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from canary.core import judge, measuring
from canary.core import plan as plan_mod
from canary.ports import Ref
from canary.runtime import reconciler as rec
from canary.runtime.controller import Controller, WorkQueue
from tests.fakes import FakeClock
from tests.unit.fake_cluster import T0
from tests.unit.test_reconciler_and_controller_drive_releases import World, _controlled, _pod

WINDOW = timedelta(seconds=16)
"""Past the 12 s settle time and the plan's interval: the second tick completes a window."""


def _window(requests: int, failures: int) -> tuple[World, Controller, rec.Measurement]:
    """A Rollout at its first step (5%); the tick's baseline, then a window in which the canary
    served ``requests`` with ``failures`` failures and the stable 19 times as many with 0.1%
    failing. The world, its controller, and what the tick queued for the Rollout."""
    world, _, controller, metrics = _controlled()
    first = dict([_pod("t", "podinfo", "s1", 100, 0), _pod("t", "podinfo-canary", "c1", 10, 0)])
    metrics.pods = first
    controller.measure()
    world.clock.advance(WINDOW)
    stable = 19 * requests
    metrics.pods = dict(
        [
            _pod("t", "podinfo", "s1", 100 + stable, stable // 1000),
            _pod("t", "podinfo-canary", "c1", 10 + requests, failures),
        ]
    )
    controller.measure()
    queued = {}
    while (item := controller.queue.pop_due()) is not None:
        queued[item[0]] = item[1]
        controller.queue.done(item[0])
    measurement = queued[world.ref]
    assert measurement is not None
    assert measurement.evidence is not None
    assert measurement.evidence.canary.requests == requests
    return world, controller, measurement


def test_a_failing_window_is_flagged_and_a_healthy_one_is_not() -> None:
    with capture_logs() as logs:
        _, _, healthy = _window(200, 0)
    assert not healthy.failing
    assert [e for e in logs if e["event"] == "failing_measured"] == []
    with capture_logs() as logs:
        world, controller, failing = _window(200, 120)
    assert failing.failing
    found = [e for e in logs if e["event"] == "failing_measured"]
    assert [(e["rollout"], e["by"], e["canary"]) for e in found] == [
        (world.ref.name, "window", "120/200 failed"),
        (world.ref.name, "early look", "120/200 failed"),  # the same counts, looked at early
    ]
    assert healthy.early is None
    assert failing.early is not None
    controller.work(world.ref, replace(failing, early=None))  # the window alone fails
    assert world.phase() == "RollingBack"
    assert world.route_weight() == 0


@pytest.mark.parametrize("seed", range(4))
def test_the_tick_flags_exactly_the_windows_their_reconcile_fails(seed: int) -> None:
    """Random canary failure counts around the judge's boundary: a window is flagged by the
    tick if and only if its reconcile, handed it alone, rolls the canary back (an early look
    the tick also found failing rides with it, and is left out here: that look's own test is
    ``test_tick_wakes_only_rollouts_an_early_look_fails``)."""
    rng = random.Random(seed)
    outcomes = set()
    for _ in range(25):
        requests = rng.randint(1, 400)
        failures = rng.randint(0, min(requests, max(1, requests // 8)))
        world, controller, measurement = _window(requests, failures)
        controller.work(world.ref, replace(measurement, early=None))
        failed = world.phase() == "RollingBack"
        assert measurement.failing == failed, (requests, failures)
        outcomes.add(failed)
    assert outcomes == {True, False}  # the boundary was crossed both ways


def test_a_rollout_whose_step_is_not_known_is_not_flagged() -> None:
    """No step reported (or a report whose step has no record): the window keeps the usual
    lane; its reconcile judges it."""
    built = plan_mod.build(_controlled()[0].rollout, None)
    bad = judge.Evidence(judge.Arm(100, 90), judge.Arm(1900, 2))
    track = measuring.Track(plan=built, judged=True)
    key = ("t", "podinfo-2")
    state = replace(measuring.State(), tracks={key: track})
    assert measuring.failing_windows(state, {key: bad}, T0) == frozenset()
    unknown = replace(track, look=measuring.Look(0, 5))
    state = replace(state, tracks={key: unknown})
    assert measuring.failing_windows(state, {key: bad}, T0) == frozenset()


COUNTS = judge.Evidence(judge.Arm(100, 1), judge.Arm(1900, 2))


def test_a_failing_window_goes_before_windows_due_sooner_and_stays_first_when_merged() -> None:
    clock = FakeClock(T0)
    heard: list[str] = []
    queue = WorkQueue(clock, lambda _seconds, work: heard.append(work))
    for name in ("w1", "w2"):
        queue.add(Ref("n", name), measurement=rec.Measurement(evidence=COUNTS))
    clock.advance(timedelta(seconds=20))
    queue.add(Ref("n", "bad"), measurement=rec.Measurement(evidence=COUNTS, failing=True))
    queue.add(Ref("n", "bad"), measurement=rec.Measurement(evidence=COUNTS))  # the next tick
    queue.add(Ref("n", "w2"), measurement=rec.Measurement(evidence=COUNTS, failing=True))
    order = []
    while (item := queue.pop_due()) is not None:
        ref, measurement = item
        assert measurement is not None
        assert measurement.evidence is not None
        order.append((ref.name, measurement.failing, measurement.evidence.canary.requests))
        queue.done(ref)
    # w2's healthy window and its failing one are summed, and it goes first (due sooner).
    assert order == [("w2", True, 200), ("bad", True, 200), ("w1", False, 100)]
    assert heard == ["failing", "failing", "verdict"]
