"""Every phase transition of the rollout state machine, one scenario per row or test."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest

from canary.core import machine, power, vocabulary
from canary.errors import Problem
from canary.model.status import ApprovalRecord, RolloutStatus
from tests.unit.fake_cluster import T0, FakeCluster, make_plan, run


def _cmd(kind: vocabulary.CommandKind, minutes: int = 0) -> vocabulary.Command:
    return vocabulary.Command(kind=kind, at=T0 + timedelta(minutes=minutes), actor="ana")


def _conditions(status: RolloutStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def test_healthy_release_is_promoted_and_cleaned_up() -> None:
    """A healthy canary passes every step, stable gets the release, route 100% stable, canary 0."""
    cluster = FakeCluster()
    status, _, decisions = run(make_plan(), cluster)
    assert status.phase == "Succeeded"
    assert [s.verdict for s in status.steps] == ["Passed", "Passed"]
    assert cluster.stable_template == "v2"
    assert cluster.weight == 0
    assert cluster.canary_replicas == 0
    assert status.finished_at is not None
    reasons = [e.reason for d in decisions for e in d.events]
    assert reasons == [
        "Initialized",
        "StepAdvanced",
        "StepAdvanced",
        "PromotionStarted",
        "Promoted",
    ]
    assert _conditions(status)["Progressing"] == ("False", "Succeeded")


def test_error_regression_rolls_back_without_touching_stable() -> None:
    """A canary failing 20% of requests is rolled back: 100% stable, canary 0, stable unchanged."""
    cluster = FakeCluster(canary_error_rate=0.2)
    status, _, decisions = run(make_plan(), cluster)
    assert status.phase == "RolledBack"
    assert status.steps[0].verdict == "Failed"
    assert "step 1 failed analysis" in status.message
    assert cluster.stable_template == "v1"
    assert (cluster.weight, cluster.canary_replicas) == (0, 0)
    rollback_tick = next(d for d in decisions if d.status.phase == "RollingBack")
    assert rollback_tick.actions == (vocabulary.SetWeight(0),)
    assert [e.type for e in rollback_tick.events] == ["Warning"]


def test_missing_target_waits_with_a_condition_and_changes_nothing() -> None:
    """A Rollout whose Deployment does not exist stays Pending, says TargetNotFound, acts not."""
    cluster = FakeCluster(target_exists=False)
    decision = machine.decide(make_plan(), RolloutStatus(), cluster.observe(), T0)
    assert decision.status.phase == "Pending"
    assert decision.actions == ()
    assert _conditions(decision.status)["Valid"] == ("False", "TargetNotFound")
    assert decision.requeue_after == machine.RETRY_REFERENCES


def test_missing_apex_service_waits_with_a_condition() -> None:
    """A Rollout whose apex Service does not exist stays Pending with ServiceNotFound."""
    obs = FakeCluster().observe()
    obs = vocabulary.Observation(target=obs.target, apex_service=False)
    decision = machine.decide(make_plan(), RolloutStatus(), obs, T0)
    assert decision.status.phase == "Pending"
    assert decision.actions == ()
    assert _conditions(decision.status)["Valid"] == ("False", "ServiceNotFound")


def test_initializing_moves_leftover_traffic_to_stable_first() -> None:
    """A route left at 20% by an older release goes to 0% before the canary is replaced."""
    cluster = FakeCluster(route_exists=True, weight=20)
    status = RolloutStatus(phase="Initializing", phase_since=T0)
    decision = machine.decide(make_plan(), status, cluster.observe(), T0)
    assert decision.actions == (vocabulary.SetWeight(0),)
    assert decision.status.phase == "Initializing"


def test_canary_pods_never_ready_roll_back_after_the_deadline() -> None:
    """Canary pods that never become ready roll the release back after the progress deadline."""
    cluster = FakeCluster(pods_become_ready=False)
    plan = make_plan()
    status, now, _ = run(plan, cluster, max_ticks=1000)
    assert status.phase == "RolledBack"
    assert "not ready" in status.message
    assert plan.progress.timeout == timedelta(minutes=10)
    assert now - T0 > plan.progress.timeout


def test_canary_pods_for_a_larger_step_never_ready_roll_back() -> None:
    """Pods for the next step's weight that never come up roll back after the deadline."""
    cluster = FakeCluster()
    plan = make_plan()
    status, now, _ = run(plan, cluster, max_ticks=2)
    assert (status.phase, status.current_step_index) == ("Progressing", 0)
    cluster.pods_become_ready = False
    status, now, _ = run(plan, cluster, status=status, now=now, max_ticks=1000)
    assert status.phase == "RolledBack"
    assert "not ready" in status.message


