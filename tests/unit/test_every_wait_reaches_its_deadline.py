"""Every wait has a deadline: each is reached here and takes its onTimeout action, reported once
as a Stalled condition and a Warning Event (which the notification path delivers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from canary.core import history, machine, vocabulary
from canary.model.status import RolloutStatus
from tests.unit.fake_cluster import T0, FakeCluster, make_plan, run


@dataclass(frozen=True)
class Case:
    """One wait driven past its deadline."""

    id: str
    spec: dict[str, object]
    cluster: dict[str, object]
    reason: str
    """The Stalled condition's reason and the Warning Event's."""
    phase: str
    """The phase once the deadline's action is taken (or, for Hold, still waiting)."""
    weight: int
    canary_replicas: int | None = None
    """None: any number (only checked where the action must keep or remove the canary)."""
    stable: str = "v1"
    ticks: int = 2000
    outcome: str | None = None
    """How ``history.outcome`` names the end (the canary_rollout_outcomes_total reason)."""
    extra: dict[str, object] = field(default_factory=dict)


_PAUSE = [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}]

CASES = [
    Case(
        "progress-default-rolls-back",
        {},
        {"pods_become_ready": False},
        "ProgressDeadlineExceeded",
        "RolledBack",
        weight=0,
        canary_replicas=0,
        outcome="progress_deadline",
    ),
    Case(
        "progress-hold-keeps-waiting",
        {"progressDeadline": {"timeout": "5m", "onTimeout": "Hold"}},
        {"pods_become_ready": False},
        "ProgressDeadlineExceeded",
        "Initializing",
        weight=0,
        ticks=600,
    ),
    Case(
        "promotion-default-fails-leaving-traffic",
        {},
        {"stable_rolls_out": False},
        "PromotionDeadlineExceeded",
        "Failed",
        weight=50,
        canary_replicas=2,
        stable="v2",
        outcome="promotion_deadline",
    ),
    Case(
        "promotion-hold-keeps-waiting",
        {"promotionDeadline": {"timeout": "1m", "onTimeout": "Hold"}},
        {"stable_rolls_out": False},
        "PromotionDeadlineExceeded",
        "Promoting",
        weight=50,
        canary_replicas=2,
        stable="v2",
        ticks=300,
    ),
    Case(
        "metrics-unavailable-default-holds",
        {},
        {"metrics_error": "prometheus: connection refused"},
        "MetricsUnavailableDeadlineExceeded",
        "Progressing",
        weight=10,
        ticks=600,
    ),
    Case(
        "metrics-unavailable-rollback",
        {"analysis": {"unavailable": {"timeout": "3m", "onTimeout": "Rollback"}}},
        {"metrics_error": "prometheus: connection refused"},
        "MetricsUnavailableDeadlineExceeded",
        "RolledBack",
        weight=0,
        canary_replicas=0,
        outcome="metrics_unavailable",
    ),
    Case(
        "no-data-hold",
        {"analysis": {"minRequestsPerStep": 50, "noData": {"timeout": "2m", "onTimeout": "Hold"}}},
        {"rps": 0},
        "NoDataDeadlineExceeded",
        "Progressing",
        weight=10,
        ticks=100,
    ),
    Case(
        "no-data-default-rolls-back",
        {"analysis": {"minRequestsPerStep": 50}},
        {"rps": 0},
        "NoDataDeadlineExceeded",
        "RolledBack",
        weight=0,
        canary_replicas=0,
        outcome="no_data",
    ),
    Case(
        "before-start-default-holds-after-a-day",
        {"approvals": {"beforeStart": True}},
        {},
        "ApprovalDeadlineExceeded",
        "WaitingApproval",
        weight=0,
        ticks=50,
    ),
    Case(
        "before-start-timeout-ends-without-creating-anything",
        {"approvals": {"beforeStart": True, "timeout": "1h"}},
        {},
        "ApprovalDeadlineExceeded",
        "RolledBack",
        weight=0,
        canary_replicas=0,
        outcome="approval_timeout",
        extra={"route_exists": False, "canary_exists": False},
    ),
    Case(
        "before-start-continue-starts",
        {"approvals": {"beforeStart": True, "timeout": "1h", "onTimeout": "Continue"}},
        {},
        "ApprovalDeadlineExceeded",
        "Succeeded",
        weight=0,
        canary_replicas=0,
        stable="v2",
    ),
    Case(
        "pause-uses-the-approvals-default-hold",
        {"steps": _PAUSE, "approvals": {"timeout": "10m", "onTimeout": "Hold"}},
        {},
        "ApprovalDeadlineExceeded",
        "WaitingApproval",
        weight=10,
        ticks=100,
    ),
    Case(
        "before-promotion-promote-is-continue",
        {"approvals": {"beforePromotion": {"timeout": "10m", "onTimeout": "Promote"}}},
        {},
        "ApprovalDeadlineExceeded",
        "Succeeded",
        weight=0,
        canary_replicas=0,
        stable="v2",
    ),
]


