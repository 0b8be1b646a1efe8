"""A person's hold (`canary pause`) has its own deadline, `pauseDeadline` (default 24h, Hold):
past it the hold is reported once (Stalled, Warning Event) and, as configured, stays, resumes on
its own (Continue) or rolls back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from canary.core import vocabulary
from canary.core.plan import Wait
from tests.unit.fake_cluster import T0, FakeCluster, make_plan, run

PAUSE = (vocabulary.Command(kind="pause", at=T0, actor="ana"),)


def test_the_default_is_to_report_a_hold_after_a_day() -> None:
    """Without pauseDeadline a hold is reported after 24h and stays."""
    assert make_plan().held == Wait(timedelta(hours=24), "Hold")


def test_a_hold_past_its_deadline_is_reported_once_and_stays() -> None:
    """Hold: past the deadline Stalled=PauseDeadlineExceeded, one Warning Event; still held."""
    plan = make_plan(pauseDeadline={"timeout": "1h"})
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster, max_ticks=2)
    step = status.current_step_index
    status, end, decisions = run(
        plan, cluster, status=status, now=now, commands=PAUSE, max_ticks=400
    )
    assert end - now > timedelta(hours=1)
    assert status.phase == "Progressing"
    assert status.current_step_index == step
    assert status.paused_at is not None
    stalled = next(c for c in status.conditions if c.type == "Stalled")
    assert (stalled.status, stalled.reason) == ("True", "PauseDeadlineExceeded")
    assert "held at" in stalled.message
    warnings = [e.reason for d in decisions for e in d.events if e.type == "Warning"]
    assert warnings == ["PauseDeadlineExceeded"]


def test_continue_resumes_on_its_own_and_the_release_goes_on() -> None:
    """onTimeout Continue: the hold ends by itself (recorded as canary's resume) and the
    healthy release is promoted."""
    plan = make_plan(pauseDeadline={"timeout": "1h", "onTimeout": "Continue"})
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster, max_ticks=2)
    status, end, _ = run(plan, cluster, status=status, now=now, commands=PAUSE, max_ticks=1000)
    assert status.phase == "Succeeded"
    assert end - now >= timedelta(hours=1)
    assert [(r.decision, r.actor) for r in status.approvals] == [
        ("Paused", "ana"),
        ("Resumed", "canary"),
    ]


def test_rollback_ends_a_forgotten_hold() -> None:
    """onTimeout Rollback: past the deadline all traffic goes back to stable."""
    plan = make_plan(pauseDeadline={"timeout": "30m", "onTimeout": "Rollback"})
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster, max_ticks=2)
    status, end, _ = run(plan, cluster, status=status, now=now, commands=PAUSE, max_ticks=1000)
    assert status.phase == "RolledBack"
    assert (cluster.weight, cluster.canary_replicas) == (0, 0)
    assert end - now >= timedelta(minutes=30)
    progressing = next(c for c in status.conditions if c.type == "Progressing")
    assert "held by a person for 30m" in progressing.message


@pytest.mark.parametrize("action", ["Fail", "Promote"])
def test_a_pause_deadline_allows_only_hold_continue_and_rollback(action: str) -> None:
    """Other onTimeout values are refused by the model."""
    with pytest.raises(ValidationError):
        make_plan(pauseDeadline={"timeout": "1h", "onTimeout": action})