def test_blind_controller_holds_and_never_advances() -> None:
    """With Prometheus unavailable the step holds at its weight, however long it lasts."""
    cluster = FakeCluster()
    plan = make_plan()
    status, now, _ = run(plan, cluster, max_ticks=2)
    for _ in range(100):
        now += timedelta(minutes=1)
        decision = machine.decide(plan, status, cluster.observe(metrics_error="timeout"), now)
        status = decision.status
        for a in decision.actions:
            cluster.apply(a)
    assert status.phase == "Progressing"
    assert status.current_step_index == 0
    assert _conditions(status)["Healthy"] == ("Unknown", "MetricsUnavailable")
    decision = machine.decide(plan, status, cluster.observe(), now)
    assert decision.status.current_step_index == 1


@pytest.mark.parametrize(
    ("on_timeout", "phase"), [("Rollback", "RolledBack"), ("Hold", "Progressing")]
)
def test_no_canary_traffic_applies_the_no_data_policy(on_timeout: str, phase: str) -> None:
    """No canary requests hold the step; after noData.timeout it rolls back or keeps holding."""
    plan = make_plan(
        analysis={"minRequestsPerStep": 50, "noData": {"timeout": "2m", "onTimeout": on_timeout}}
    )
    cluster = FakeCluster(rps=0)
    status, _, _ = run(plan, cluster, max_ticks=40)
    assert status.phase == phase
    assert status.current_step_index == 0


def test_too_few_requests_keep_collecting() -> None:
    """Below minRequestsPerStep the step stays where it is, recording the counts so far."""
    plan = make_plan(analysis={"minRequestsPerStep": 10_000})
    cluster = FakeCluster()
    status, _, _ = run(plan, cluster, max_ticks=4)
    assert status.phase == "Progressing"
    assert status.current_step_index == 0
    assert 0 < status.steps[0].canary.requests < 10_000
    assert status.steps[0].canary.success_rate == 100.0
    # The condition says where the release is, not how it started.
    progressing = next(c for c in status.conditions if c.type == "Progressing")
    assert (progressing.status, progressing.reason) == ("True", "StepAdvanced")
    assert progressing.message.startswith("step 1/")


def test_route_not_yet_accepted_is_not_judged() -> None:
    """Counts are not attributed to a step until the mesh has accepted its weights."""
    cluster = FakeCluster()
    plan = make_plan()
    status, now, _ = run(plan, cluster, max_ticks=2)
    cluster.accepted = False
    decision = machine.decide(plan, status, cluster.observe(), now + timedelta(seconds=15))
    assert decision.status.steps[0].canary.requests == status.steps[0].canary.requests


def test_timed_pause_waits_its_duration() -> None:
    """A pause step with a duration holds the weight for that long, then goes on."""
    plan = make_plan(steps=[{"setWeight": 10}, {"pause": {"duration": "5m"}}, {"setWeight": 50}])
    cluster = FakeCluster()
    status, _, decisions = run(plan, cluster)
    assert status.phase == "Succeeded"
    paused = [d for d in decisions if d.status.phase == "Paused"]
    assert paused
    assert status.steps[1].finished_at is not None
    assert status.steps[1].finished_at - status.steps[1].started_at >= timedelta(minutes=5)


def test_failure_during_a_timed_pause_rolls_back() -> None:
    """The canary is still judged while paused: a regression rolls it back mid-pause."""
    plan = make_plan(steps=[{"setWeight": 10}, {"pause": {"duration": "1h"}}, {"setWeight": 50}])
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster, max_ticks=4)
    assert status.phase == "Paused"
    cluster.canary_error_rate = 0.5
    status, now, _ = run(plan, cluster, status=status, now=now)
    assert status.phase == "RolledBack"
    assert status.steps[1].verdict == "Failed"