def _stalled(status: RolloutStatus) -> tuple[str, str] | None:
    return next(((c.status, c.reason) for c in status.conditions if c.type == "Stalled"), None)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_wait_takes_its_action_at_its_deadline(case: Case) -> None:
    """Past its deadline a wait takes its onTimeout action and reports it once: a Stalled
    condition, one Warning Event with the deadline's reason."""
    plan = make_plan(**case.spec)
    cluster = FakeCluster(**case.cluster)  # type: ignore[arg-type]
    status, _, decisions = run(plan, cluster, max_ticks=case.ticks, stop_at_gates=False)
    assert status.phase == case.phase
    assert (cluster.weight, cluster.stable_template) == (case.weight, case.stable)
    if case.canary_replicas is not None:
        assert cluster.canary_replicas == case.canary_replicas
    for attribute, value in case.extra.items():
        assert getattr(cluster, attribute) == value
    warnings = [e for d in decisions for e in d.events if e.reason == case.reason]
    assert [e.type for e in warnings] == ["Warning"]
    if case.phase != "Succeeded":
        assert _stalled(status) == ("True", case.reason)
    if case.outcome is not None:
        finished = history.outcome(status)
        assert finished is not None
        assert finished.reason == case.outcome


def test_deadlines_are_not_reached_early() -> None:
    """Before its deadline no wait acts or reports: 9 minutes of unready pods keep waiting."""
    plan = make_plan()
    cluster = FakeCluster(pods_become_ready=False)
    status, _, decisions = run(plan, cluster, max_ticks=20)
    decision = machine.decide(plan, status, cluster.observe(), T0 + timedelta(minutes=9))
    assert decision.status.phase == "Initializing"
    assert _stalled(decision.status) is None
    assert decision.requeue_after is not None
    assert all(e.type == "Normal" for d in (*decisions, decision) for e in d.events)


def test_approval_waits_wake_up_at_their_deadline() -> None:
    """A gate waiting for approval asks to be woken exactly at its deadline."""
    plan = make_plan(approvals={"beforeStart": True})
    status, now, _ = run(plan, FakeCluster())
    decision = machine.decide(plan, status, FakeCluster().observe(), now + timedelta(hours=1))
    assert decision.requeue_after == timedelta(hours=23)


def test_metrics_coming_back_clear_stalled_and_the_release_goes_on() -> None:
    """After a held metrics outage, readable metrics lower Stalled and the release is promoted."""
    plan = make_plan()
    cluster = FakeCluster(metrics_error="prometheus: timeout")
    status, now, _ = run(plan, cluster, max_ticks=400)
    assert _stalled(status) == ("True", "MetricsUnavailableDeadlineExceeded")
    assert status.metrics_unavailable_since is not None
    cluster.metrics_error = None
    status, _, _ = run(plan, cluster, status=status, now=now)
    assert status.phase == "Succeeded"
    assert _stalled(status) == ("False", "InTime")
    assert status.metrics_unavailable_since is None


