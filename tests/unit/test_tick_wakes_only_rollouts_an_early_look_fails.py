"""The measuring tick takes the judge's early, fail-only look itself, with the step and weight
each Rollout's last reconcile reported: it wakes a Rollout only when the look fails (a look that
does not fail changes nothing; at N = 1000 taking it here cut the reconciles by 41%). The
tick's decision must be the reconcile's: over random counts, the tick wakes exactly the
Rollouts whose reconcile, handed those counts, fails the step. Deterministic (seeded): no
false-failure rate."""

from __future__ import annotations

import random
import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from canary.core import evidence, judge, measuring
from canary.core import plan as plan_mod
from canary.runtime import reconciler as rec
from canary.runtime.controller import Controller
from tests.unit.fake_cluster import make_rollout
from tests.unit.test_reconciler_and_controller_drive_releases import World, _controlled, _pod

SETTLING = timedelta(seconds=5)
"""Within the 12 s settle time: the tick's counts make no window, only an early look."""


def _tick_twice(
    requests: int, failures: int, stable: tuple[int, int] = (1000, 1)
) -> tuple[World, Controller, judge.Evidence]:
    """Two Rollouts at their first step; the tick's baseline, then ``requests`` canary
    requests with ``failures`` failures (and stable's) within the settle time. The world, its
    controller, and the counts the second tick saw."""
    world, _, controller, metrics = _controlled()
    first = dict([_pod("t", "podinfo", "s1", 100, 0), _pod("t", "podinfo-canary", "c1", 10, 0)])
    metrics.pods = first
    controller.measure()
    world.clock.advance(SETTLING)
    second = dict(
        [
            _pod("t", "podinfo", "s1", 100 + stable[0], stable[1]),
            _pod("t", "podinfo-canary", "c1", 10 + requests, failures),
        ]
    )
    metrics.pods = second
    controller.measure()
    answered = metrics.snapshot(metrics.snapshots[-1], metrics.bucketed[-1])  # as the tick had it
    baseline, _ = evidence.advance(None, first)
    _, deltas = evidence.advance(baseline, answered)
    counts = judge.Evidence(deltas[("t", "podinfo-canary")], deltas[("t", "podinfo")])
    return world, controller, counts


def test_a_healthy_canarys_look_wakes_no_one_and_a_failing_ones_is_rolled_back() -> None:
    with capture_logs() as logs:
        world, controller, _ = _tick_twice(200, 0)
    assert len(controller.queue) == 0  # before: woken on every tick, to decide nothing
    assert [e for e in logs if e["event"] == "failing_measured"] == []
    with capture_logs() as logs:
        world, controller, counts = _tick_twice(200, 120)
    found = [e for e in logs if e["event"] == "failing_measured"]
    assert [(e["rollout"], e["by"], e["canary"]) for e in found] == [
        (world.ref.name, "early look", "120/200 failed")
    ]
    item = controller.queue.get(threading.Event())
    assert item == (world.ref, rec.Measurement(early=counts))
    controller.work(*item)
    assert world.phase() == "RollingBack"
    assert world.route_weight() == 0


def test_a_rollout_with_no_step_reported_is_woken_for_its_reconcile_to_look() -> None:
    """A track without the step (a report from before the step was known) keeps the old way."""
    state = measuring.State()
    built = plan_mod.build(_controlled()[0].rollout, None)
    healthy = judge.Evidence(judge.Arm(100), judge.Arm(900))
    track = measuring.Track(plan=built, judged=True, early=healthy, early_fresh=True)
    state = replace(state, tracks={("t", "podinfo-2"): track})
    assert measuring.failing_early(state) == {("t", "podinfo-2"): healthy}
    looked = replace(track, look=measuring.Look(0, 10))
    assert measuring.failing_early(replace(state, tracks={("t", "podinfo-2"): looked})) == {}