def test_approval_pause_waits_for_approve() -> None:
    """A pause step without a duration waits for `canary approve`, then goes on."""
    plan = make_plan(steps=[{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}])
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster)
    assert status.phase == "WaitingApproval"
    assert machine.gate_name(plan, status) == "step-1"
    later = machine.decide(plan, status, cluster.observe(), now + timedelta(hours=5))
    assert later.status.phase == "WaitingApproval"
    # A person approves once the gate is open (a moment after it opened).
    later_now = now + timedelta(seconds=1)
    status, _, _ = run(plan, cluster, status=status, now=later_now, commands=(_cmd("approve", 60),))
    assert status.phase == "Succeeded"
    assert [(r.gate, r.decision, r.actor) for r in status.approvals] == [
        ("step-1", "Approved", "ana")
    ]


def test_failure_while_waiting_for_approval_rolls_back() -> None:
    """A regression seen while a pause waits for approval rolls back at once."""
    plan = make_plan(steps=[{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}])
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster)
    cluster.canary_error_rate = 0.5
    decision = machine.decide(plan, status, cluster.observe(), now + timedelta(seconds=15))
    assert decision.status.phase == "RollingBack"


@pytest.mark.parametrize(
    ("on_timeout", "phase", "weight"), [("Rollback", "RolledBack", 0), ("Continue", "Succeeded", 0)]
)
def test_approval_pause_timeout(on_timeout: str, phase: str, weight: int) -> None:
    """An approval pause that times out rolls back or continues, as configured."""
    plan = make_plan(
        steps=[
            {"setWeight": 10},
            {"pause": {"timeout": "30m", "onTimeout": on_timeout}},
            {"setWeight": 50},
        ]
    )
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster)
    assert status.phase == "WaitingApproval"
    status, _, _ = run(
        plan, cluster, status=status, now=now + timedelta(minutes=31), stop_at_gates=False
    )
    assert status.phase == phase
    assert cluster.weight == weight
    assert any(r.decision == "TimedOut" for r in status.approvals)


def test_approval_before_start() -> None:
    """approvals.beforeStart holds the rollout before anything is created, until approved."""
    plan = make_plan(approvals={"beforeStart": True})
    cluster = FakeCluster()
    status, now, decisions = run(plan, cluster)
    assert status.phase == "WaitingApproval"
    assert machine.gate_name(plan, status) == "beforeStart"
    assert all(d.actions == () for d in decisions)
    later = now + timedelta(seconds=1)
    status, _, _ = run(plan, cluster, status=status, now=later, commands=(_cmd("approve"),))
    assert status.phase == "Succeeded"


@pytest.mark.parametrize(
    ("gate", "phase"),
    [
        ({"required": True, "timeout": "1h", "onTimeout": "Promote"}, "Succeeded"),
        ({"required": True, "timeout": "1h"}, "RolledBack"),
    ],
)
def test_approval_before_promotion_times_out(gate: dict[str, object], phase: str) -> None:
    """approvals.beforePromotion waits after the last step; its timeout promotes or rolls back."""
    plan = make_plan(approvals={"beforePromotion": gate})
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster)
    assert status.phase == "WaitingApproval"
    assert machine.gate_name(plan, status) == "beforePromotion"
    assert cluster.stable_template == "v1"
    waiting = machine.decide(plan, status, cluster.observe(), now + timedelta(minutes=30))
    assert waiting.requeue_after == timedelta(minutes=30)
    status, _, _ = run(
        plan, cluster, status=status, now=now + timedelta(hours=2), stop_at_gates=False
    )
    assert status.phase == phase


def test_approval_before_promotion_approved() -> None:
    """Approving the promotion gate promotes."""
    plan = make_plan(approvals={"beforePromotion": {"required": True}})
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster)
    later = now + timedelta(seconds=1)
    status, _, _ = run(plan, cluster, status=status, now=later, commands=(_cmd("approve"),))
    assert status.phase == "Succeeded"
    assert status.approvals[0].gate == "beforePromotion"


def test_abort_mid_rollout_routes_back_and_ends_aborted() -> None:
    """`canary abort` mid-way: 100% stable, canary at zero, phase Aborted, stable untouched."""
    plan = make_plan()
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster, max_ticks=2)
    status, _, _ = run(plan, cluster, status=status, now=now, commands=(_cmd("abort"),))
    assert status.phase == "Aborted"
    assert (cluster.weight, cluster.canary_replicas, cluster.stable_template) == (0, 0, "v1")
    assert status.approvals[-1].decision == "Aborted"


def test_promote_command_skips_remaining_steps() -> None:
    """`canary promote` mid-way promotes at once."""
    plan = make_plan(steps=[{"setWeight": 10}, {"setWeight": 20}, {"setWeight": 50}])
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster, max_ticks=2)
    status, _, _ = run(plan, cluster, status=status, now=now, commands=(_cmd("promote"),))
    assert status.phase == "Succeeded"
    assert status.current_step_index == 0
    assert cluster.stable_template == "v2"


