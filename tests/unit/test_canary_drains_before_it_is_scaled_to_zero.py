"""The canary keeps its pods ``machine.CANARY_DRAIN`` after the route sends it nothing, at the
end of a rollback and of a promotion, so requests of proxies still applying the route are
served instead of failing for want of a canary pod; the twin counts the difference."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bench import twin
from bench.scenarios import BY_KEY
from bench.world import CANARY
from canary.core import machine, vocabulary
from canary.model.status import Phase, RolloutStatus
from canary.sim.traffic import NO_POD
from tests.unit.fake_cluster import T0, FakeCluster, make_plan

SCALE = vocabulary.ScaleCanaryToZero()


def _ended(phase: Phase) -> tuple[FakeCluster, RolloutStatus]:
    """A release whose route is back at 0% (accepted) with a ready two-pod canary, in
    ``phase`` since T0."""
    cluster = FakeCluster(
        route_exists=True, weight=0, canary_exists=True, canary_replicas=2, canary_ready=2
    )
    cluster.canary_template = "v2"
    if phase == "Promoting":
        cluster.stable_template = "v2"
    cause = vocabulary.set_condition(
        [], "Progressing", status=True, reason=phase, message="step 1 failed analysis", now=T0
    )
    status = RolloutStatus(phase=phase, phase_since=T0, canary_weight=0, conditions=cause)
    return cluster, status


@pytest.mark.parametrize("phase", ["RollingBack", "Promoting"])
def test_the_canary_is_scaled_to_zero_only_after_its_drain(phase: Phase) -> None:
    """Seen at 0% at T0, the canary is left alone until T0 + CANARY_DRAIN, with a status
    message saying why and a requeue at the drain's end; then it is scaled to zero."""
    plan = make_plan()
    cluster, status = _ended(phase)
    decision = machine.decide(plan, status, cluster.observe(measured=False), T0)
    assert SCALE not in decision.actions
    assert decision.status.canary_drained_from == T0
    assert decision.status.phase == phase
    assert "all traffic on stable; the canary keeps its pods 10s" in decision.status.message
    assert decision.requeue_after == machine.CANARY_DRAIN
    almost = T0 + machine.CANARY_DRAIN - timedelta(seconds=1)
    later = machine.decide(plan, decision.status, cluster.observe(measured=False), almost)
    assert SCALE not in later.actions
    assert later.status.canary_drained_from == T0  # counted from the first look, not reset
    assert later.requeue_after == timedelta(seconds=1)
    done = machine.decide(
        plan, later.status, cluster.observe(measured=False), T0 + machine.CANARY_DRAIN
    )
    assert SCALE in done.actions
    cluster.apply(SCALE)
    end = machine.decide(
        plan, done.status, cluster.observe(measured=False), T0 + machine.CANARY_DRAIN
    )
    assert end.status.phase == ("RolledBack" if phase == "RollingBack" else "Succeeded")
    assert end.status.canary_drained_from is None  # a new phase starts without it


@pytest.mark.parametrize("phase", ["RollingBack", "Promoting"])
def test_a_canary_with_no_ready_pod_is_scaled_to_zero_at_once(phase: Phase) -> None:
    """Nothing to drain when no canary pod serves (a crash-looping canary)."""
    cluster, status = _ended(phase)
    cluster.canary_ready = 0
    decision = machine.decide(make_plan(), status, cluster.observe(measured=False), T0)
    assert SCALE in decision.actions
    assert decision.status.canary_drained_from is None


@pytest.mark.parametrize("phase", ["RollingBack", "Promoting"])
def test_no_drain_while_the_route_still_sends_the_canary_traffic(phase: Phase) -> None:
    """The drain starts once the route is at 0% and accepted, not before; until then the
    canary keeps its pods."""
    plan = make_plan()
    cluster, status = _ended(phase)
    cluster.weight = 10
    decision = machine.decide(plan, status, cluster.observe(measured=False), T0)
    assert decision.actions == (vocabulary.SetWeight(0),)
    assert decision.status.canary_drained_from is None
    cluster.weight, cluster.accepted = 0, False
    decision = machine.decide(plan, status, cluster.observe(measured=False), T0)
    assert SCALE not in decision.actions
    assert decision.status.canary_drained_from is None
    assert decision.status.phase == phase


def test_a_drain_of_an_earlier_phase_does_not_carry_over() -> None:
    """A start recorded by another phase is cleared on the next change of phase."""
    plan = make_plan()
    cluster = FakeCluster(route_exists=True, weight=10, canary_exists=True, canary_replicas=1)
    cluster.canary_ready, cluster.canary_template, cluster.services = 1, "v2", True
    status = RolloutStatus(
        phase="Progressing", phase_since=T0, canary_weight=10, canary_drained_from=T0
    )
    abort = vocabulary.Command("abort", T0, actor="ana")
    decision = machine.decide(plan, status, cluster.observe(commands=(abort,)), T0)
    assert decision.status.phase == "RollingBack"
    assert decision.status.canary_drained_from is None


@pytest.mark.parametrize("key", ["S3-20x-0.1%", "S8-20x-after3"])
def test_on_the_twin_no_request_fails_for_want_of_a_canary_pod(key: str) -> None:
    """A rolled-back 20x regression, at 5% and turning bad at 50%: every request the route
    sent the canary found a canary pod (before the drain a median 5 of the first scenario's 11
    failed requests and 50 of the second's 78 were such, seeds 0-99), and the canary was scaled
    to zero at least CANARY_DRAIN after traffic was back on stable, the time reported."""
    for seed in range(5):
        run = twin.run(BY_KEY[key], seed)
        assert run.phase == "RolledBack"
        lost = sum(
            counters.requests
            for (_, backend, pod), counters in run.world.mesh.outbound().items()
            if backend == CANARY and pod == NO_POD
        )
        assert lost == 0
        back = next(d for d in reversed(run.trace) if d.phase == "RollingBack")
        done = next(d for d in run.trace if d.phase == "RolledBack")
        drain = machine.CANARY_DRAIN.total_seconds()
        assert done.seconds - back.seconds >= drain
        # The reported time is when traffic took effect on stable in the twin's world, and
        # the canary kept its pods at least the drain after it.
        assert run.world.stable_since is not None
        assert run.ended_s <= done.seconds - drain
