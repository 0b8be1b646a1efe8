"""A gate passes only on an approval the controller first saw after the gate opened, judged by
the controller's clock (status.commandsSeen), never by the client's 'at'."""

from __future__ import annotations

from datetime import timedelta

from canary.core import machine, vocabulary
from canary.model.status import RolloutStatus
from tests.unit.fake_cluster import T0, FakeCluster, make_plan, run


def _approve(minutes: float) -> vocabulary.Command:
    return vocabulary.Command(kind="approve", at=T0 + timedelta(minutes=minutes), actor="ana")


def test_an_approval_given_while_progressing_does_not_pass_the_later_gate() -> None:
    """Seen before the gate opened (even with an 'at' far in the future): the gate waits."""
    plan = make_plan(approvals={"beforePromotion": {"required": True}})
    cluster = FakeCluster()
    early = (_approve(60 * 24 * 365),)
    status, now, _ = run(plan, cluster, commands=early, max_ticks=3)
    assert status.phase in ("Initializing", "Progressing")
    status, now, _ = run(plan, cluster, status=status, now=now, commands=early, max_ticks=60)
    assert status.phase == "WaitingApproval"
    assert status.approvals == []
    seen = {c.kind: c.seen_at for c in status.commands_seen}
    assert status.phase_since is not None
    assert seen["approve"] < status.phase_since


def test_an_approval_in_the_manifest_does_not_pass_before_start() -> None:
    """An approval present from the very first reconcile never opens the beforeStart gate."""
    plan = make_plan(approvals={"beforeStart": True})
    cluster = FakeCluster()
    status, _, _ = run(plan, cluster, commands=(_approve(0),), max_ticks=20)
    assert status.phase == "WaitingApproval"
    assert status.approvals == []


def test_an_approval_first_seen_after_the_gate_opened_passes_and_survives_a_restart() -> None:
    """A new approval passes; what was seen when is kept in status, so a restarted controller
    (same status, fresh process) judges the same way."""
    plan = make_plan(approvals={"beforePromotion": {"required": True}})
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster)
    assert status.phase == "WaitingApproval"
    stale = (_approve(-5),)
    decision = machine.decide(plan, status, cluster.observe(commands=stale), now)
    assert decision.status.phase == "WaitingApproval"
    restarted = RolloutStatus.model_validate(decision.status.wire())
    fresh = (_approve(1),)
    later = now + timedelta(seconds=30)
    status, _, _ = run(plan, cluster, status=restarted, now=later, commands=fresh)
    assert status.phase == "Succeeded"
    assert [(a.gate, a.decision, a.actor) for a in status.approvals] == [
        ("beforePromotion", "Approved", "ana")
    ]