def test_retry_restarts_a_rolled_back_release() -> None:
    """`canary retry` on a rolled-back release starts it over from the first step."""
    plan = make_plan()
    cluster = FakeCluster(canary_error_rate=0.5)
    status, now, _ = run(plan, cluster)
    assert status.phase == "RolledBack"
    cluster.canary_error_rate = 0.0
    status, _, _ = run(plan, cluster, status=status, now=now, commands=(_cmd("retry", 5),))
    assert status.phase == "Succeeded"
    assert [r.decision for r in status.approvals] == ["Retried"]


def test_finished_release_ignores_retry_and_is_not_requeued() -> None:
    """A Succeeded release does nothing, even when asked to retry."""
    status = RolloutStatus(phase="Succeeded", message="promoted")
    obs = FakeCluster(stable_template="v2").observe(commands=(_cmd("retry"),))  # promoted
    decision = machine.decide(make_plan(), status, obs, T0)
    assert decision.actions == ()
    assert decision.requeue_after is None
    assert decision.status == status


def test_handled_commands_are_not_applied_twice() -> None:
    """A command already recorded in status (same time) is ignored."""
    plan = make_plan()
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster, max_ticks=2)
    record = ApprovalRecord(gate="step-0", decision="Aborted", at=T0)
    status = status.model_copy(update={"approvals": [record]})
    decision = machine.decide(plan, status, cluster.observe(commands=(_cmd("abort"),)), now)
    assert decision.status.phase == "Progressing"


def test_newer_rollout_supersedes_an_active_one() -> None:
    """An active rollout with a newer Rollout for the same target stops acting: Superseded."""
    plan = make_plan()
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster, max_ticks=2)
    obs = cluster.observe()
    obs = vocabulary.Observation(
        target=obs.target, apex_service=True, route=obs.route, superseded_by="podinfo-3"
    )
    decision = machine.decide(plan, status, obs, now)
    assert decision.status.phase == "Superseded"
    assert decision.actions == ()
    assert "podinfo-3" in decision.status.message


def test_deleted_target_mid_release_routes_back_and_fails() -> None:
    """If the stable Deployment disappears mid-release, traffic goes back and the rollout fails."""
    plan = make_plan()
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster, max_ticks=2)
    cluster.target_exists = False
    decision = machine.decide(plan, status, cluster.observe(), now)
    assert decision.status.phase == "Failed"
    assert decision.actions == (vocabulary.SetWeight(0), vocabulary.ScaleCanaryToZero())


def test_invalid_spec_before_start_changes_nothing() -> None:
    """An invalid spec on a new Rollout: Failed with Valid=False and a message, no actions."""
    problems = [Problem("spec.steps[0].setWeight", "too high", "use 0–100")]
    decision = machine.invalid(RolloutStatus(), problems, T0)
    assert decision.actions == ()
    assert decision.status.phase == "Failed"
    assert _conditions(decision.status)["Valid"] == ("False", "InvalidSpec")
    assert "spec.steps[0].setWeight: too high (use 0–100)" in decision.status.message
    assert [e.reason for e in decision.events] == ["InvalidSpec"]
    again = machine.invalid(decision.status, problems, T0 + timedelta(minutes=1))
    assert again.events == ()
    assert again.status.phase_since == T0


def test_invalid_spec_mid_release_routes_back() -> None:
    """A spec made invalid mid-release sends all traffic back to stable."""
    status = RolloutStatus(phase="Progressing", canary_weight=20)
    decision = machine.invalid(status, [Problem("spec", "bad")], T0)
    assert decision.actions == (vocabulary.SetWeight(0), vocabulary.ScaleCanaryToZero())


def test_fixed_spec_starts_over() -> None:
    """Once an invalid spec is fixed, the Rollout starts from Pending again."""
    failed = machine.invalid(RolloutStatus(), [Problem("spec", "bad")], T0).status
    status, _, _ = run(make_plan(), FakeCluster(), status=failed)
    assert status.phase == "Succeeded"
    assert _conditions(status)["Valid"] == ("True", "Resolved")


