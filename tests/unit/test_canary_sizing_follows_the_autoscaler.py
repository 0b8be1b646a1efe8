"""HPA-aware sizing: with a HorizontalPodAutoscaler on the target the canary gets its own,
bounded by the stable's scaled by the weight; its replicas start from the stable's current pods
at a weight change and are otherwise left to its autoscaler; a rollback that hands the stable
more traffic than it had ready pods for says so."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.core import machine, steps
from canary.core.vocabulary import Autoscaler, Decision, EnsureCanary, SetWeight, TargetState
from canary.model.status import RolloutStatus
from tests.unit.fake_cluster import T0, FakeCluster, make_plan, run

HPA = Autoscaler(4, 10)


@pytest.mark.parametrize(
    ("stable", "weight", "canary"),
    [
        (Autoscaler(4, 10), 50, Autoscaler(2, 5)),
        (Autoscaler(4, 10), 10, Autoscaler(1, 1)),
        (Autoscaler(4, 10), 25, Autoscaler(1, 3)),
        (Autoscaler(1, 3), 5, Autoscaler(1, 1)),
        (Autoscaler(3, 7), 100, Autoscaler(3, 7)),
        (Autoscaler(6, 6), 50, Autoscaler(3, 3)),
    ],
)
def test_canary_bounds_are_the_stables_scaled_by_the_weight(
    stable: Autoscaler, weight: int, canary: Autoscaler
) -> None:
    """min and max are each the stable's times the weight, rounded up, at least 1."""
    assert steps.canary_autoscaler(stable, weight) == canary


@given(
    low=st.integers(1, 1000),
    extra=st.integers(0, 1000),
    weight=st.integers(1, 100),
)
def test_canary_bounds_are_ordered_and_never_above_the_stables(
    low: int, extra: int, weight: int
) -> None:
    """1 <= min <= max, and neither exceeds the stable's."""
    bounds = steps.canary_autoscaler(Autoscaler(low, low + extra), weight)
    assert 1 <= bounds.min_replicas <= bounds.max_replicas
    assert bounds.min_replicas <= low
    assert bounds.max_replicas <= low + extra


def _target(replicas: int, current: int | None, autoscaler: Autoscaler | None) -> TargetState:
    return TargetState(
        replicas=replicas,
        ready=True,
        has_release=False,
        current_replicas=current,
        autoscaler=autoscaler,
    )


@pytest.mark.parametrize(
    ("target", "weight", "moving", "size"),
    [
        # No autoscaler: the spec's replicas times the weight, as before, and no canary HPA.
        (_target(4, 9, None), 50, True, EnsureCanary(2)),
        (_target(4, 9, None), 50, False, EnsureCanary(2)),
        # Moving: from the pods the stable runs now, within the canary's bounds.
        (_target(6, 6, HPA), 50, True, EnsureCanary(3, Autoscaler(2, 5))),
        (_target(4, 10, HPA), 50, True, EnsureCanary(5, Autoscaler(2, 5))),
        (_target(4, 4, Autoscaler(4, 10)), 20, True, EnsureCanary(1, Autoscaler(1, 2))),
        # Not reported yet: spec.replicas stands in.
        (_target(8, None, HPA), 50, True, EnsureCanary(4, Autoscaler(2, 5))),
        # Held at a weight: only the autoscaler's own minimum, whatever the stable runs.
        (_target(10, 10, HPA), 50, False, EnsureCanary(2, Autoscaler(2, 5))),
    ],
)
def test_canary_size(target: TargetState, weight: int, moving: bool, size: EnsureCanary) -> None:
    """What the canary Deployment is asked to be at a weight."""
    assert steps.canary_size(target, weight, moving=moving) == size


def _ensured(decisions: list[Decision]) -> list[EnsureCanary]:
    return [a for d in decisions for a in d.actions if isinstance(a, EnsureCanary)]


def test_release_sizes_the_canary_from_the_stables_current_pods_at_each_weight() -> None:
    """6 stable pods under an HPA of 4..10: 10% starts 1 pod (HPA 1..1), 50% raises to 3 (HPA
    2..5), and in between the canary is never re-sized from the stable."""
    cluster = FakeCluster(stable_replicas=6, autoscaler=HPA)
    status, _, decisions = run(make_plan(), cluster)
    assert status.phase == "Succeeded"
    sizes = sorted(set(_ensured(decisions)), key=lambda e: (e.replicas, str(e.autoscaler)))
    assert sizes == [
        EnsureCanary(1, Autoscaler(1, 1)),
        EnsureCanary(2, Autoscaler(2, 5)),
        EnsureCanary(3, Autoscaler(2, 5)),
    ]
    assert cluster.canary_autoscaler is None  # removed with the canary
    assert status.stable_ready_at_start == 6