def test_unmeasured_ticks_do_not_repeat_a_held_deadline() -> None:
    """Reconciles without a measurement (watch events) neither lower Stalled nor re-raise it."""
    plan = make_plan()
    cluster = FakeCluster(metrics_error="prometheus: timeout")
    status, now, _ = run(plan, cluster, max_ticks=400)
    quiet = machine.decide(plan, status, cluster.observe(measured=False, metrics_error=""), now)
    assert quiet.events == ()
    assert _stalled(quiet.status) == ("True", "MetricsUnavailableDeadlineExceeded")


def _cmd(kind: vocabulary.CommandKind) -> vocabulary.Command:
    return vocabulary.Command(kind=kind, at=T0 + timedelta(days=1), actor="ana")


def _failed_promotion() -> tuple[FakeCluster, RolloutStatus]:
    cluster = FakeCluster(stable_rolls_out=False)
    status, _, _ = run(make_plan(), cluster, max_ticks=2000)
    assert status.phase == "Failed"
    return cluster, status


def test_failed_promotion_says_what_a_person_should_do() -> None:
    """A stuck promotion fails with the reason and both ways out, never reverting stable."""
    _, status = _failed_promotion()
    progressing = next(c for c in status.conditions if c.type == "Progressing")
    assert (progressing.status, progressing.reason) == ("False", "PromotionDeadlineExceeded")
    for hint in ("30m", "50% canary", "kubectl rollout undo deployment/podinfo", "canary retry"):
        assert hint in status.message


def test_retry_after_a_stuck_promotion_finishes_it() -> None:
    """Once the stable Deployment rolls out, `canary retry` finishes the promotion in place."""
    cluster, status = _failed_promotion()
    cluster.stable_rolls_out = True
    status, _, _ = run(
        make_plan(), cluster, status=status, now=T0 + timedelta(days=1), commands=(_cmd("retry"),)
    )
    assert status.phase == "Succeeded"
    assert (cluster.weight, cluster.canary_replicas, cluster.stable_template) == (0, 0, "v2")
    assert _stalled(status) == ("False", "InTime")


def test_abort_after_a_stuck_promotion_routes_back_to_stable() -> None:
    """After a person reverts the stable Deployment, `canary abort` routes all traffic to it."""
    cluster, status = _failed_promotion()
    cluster.stable_template, cluster.stable_ready = "v1", True  # kubectl rollout undo
    status, _, _ = run(
        make_plan(), cluster, status=status, now=T0 + timedelta(days=1), commands=(_cmd("abort"),)
    )
    assert status.phase == "Aborted"
    assert (cluster.weight, cluster.canary_replicas, cluster.stable_template) == (0, 0, "v1")


def test_abort_before_start_creates_nothing() -> None:
    """Aborting at the beforeStart gate ends the release without creating a route or canary."""
    plan = make_plan(approvals={"beforeStart": True})
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster)
    decision = machine.decide(plan, status, cluster.observe(commands=(_cmd("abort"),)), now)
    assert decision.actions == ()
    assert decision.status.phase == "Aborted"


@pytest.mark.parametrize(
    ("cluster", "named", "not_named"),
    [
        ({"pods_become_ready": False}, "canary pod(s) ready", "route not accepted"),
        ({"accepted": False}, "route not accepted by the mesh yet", "canary pod(s) ready"),
    ],
    ids=["pods", "route"],
)
def test_the_progress_deadline_says_which_part_of_the_canary_was_not_ready(
    cluster: dict[str, object], named: str, not_named: str
) -> None:
    """A start rolled back at the progress deadline says whether the pods or the route (the
    mesh) kept it, so a slow cluster can be told from a mesh that refuses the route. (A route
    the mesh never accepts keeps the rollback waiting for it at 0%: RollingBack.)"""
    plan = make_plan()
    status, _, decisions = run(plan, FakeCluster(**cluster), max_ticks=2000)  # type: ignore[arg-type]
    assert status.phase in ("RollingBack", "RolledBack")
    warnings = [e for d in decisions for e in d.events if e.reason == "ProgressDeadlineExceeded"]
    assert [e.type for e in warnings] == ["Warning"]
    message = warnings[0].message
    assert message.startswith("canary not ready (")
    assert named in message
    assert not_named not in message