def test_rollback_waits_for_the_route_to_be_accepted() -> None:
    """Rollback does not scale the canary down before the mesh accepted the 100/0 weights."""
    plan = make_plan()
    cluster = FakeCluster(route_exists=True, weight=0, accepted=False, canary_exists=True)
    cluster.canary_replicas = 2
    status = RolloutStatus(phase="RollingBack", phase_since=T0)
    decision = machine.decide(plan, status, cluster.observe(), T0)
    assert decision.actions == (vocabulary.SetWeight(0),)


def test_generation_is_stamped() -> None:
    """with_generation records the spec generation the decision was made from."""
    decision = machine.decide(make_plan(), RolloutStatus(), FakeCluster().observe(), T0)
    assert vocabulary.with_generation(decision, 7).status.observed_generation == 7


def test_condition_keeps_its_transition_time_while_unchanged() -> None:
    """lastTransitionTime moves only when a condition's status changes."""
    first = vocabulary.set_condition([], "Healthy", status=True, reason="Pass", message="", now=T0)
    later = T0 + timedelta(minutes=1)
    same = vocabulary.set_condition(
        first, "Healthy", status=True, reason="Pass", message="x", now=later
    )
    flipped = vocabulary.set_condition(
        same, "Healthy", status=False, reason="Fail", message="", now=later
    )
    assert same[0].last_transition_time == T0
    assert flipped[0].last_transition_time == later
    assert len(flipped) == 1


def test_opening_approval_pause_waits_at_zero_weight() -> None:
    """A rollout that opens with an approval pause waits at 0% and sends the canary nothing."""
    plan = make_plan(steps=[{"pause": {}}, {"setWeight": 50}])
    cluster = FakeCluster()
    status, _, _ = run(plan, cluster)
    assert status.phase == "WaitingApproval"
    assert status.steps[0].weight == 0
    assert status.steps[0].canary.requests == 0
    assert cluster.weight == 0


def test_promotion_waits_for_the_stable_rollout() -> None:
    """Traffic stays where it is until the updated stable Deployment has rolled out."""
    cluster = FakeCluster(stable_template="v2", stable_ready=False, route_exists=True, weight=50)
    status = RolloutStatus(phase="Promoting", phase_since=T0)
    decision = machine.decide(make_plan(), status, cluster.observe(), T0)
    assert decision.actions == ()
    assert decision.status.phase == "Promoting"
    assert "roll out" in decision.reason


def test_a_route_the_mesh_refuses_is_reported_and_cleared_once_accepted() -> None:
    """Linkerd's refusal becomes RouteAccepted=False with its reason and message while the
    release waits; once the mesh accepts, the condition turns True and the release goes on."""
    cluster = FakeCluster(route_exists=True, accepted=False, services=True)
    refused = cluster.observe()
    assert refused.route is not None
    route = vocabulary.RouteState(
        0, False, "NoMatchingParent", "Linkerd reports ...; the parent Service podinfo must exist"
    )
    refused = dataclasses.replace(refused, route=route)
    status = RolloutStatus()
    for _ in range(3):
        decision = machine.decide(make_plan(), status, refused, T0)
        status = decision.status
        for action in decision.actions:
            cluster.apply(action)
        cluster.settle()
    assert status.phase == "Initializing"
    assert "NoMatchingParent" in decision.reason
    condition = next(c for c in status.conditions if c.type == "RouteAccepted")
    assert (condition.status, condition.reason) == ("False", "NoMatchingParent")
    assert "must exist" in condition.message
    cluster.accepted = True
    decision = machine.decide(make_plan(), status, cluster.observe(), T0 + timedelta(seconds=5))
    assert _conditions(decision.status)["RouteAccepted"] == ("True", "Accepted")
    assert decision.status.phase == "Progressing"


def _early(cluster: FakeCluster, seconds: float) -> vocabulary.Observation:
    """An observation carrying only counts since the weight changed (no settled window)."""
    counts = cluster.evidence(seconds)
    return dataclasses.replace(cluster.observe(measured=False), early=counts)


def test_an_early_look_rolls_back_a_clearly_failing_canary() -> None:
    """Counts since the weight changed that fail the early look roll back at once; the failed
    step shows those counts, the evidence a person reads for the rollback."""
    plan = make_plan()
    cluster = FakeCluster(canary_error_rate=1.0)
    status, now, _ = run(plan, cluster, max_ticks=2)
    assert status.phase == "Progressing"
    observation = _early(cluster, 2.0)
    assert observation.early is not None
    decision = machine.decide(plan, status, observation, now)
    assert decision.status.phase == "RollingBack"
    assert decision.actions == (vocabulary.SetWeight(0),)
    failed = decision.status.steps[0]
    assert failed.verdict == "Failed"
    assert failed.message.startswith("early look:")
    assert failed.canary.requests == observation.early.canary.requests > 0
    assert failed.canary.failures == observation.early.canary.failures > 0
    assert failed.stable.requests == observation.early.stable.requests