@pytest.mark.parametrize("seed", range(4))
def test_the_tick_wakes_exactly_the_rollouts_their_reconcile_would_fail(seed: int) -> None:
    """Random canary failure counts around the early look's boundary (stable: 0.1% errors):
    woken by the tick if and only if a reconcile handed the same counts fails the step."""
    rng = random.Random(seed)
    outcomes = set()
    for _ in range(25):
        requests = rng.randint(1, 400)
        failures = rng.randint(0, min(requests, max(1, requests // 4)))
        _, controller, counts = _tick_twice(requests, failures)
        woken = len(controller.queue) == 1
        twin, twin_controller, _ = _tick_twice(requests, failures)
        twin_controller.work(twin.ref, rec.Measurement(early=counts))
        failed = twin.phase() == "RollingBack"
        assert woken == failed, (requests, failures)
        outcomes.add(failed)
    assert outcomes == {True, False}  # the boundary was crossed both ways


def test_a_tick_that_completes_a_window_takes_the_early_look_too() -> None:
    """Failures served while the step settled, and one more in the first window: the window
    alone (the settled counts) does not fail the step, but all the counts since the weight
    changed fail the early look, on the tick that completes the window, not a tick later."""
    world, _, controller, metrics = _controlled()
    stable, canary = ("t", "podinfo", "s1"), ("t", "podinfo-canary", "c1")
    metrics.pods = dict([_pod(*stable, 100, 0), _pod(*canary, 10, 0)])
    controller.measure()  # the baseline
    world.clock.advance(timedelta(seconds=10))  # settling (12 s)
    metrics.pods = dict([_pod(*stable, 300, 0), _pod(*canary, 20, 3)])
    controller.measure()
    assert len(controller.queue) == 0  # 3 of 10 failed: not enough for the early look
    world.clock.advance(timedelta(seconds=15))  # the window since settling is complete
    metrics.pods = dict([_pod(*stable, 600, 0), _pod(*canary, 35, 4)])
    with capture_logs() as logs:
        controller.measure()
    item = controller.queue.get(threading.Event())
    assert item is not None
    ref, measurement = item
    assert measurement is not None
    assert measurement.evidence is not None
    assert measurement.evidence.canary == judge.Arm(15, 1, measurement.evidence.canary.buckets)
    assert measurement.early is not None
    assert (measurement.early.canary.requests, measurement.early.canary.failures) == (25, 4)
    assert not measurement.failing  # the window alone passes the tick's judgement
    found = [(e["by"], e["canary"]) for e in logs if e["event"] == "failing_measured"]
    assert found == [("early look", "4/25 failed")]
    controller.queue.done(ref)
    controller.work(ref, measurement)
    assert world.phase() == "RollingBack"
    assert world.route_weight() == 0


def test_stable_scraped_after_the_canary_gets_the_look_on_its_own_tick() -> None:
    """Prometheus scrapes each pod at its own moment. Run H's slowest bad Rollout (app-229):
    the tick after its baseline brought the canary's 15 failures of 51 but none of stable's
    requests (its pod not scraped again yet), so no comparison could fail; the next tick
    brought stable's 939 requests and no new canary ones, and was offered no look (looks
    followed canary requests only); the canary's next scrape, 10 s later, failed it. Now the
    tick that brings stable's requests takes the look. The policy is the scale run's, whose
    success-rate floor alone does not fail 15 of 51 at its bound."""
    analysis = {
        "minRequestsPerStep": 10,
        "successRate": {"min": 95},
        "compareWithStable": {"falseRollbackRate": 2e-5},
    }
    world, _, controller, metrics = _controlled(make_rollout(analysis=analysis))
    stable, canary = ("t", "podinfo", "s1"), ("t", "podinfo-canary", "c1")
    metrics.pods = dict([_pod(*stable, 80000, 0), _pod(*canary, 20, 5)])
    controller.measure()  # the baseline
    world.clock.advance(timedelta(seconds=4))
    metrics.pods = dict([_pod(*stable, 80000, 0), _pod(*canary, 71, 20)])
    with capture_logs() as logs:
        controller.measure()  # the canary's 15 of 51 failed; stable served nothing since
    assert len(controller.queue) == 0
    assert [e for e in logs if e["event"] == "failing_measured"] == []
    world.clock.advance(timedelta(seconds=4))  # still settling (12 s): no window yet
    metrics.pods = dict([_pod(*stable, 80939, 0), _pod(*canary, 71, 20)])
    with capture_logs() as logs:
        controller.measure()  # stable's 939 requests; no new canary request
    found = [e for e in logs if e["event"] == "failing_measured"]
    assert [(e["by"], e["canary"], e["stable"]) for e in found] == [
        ("early look", "15/51 failed", "0/939 failed")
    ]
    item = controller.queue.get(threading.Event())
    assert item is not None
    controller.work(*item)
    assert world.phase() == "RollingBack"
