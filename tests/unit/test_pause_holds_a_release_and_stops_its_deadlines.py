"""`canary pause` holds a release at its weight (analysis goes on, a breach still rolls back,
no deadline runs) until `canary resume`; waits then count only the time not held."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest

from canary.core import commands, machine, vocabulary
from canary.core import plan as plan_mod
from canary.model.status import RolloutStatus
from tests.unit.fake_cluster import T0, FakeCluster, make_plan, run


def _cmd(kind: vocabulary.CommandKind, at: timedelta) -> vocabulary.Command:
    return vocabulary.Command(kind=kind, at=T0 + at, actor="ana")


def _hold(
    plan_spec: dict[str, object], cluster: FakeCluster, ticks: int, held_for: timedelta
) -> tuple[RolloutStatus, datetime]:
    """Run ``ticks``, pause, hold for ``held_for`` (ticking), and return status and time."""
    plan = make_plan(**plan_spec)
    status, now, _ = run(plan, cluster, max_ticks=ticks)
    pause = (_cmd("pause", timedelta(0)),)
    end = now + held_for
    while now < end:
        decision = machine.decide(plan, status, cluster.observe(commands=pause), now)
        for action in decision.actions:
            cluster.apply(action)
        status = decision.status
        cluster.settle()
        now += decision.requeue_after or timedelta(seconds=15)
    return status, now


@pytest.mark.parametrize(
    ("name", "spec", "cluster", "ticks", "phase"),
    [
        ("steps", {}, {}, 2, "Progressing"),
        ("progress-deadline", {}, {"pods_become_ready": False}, 2, "Initializing"),
        (
            "metrics-deadline",
            {"analysis": {"unavailable": {"onTimeout": "Rollback"}}},
            {"metrics_error": "down"},
            2,
            "Progressing",
        ),
        (
            "approval-deadline",
            {"approvals": {"beforeStart": True, "timeout": "1h"}},
            {},
            1,
            "WaitingApproval",
        ),
        (
            "pause-step",
            {"steps": [{"setWeight": 10}, {"pause": {"duration": "10m"}}, {"setWeight": 50}]},
            {},
            4,
            "Paused",
        ),
    ],
)
def test_a_held_release_stays_where_it_is_for_hours(
    name: str, spec: dict[str, object], cluster: dict[str, object], ticks: int, phase: str
) -> None:
    """Paused for 3h: no step advances and no deadline fires, whatever it was waiting for."""
    fake = FakeCluster(**cluster)  # type: ignore[arg-type]
    plan = make_plan(**spec)
    before, _, _ = run(plan, fake, max_ticks=ticks)
    assert before.phase == phase
    status, _ = _hold(spec, FakeCluster(**cluster), ticks, timedelta(hours=3))  # type: ignore[arg-type]
    assert (status.phase, status.current_step_index) == (phase, before.current_step_index)
    assert status.paused_at is not None
    assert not any(c.type == "Stalled" for c in status.conditions)
    progressing = next(c for c in status.conditions if c.type == "Progressing")
    assert progressing.reason == "PausedByPerson"
    assert [r.decision for r in status.approvals] == ["Paused"]


def test_breach_while_held_still_rolls_back() -> None:
    """A regression seen while a person holds the release rolls it back."""
    cluster = FakeCluster()
    status, now = _hold({}, cluster, 2, timedelta(minutes=1))
    cluster.canary_error_rate = 0.5
    status, _, _ = run(
        make_plan(), cluster, status=status, now=now, commands=(_cmd("pause", timedelta(0)),)
    )
    assert status.phase == "RolledBack"
    assert (cluster.weight, cluster.canary_replicas) == (0, 0)


def test_a_failing_early_look_measured_before_an_outage_rolls_back_a_held_release() -> None:
    """Held by a person when the metrics become unreadable: a failing look measured before
    the outage still rolls back; without one, the outage is reported and the hold kept."""
    cluster = FakeCluster()
    status, now = _hold({}, cluster, 2, timedelta(minutes=1))
    assert status.paused_at is not None
    pause = (_cmd("pause", timedelta(0)),)
    cluster.canary_error_rate = 1.0
    outage = dataclasses.replace(
        cluster.observe(measured=False, commands=pause), metrics_error="Prometheus is down"
    )
    kept = machine.decide(make_plan(), status, outage, now)
    assert (kept.status.phase, kept.status.paused_at) == ("Progressing", status.paused_at)
    healthy = next(c for c in kept.status.conditions if c.type == "Healthy")
    assert (healthy.status, healthy.reason) == ("Unknown", "MetricsUnavailable")
    with_look = dataclasses.replace(outage, early=cluster.evidence(20.0))
    decision = machine.decide(make_plan(), status, with_look, now)
    assert decision.status.phase == "RollingBack"
    assert decision.status.steps[0].message.startswith("early look:")
    assert decision.actions == (vocabulary.SetWeight(0),)


def test_resume_goes_on_and_deadlines_count_only_unheld_time() -> None:
    """After resume the progress deadline still has what was left of it when the pause began."""
    cluster = FakeCluster(pods_become_ready=False)
    plan = make_plan()
    status, now = _hold({}, cluster, 2, timedelta(hours=3))
    given = (_cmd("pause", timedelta(0)), _cmd("resume", timedelta(hours=4)))
    decision = machine.decide(plan, status, cluster.observe(commands=given), now)
    assert decision.status.paused_at is None
    assert decision.status.phase == "Initializing"
    assert [e.reason for e in decision.events] == ["Resumed"]
    progressing = next(c for c in decision.status.conditions if c.type == "Progressing")
    assert progressing.reason == "Resumed"
    status, end, _ = run(
        plan, cluster, status=decision.status, now=now, commands=given, max_ticks=1000
    )
    assert status.phase == "RolledBack"
    assert end - now >= timedelta(minutes=9)


def test_resumed_release_is_promoted() -> None:
    """A healthy release paused then resumed goes on to Succeeded."""
    cluster = FakeCluster()
    plan = make_plan()
    status, now = _hold({}, cluster, 2, timedelta(minutes=30))
    given = (_cmd("pause", timedelta(0)), _cmd("resume", timedelta(hours=1)))
    status, _, _ = run(plan, cluster, status=status, now=now, commands=given)
    assert status.phase == "Succeeded"
    assert [r.decision for r in status.approvals] == ["Paused", "Resumed"]


def test_repeated_or_unmatched_commands_change_nothing() -> None:
    """A resume of a release not held, or a second pause, is recorded and ignored."""
    cluster = FakeCluster()
    plan = make_plan()
    status, now, _ = run(plan, cluster, max_ticks=2)
    given = (_cmd("resume", timedelta(0)),)
    decision = machine.decide(plan, status, cluster.observe(commands=given), now)
    assert decision.status.paused_at is None
    assert [r.decision for r in decision.status.approvals] == ["Resumed"]
    held, _ = _hold({}, FakeCluster(), 2, timedelta(minutes=1))
    again = (_cmd("pause", timedelta(0)), _cmd("pause", timedelta(minutes=5)))
    decision = machine.decide(plan, held, FakeCluster().observe(commands=again[1:]), now)
    assert decision.status.paused_at == held.paused_at


def test_retry_after_a_rollback_while_held_starts_unheld() -> None:
    """A release rolled back while held starts over not held after `canary retry`."""
    cluster = FakeCluster()
    status, now = _hold({}, cluster, 2, timedelta(minutes=1))
    cluster.canary_error_rate = 0.5
    status, now, _ = run(make_plan(), cluster, status=status, now=now)
    assert status.phase == "RolledBack"
    cluster.canary_error_rate = 0.0
    status, _, _ = run(
        make_plan(), cluster, status=status, now=now, commands=(_cmd("retry", timedelta(days=1)),)
    )
    assert status.phase == "Succeeded"
    assert status.paused_at is None


@pytest.mark.parametrize(
    ("kind", "phase", "refused"),
    [
        ("pause", "Progressing", False),
        ("pause", "WaitingApproval", False),
        ("pause", "Promoting", True),
        ("pause", "Succeeded", True),
        ("resume", "Paused", False),
        ("resume", "RolledBack", True),
    ],
)
def test_pause_and_resume_are_refused_outside_a_running_release(
    kind: vocabulary.CommandKind, phase: str, refused: bool
) -> None:
    """pause/resume make sense only while a release is on its way (not promoting, not over)."""
    assert (commands.refusal(kind, phase) is not None) == refused


def test_outage_that_began_while_held_is_timed_from_the_resume() -> None:
    """Metrics lost while held: after resume, analysis.unavailable's 10m count from the resume."""
    spec: dict[str, object] = {"analysis": {"unavailable": {"onTimeout": "Rollback"}}}
    plan = make_plan(**spec)
    cluster = FakeCluster()
    status, now = _hold(spec, cluster, 2, timedelta(minutes=5))
    cluster.metrics_error = "prometheus: down"
    status, now = _hold_from(plan, status, cluster, now, timedelta(hours=1))
    given = (_cmd("pause", timedelta(0)), _cmd("resume", timedelta(hours=2)))
    resumed_at = now
    status, end, _ = run(plan, cluster, status=status, now=now, commands=given, max_ticks=2000)
    assert status.phase == "RolledBack"
    assert timedelta(minutes=10) <= end - resumed_at <= timedelta(minutes=11)
    progressing = next(c for c in status.conditions if c.type == "Progressing")
    assert progressing.reason == "RolledBack"


def _hold_from(
    plan: plan_mod.Plan, status: RolloutStatus, cluster: FakeCluster, now: datetime, span: timedelta
) -> tuple[RolloutStatus, datetime]:
    end = now + span
    pause = (_cmd("pause", timedelta(0)),)
    while now < end:
        decision = machine.decide(plan, status, cluster.observe(commands=pause), now)
        status = decision.status
        now += decision.requeue_after or timedelta(seconds=15)
    assert status.paused_at is not None
    return status, now