def test_an_early_look_at_a_healthy_canary_changes_nothing() -> None:
    """Healthy counts in an early look neither pass the step nor count toward it."""
    plan = make_plan()
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster, max_ticks=2)
    decision = machine.decide(plan, status, _early(cluster, 60.0), now)
    assert decision.status.phase == "Progressing"
    assert decision.status.current_step_index == status.current_step_index
    assert decision.status.steps == status.steps


def test_a_failing_early_look_that_waited_with_a_window_rolls_back() -> None:
    """The queue hands a failing early look out with the window that waited for a worker: the
    look goes first and rolls back; the window's counts are part of it (both count at the
    step's weight)."""
    plan = make_plan()
    cluster = FakeCluster(canary_error_rate=1.0)
    status, now, _ = run(plan, cluster, max_ticks=2)
    window = cluster.evidence(15.0)
    observation = dataclasses.replace(_early(cluster, 20.0), evidence=window)
    decision = machine.decide(plan, status, observation, now)
    assert decision.status.phase == "RollingBack"
    assert decision.actions == (vocabulary.SetWeight(0),)
    failed = decision.status.steps[0]
    assert failed.message.startswith("early look:")
    assert observation.early is not None
    assert failed.canary.requests == observation.early.canary.requests


def test_a_window_that_came_with_a_look_no_longer_failing_is_judged() -> None:
    """If the look the tick found failing does not fail in the reconcile, the window that came
    with it is judged as it would be alone: no counts are lost."""
    plan = make_plan()
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster, max_ticks=2)
    alone = cluster.observe()
    assert alone.evidence is not None
    with_look = dataclasses.replace(alone, early=cluster.evidence(20.0))
    expected = machine.decide(plan, status, alone, now)
    decision = machine.decide(plan, status, with_look, now)
    assert decision.status == expected.status
    assert decision.actions == expected.actions
    assert decision.status.steps[0].canary != status.steps[0].canary  # the window counted


def test_a_failing_early_look_measured_before_an_outage_still_rolls_back() -> None:
    """A failing look that waited for a worker while the metrics became unreadable rolls back
    (its counts were measured); a look that does not fail leaves the outage reported."""
    plan = make_plan()
    bad = FakeCluster(canary_error_rate=1.0)
    status, now, _ = run(plan, bad, max_ticks=2)
    observation = dataclasses.replace(_early(bad, 20.0), metrics_error="Prometheus is down")
    decision = machine.decide(plan, status, observation, now)
    assert decision.status.phase == "RollingBack"
    assert decision.status.steps[0].message.startswith("early look:")
    good = FakeCluster()
    status, now, _ = run(plan, good, max_ticks=2)
    outage = good.observe(measured=False, metrics_error="Prometheus is down")
    expected = machine.decide(plan, status, outage, now)
    decision = machine.decide(
        plan, status, dataclasses.replace(outage, early=good.evidence(20)), now
    )
    assert decision.status == expected.status
    assert _conditions(decision.status)["Healthy"] == ("Unknown", "MetricsUnavailable")
    held = make_plan(steps=[{"setWeight": 10}, {"pause": {"duration": "1h"}}, {"setWeight": 50}])
    status, now, _ = run(held, bad := FakeCluster(), max_ticks=4)
    assert status.phase == "Paused"
    bad.canary_error_rate = 1.0
    observation = dataclasses.replace(_early(bad, 20.0), metrics_error="Prometheus is down")
    assert machine.decide(held, status, observation, now).status.phase == "RollingBack"


def test_a_step_short_of_its_minimum_says_when_it_will_have_it() -> None:
    """At the traffic seen so far the message estimates the time left to the minimum, and
    when that is long, what would shorten it."""
    plan = make_plan(analysis={"minRequestsPerStep": 10_000})
    status, _, _ = run(plan, FakeCluster(rps=20), max_ticks=4)
    assert status.phase == "Progressing"
    assert "more at the current canary traffic" in status.message
    assert "load-test hook" in status.message
    busy, _, _ = run(make_plan(analysis={"minRequestsPerStep": 300}), FakeCluster(), max_ticks=3)
    assert busy.phase == "Progressing"
    assert "about" in busy.message
    assert "load-test hook" not in busy.message