def test_stable_scaled_by_its_hpa_mid_step_changes_nothing_until_the_next_weight() -> None:
    """At 10% the stable grows from 4 to 8 pods: the canary is not touched until it moves to
    50%, where it starts from the 8 (4 pods, HPA 2..5)."""
    cluster = FakeCluster(stable_replicas=4, autoscaler=HPA)
    # Enough requests per step that step 1 is judged over several ticks at 8 stable pods.
    plan = make_plan(analysis={"minRequestsPerStep": 500, "successRate": {"min": 99}})
    status = RolloutStatus()
    now = T0
    decisions: list[Decision] = []
    while status.phase in ("Pending", "Initializing") or status.current_step_index == 0:
        decision = machine.decide(plan, status, cluster.observe(), now)
        for action in decision.actions:
            cluster.apply(action)
        decisions.append(decision)
        status = decision.status
        cluster.settle()
        if cluster.weight == 10:
            cluster.stable_replicas = 8  # the stable's HPA, as load grows
        now += decision.requeue_after or timedelta(seconds=15)
    # The last decision passed step 1 and began step 2 (moving to 50%).
    at_eight = [d for d in decisions[:-1] if d.status.canary_weight == 10]
    assert len(at_eight) >= 2
    assert set(_ensured(decisions[:-1])) == {EnsureCanary(1, Autoscaler(1, 1))}
    assert _ensured(decisions[-1:]) == [EnsureCanary(4, Autoscaler(2, 5))]
    assert SetWeight(50) not in decisions[-1].actions  # not before the 4 pods are ready
    assert cluster.canary_replicas == 4


def _until_rolled_back(cluster: FakeCluster, ready_at_50: int) -> list[Decision]:
    """Run a one-step (50%) release to RolledBack; once at 50% the stable has ``ready_at_50``
    ready pods."""
    plan = make_plan(steps=[{"setWeight": 50}])
    status, now = RolloutStatus(), T0
    decisions: list[Decision] = []
    while status.phase != "RolledBack":
        if cluster.weight == 50:
            cluster.stable_ready_pods = ready_at_50
        decision = machine.decide(plan, status, cluster.observe(), now)
        for action in decision.actions:
            cluster.apply(action)
        decisions.append(decision)
        status = decision.status
        cluster.settle()
        now += decision.requeue_after or timedelta(seconds=15)
        assert len(decisions) < 100
    return decisions


def test_rollback_onto_a_scaled_down_stable_moves_at_once_and_says_so() -> None:
    """The stable had 6 ready pods at the start and has 3 when the canary fails: all traffic
    goes back at once, with a StableUnderCapacity Warning and StableCapacity=False."""
    cluster = FakeCluster(stable_replicas=6, autoscaler=HPA, canary_error_rate=0.3)
    plan = make_plan(steps=[{"setWeight": 50}])
    status = RolloutStatus()
    now = T0
    decision = None
    while status.phase not in ("RollingBack", "RolledBack"):
        if cluster.weight == 50:
            cluster.stable_ready_pods = 3  # its HPA scaled it down while it served half
        decision = machine.decide(plan, status, cluster.observe(), now)
        for action in decision.actions:
            cluster.apply(action)
        status = decision.status
        cluster.settle()
        now += decision.requeue_after or timedelta(seconds=15)
    assert decision is not None
    assert decision.actions == (SetWeight(0),)
    warnings = {e.reason: e.message for e in decision.events if e.type == "Warning"}
    assert "AnalysisFailed" in warnings
    assert "with 3 ready pod(s); it served all traffic with 6" in warnings["StableUnderCapacity"]
    assert "HorizontalPodAutoscaler" in warnings["StableUnderCapacity"]
    capacity = next(c for c in status.conditions if c.type == "StableCapacity")
    assert (capacity.status, capacity.reason) == ("False", "FewerReadyPodsThanAtStart")


def test_rollback_without_an_autoscaler_names_only_the_pods() -> None:
    """A stable scaled down by hand (no HPA) is reported the same way, without the HPA note."""
    cluster = FakeCluster(stable_replicas=4, canary_error_rate=0.3)
    decisions = _until_rolled_back(cluster, ready_at_50=1)
    warning = next(e for d in decisions for e in d.events if e.reason == "StableUnderCapacity")
    assert "with 1 ready pod(s); it served all traffic with 4" in warning.message
    assert "HorizontalPodAutoscaler" not in warning.message


@pytest.mark.parametrize("ready", [4, 5])
def test_rollback_with_enough_stable_pods_says_nothing_more(ready: int) -> None:
    """As many ready stable pods as at the start (or more): no capacity warning."""
    cluster = FakeCluster(stable_replicas=4, autoscaler=HPA, canary_error_rate=0.3)
    decisions = _until_rolled_back(cluster, ready_at_50=ready)
    assert not any(e.reason == "StableUnderCapacity" for d in decisions for e in d.events)
    assert not any(c.type == "StableCapacity" for c in decisions[-1].status.conditions)


def test_rollback_before_any_traffic_moved_says_nothing_about_capacity() -> None:
    """Canary pods that never become ready: rolled back at 0%, the stable took nothing back."""
    cluster = FakeCluster(stable_replicas=4, autoscaler=HPA, pods_become_ready=False)
    plan = make_plan()
    status, now, _ = run(plan, cluster, max_ticks=2)
    cluster.stable_ready_pods = 2
    status, _, decisions = run(plan, cluster, status=status, now=now, max_ticks=1000)
    assert status.phase == "RolledBack"
    assert not any(e.reason == "StableUnderCapacity" for d in decisions for e in d.events)