def test_time_to_need_extrapolates_the_rate_seen() -> None:
    """100 of 400 requests in 50 s: 150 s more; nothing to say without requests or when done."""
    assert power.time_to_need(100, 400, timedelta(seconds=50)) == timedelta(seconds=150)
    assert power.time_to_need(0, 400, timedelta(seconds=50)) is None
    assert power.time_to_need(400, 400, timedelta(seconds=50)) is None
    assert power.time_to_need(10, 400, timedelta(0)) is None


def _at_first_step() -> tuple[FakeCluster, RolloutStatus, datetime]:
    cluster = FakeCluster()
    status, now, _ = run(make_plan(), cluster, max_ticks=2)
    assert (status.phase, status.current_step_index, cluster.weight) == ("Progressing", 0, 10)
    assert cluster.canary_ready > 0
    return cluster, status, now


def test_a_canary_whose_pods_stop_being_ready_at_a_live_weight_is_rolled_back() -> None:
    """The canary's pods crash after its share went live: no proxy counts the failing requests,
    so the step cannot judge them. The controller says so at once (one Warning Event,
    ``unreadySince`` on the step) and rolls back once no pod has been ready for the plan's
    ``canary_unavailable`` (30 s by default), not at the 10-minute progress deadline. Stable
    is untouched."""
    cluster, status, now = _at_first_step()
    cluster.pods_become_ready, cluster.canary_ready = False, 0
    plan = make_plan()
    first = machine.decide(plan, status, cluster.observe(), now)
    assert first.status.phase == "Progressing"
    assert first.status.steps[0].unready_since == now
    assert [(e.reason, e.type) for e in first.events] == [("CanaryUnavailable", "Warning")]
    assert "10%" in first.events[0].message
    assert first.requeue_after is not None
    assert first.requeue_after <= plan.canary_unavailable
    later = machine.decide(plan, first.status, cluster.observe(), now + timedelta(seconds=29))
    assert later.status.phase == "Progressing"
    assert later.events == ()  # said once
    status, end, decisions = run(plan, cluster, status=first.status, now=now, max_ticks=100)
    assert status.phase == "RolledBack"
    assert "no canary pod was ready for 30s" in status.message
    rollback = next(d for d in decisions if d.status.phase == "RollingBack")
    assert rollback.actions == (vocabulary.SetWeight(0),)
    assert end - now < timedelta(seconds=60)
    assert cluster.stable_template == "v1"
    assert cluster.weight == 0


def test_the_canary_unavailable_time_is_the_policys_when_it_sets_one() -> None:
    """``progressDeadline.canaryUnavailable: 2m`` (a node drain that takes longer than 30 s):
    no ready canary pod for 90 s holds the step; for 2 minutes, it rolls back, and the Event
    and the message say 2m."""
    cluster, status, now = _at_first_step()
    plan = make_plan(progressDeadline={"canaryUnavailable": "2m"})
    assert plan.canary_unavailable == timedelta(minutes=2)
    cluster.pods_become_ready, cluster.canary_ready = False, 0
    first = machine.decide(plan, status, cluster.observe(), now)
    assert "rolling back if none is within 2m" in first.events[0].message
    held = machine.decide(plan, first.status, cluster.observe(), now + timedelta(seconds=90))
    assert held.status.phase == "Progressing"
    late = machine.decide(plan, held.status, cluster.observe(), now + timedelta(minutes=2))
    assert late.status.phase == "RollingBack"
    assert "no canary pod was ready for 2m" in late.events[0].message


def test_a_canary_pod_replaced_in_time_keeps_the_release_going() -> None:
    """No ready canary pod for less than the plan's ``canary_unavailable`` (30 s by default;
    a pod moved by a node drain) holds nothing back for good: once a pod is ready the mark is
    cleared and the release goes on to promotion; a route sending the canary nothing never
    starts the clock."""
    cluster, status, now = _at_first_step()
    cluster.canary_ready = 0
    plan = make_plan()
    lost = machine.decide(plan, status, cluster.observe(), now)
    assert lost.status.steps[0].unready_since == now
    cluster.settle()  # the replacement pod is ready
    back = machine.decide(plan, lost.status, cluster.observe(), now + timedelta(seconds=20))
    assert back.status.steps[0].unready_since is None
    assert back.status.phase == "Progressing"
    status, _, _ = run(plan, cluster, status=back.status, now=now + timedelta(seconds=20))
    assert status.phase == "Succeeded"

    idle = FakeCluster(route_exists=True, weight=0, canary_exists=True, canary_template="v2")
    cleared = machine.decide(plan, lost.status, idle.observe(), now + timedelta(seconds=40))
    assert cleared.status.phase == "Progressing"  # the canary gets nothing: no clock runs
    assert cleared.status.steps[0].unready_since is None


def test_a_canary_scaled_a_moment_ago_is_not_reported_unavailable() -> None:
    """Right after canary scales its Deployment, the Deployment controller has not seen the new
    spec and no ready pod is counted (``settled`` False). That is not pods going away: no
    Warning Event, no clock. A clock already running is not stopped by it either, and a
    settled observation with no ready pod starts one as before."""
    cluster, status, now = _at_first_step()
    plan = make_plan()
    observed = cluster.observe()
    assert observed.canary is not None
    scaling = dataclasses.replace(
        observed, canary=dataclasses.replace(observed.canary, ready_replicas=0, settled=False)
    )
    quiet = machine.decide(plan, status, scaling, now)
    assert quiet.status.phase == "Progressing"
    assert quiet.status.steps[0].unready_since is None
    assert quiet.events == ()

    gone = dataclasses.replace(
        scaling, canary=dataclasses.replace(observed.canary, ready_replicas=0)
    )
    first = machine.decide(plan, status, gone, now)
    assert first.status.steps[0].unready_since == now
    assert [e.reason for e in first.events] == ["CanaryUnavailable"]
    held = machine.decide(plan, first.status, scaling, now + timedelta(seconds=10))
    assert held.status.steps[0].unready_since == now
    late = machine.decide(plan, held.status, scaling, now + plan.canary_unavailable)
    assert late.status.phase == "RollingBack"


def test_a_paused_step_whose_canary_pods_all_stop_being_ready_is_rolled_back() -> None:
    """A step held by a pause (timed, or an approval gate) keeps watching: no ready canary pod
    at a live weight for the plan's ``canary_unavailable`` (30 s by default) rolls back there
    too."""
    plan = make_plan(steps=[{"setWeight": 10}, {"pause": {"duration": "1h"}}, {"setWeight": 50}])
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster, max_ticks=4)
    assert (status.phase, cluster.weight) == ("Paused", 10)
    cluster.pods_become_ready, cluster.canary_ready = False, 0
    first = machine.decide(plan, status, cluster.observe(), now)
    assert first.status.phase == "Paused"
    assert [e.reason for e in first.events] == ["CanaryUnavailable"]
    late = now + plan.canary_unavailable
    rolled = machine.decide(plan, first.status, cluster.observe(), late)
    assert rolled.status.phase == "RollingBack"
    assert rolled.actions == (vocabulary.SetWeight(0),)
    assert cluster.stable_template == "v1"


@pytest.mark.parametrize(
    ("waited", "recheck"),
    [
        (timedelta(0), timedelta(seconds=1)),
        (timedelta(seconds=3), timedelta(seconds=1)),
        (timedelta(seconds=20), timedelta(seconds=5)),
        (timedelta(minutes=15), machine.ROLLBACK_RECHECK_MAX),
    ],
)
def test_rollback_waiting_for_the_mesh_looks_again_less_often_as_it_waits(
    waited: timedelta, recheck: timedelta
) -> None:
    """A rollback whose route the mesh has not accepted is looked at every second at first,
    then less often (the route's watch event wakes it at once): at N = 1000 a mesh slow to
    accept routes made every such Rollout reconcile every second (313,399 reconciles in run A)."""
    plan = make_plan()
    cluster = FakeCluster(route_exists=True, weight=0, accepted=False, canary_exists=True)
    cluster.canary_replicas = 2
    status = RolloutStatus(phase="RollingBack", phase_since=T0)
    decision = machine.decide(plan, status, cluster.observe(), T0 + waited)
    assert decision.requeue_after == recheck
    assert decision.actions == (vocabulary.SetWeight(0),)
    cluster.accepted = True
    decision = machine.decide(plan, status, cluster.observe(), T0 + waited)
    assert decision.requeue_after == recheck
    assert vocabulary.ScaleCanaryToZero() in decision.actions
