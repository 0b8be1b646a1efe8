"""A gate passes only on an approval the controller first saw while the stored status showed
that gate open (status.commandsSeen[].gate): an order kept by the API server's
resourceVersion-guarded status writes, never judged by the client's 'at' nor by which replica's
clock read it."""

from __future__ import annotations

from datetime import timedelta

from canary.core import machine, vocabulary
from canary.model.status import CommandSeen, RolloutStatus
from tests.unit.fake_cluster import T0, FakeCluster, make_plan, run


def _approve(minutes: float) -> vocabulary.Command:
    return vocabulary.Command(kind="approve", at=T0 + timedelta(minutes=minutes), actor="ana")


def _person(kind: vocabulary.CommandKind, minutes: float) -> vocabulary.Command:
    return vocabulary.Command(kind=kind, at=T0 + timedelta(minutes=minutes), actor="ana")


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
    assert [(c.kind, c.gate) for c in status.commands_seen] == [("approve", None)]


def test_an_approval_in_the_manifest_does_not_pass_before_start() -> None:
    """An approval present from the very first reconcile never opens the beforeStart gate."""
    plan = make_plan(approvals={"beforeStart": True})
    cluster = FakeCluster()
    status, _, _ = run(plan, cluster, commands=(_approve(0),), max_ticks=20)
    assert status.phase == "WaitingApproval"
    assert status.approvals == []


def test_an_approval_present_when_the_gate_opened_never_passes_it() -> None:
    """The approval was in the object the gate's opening was decided from: it waits, however
    many later reconciles see it."""
    plan = make_plan(approvals={"beforePromotion": {"required": True}})
    _, _, ticks = run(plan, FakeCluster())
    cluster = FakeCluster()
    before, now, _ = run(plan, cluster, max_ticks=len(ticks) - 1)
    assert before.phase == "Progressing"
    present = (_approve(-5),)
    status, now, _ = run(plan, cluster, status=before, now=now, commands=present, max_ticks=30)
    assert status.phase == "WaitingApproval"
    assert status.approvals == []


def test_an_approval_first_seen_at_the_open_gate_passes_whatever_its_at_and_the_clock() -> None:
    """Written after the gate opened, read by a restarted replica whose clock is ten minutes
    behind the one that opened it, with an 'at' from last year: it passes, under its actor."""
    plan = make_plan(approvals={"beforePromotion": {"required": True}})
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster)
    assert status.phase == "WaitingApproval"
    restarted = RolloutStatus.model_validate(status.wire())
    behind = now - timedelta(minutes=10)
    late = (_approve(-60 * 24 * 365),)
    status, _, _ = run(plan, cluster, status=restarted, now=behind, commands=late)
    assert status.phase == "Succeeded"
    assert [(a.gate, a.decision, a.actor) for a in status.approvals] == [
        ("beforePromotion", "Approved", "ana")
    ]


def test_a_replica_with_a_clock_ahead_cannot_make_an_early_approval_count() -> None:
    """An approval first seen before the gate opened by a replica whose clock runs an hour
    ahead (so it noted a time after the opening) still does not pass."""
    plan = make_plan(approvals={"beforePromotion": {"required": True}})
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster, max_ticks=3)
    assert status.phase in ("Initializing", "Progressing")
    early = (_approve(0),)
    ahead = machine.decide(plan, status, cluster.observe(commands=early), now + timedelta(hours=1))
    status, _, _ = run(plan, cluster, status=ahead.status, now=now, commands=early, max_ticks=60)
    assert status.phase == "WaitingApproval"
    assert status.approvals == []


def test_an_approval_given_while_a_person_held_the_gate_passes_once_resumed() -> None:
    """Paused at the open gate, approved, then resumed: the approval was given at the open
    gate, so it passes (resuming moves the gate's phaseSince on, which must not matter)."""
    plan = make_plan(approvals={"beforePromotion": {"required": True}})
    cluster = FakeCluster()
    status, now, _ = run(plan, cluster)
    assert status.phase == "WaitingApproval"
    held = (_person("pause", 1),)
    status, now, _ = run(plan, cluster, status=status, now=now, commands=held, max_ticks=1)
    assert status.paused_at is not None
    approved = (*held, _approve(2))
    status, now, _ = run(plan, cluster, status=status, now=now, commands=approved, max_ticks=1)
    assert status.phase == "WaitingApproval"
    resumed = (*approved, _person("resume", 30))
    later = now + timedelta(minutes=30)
    status, _, _ = run(plan, cluster, status=status, now=later, commands=resumed)
    assert status.phase == "Succeeded"
    assert ("beforePromotion", "Approved") in [(a.gate, a.decision) for a in status.approvals]


def test_a_retry_does_not_let_an_approval_seen_at_the_last_releases_gate_open_its_own() -> None:
    """An approval seen at the beforeStart gate of a release that then ended unused does not
    open the beforeStart gate of the retried release."""
    plan = make_plan(approvals={"beforeStart": True})
    cluster = FakeCluster()
    unused = _approve(1)
    ended = RolloutStatus(
        phase="RolledBack",
        commands_seen=[CommandSeen(kind="approve", at=unused.at, seen_at=T0, gate="beforeStart")],
    )
    retry = (unused, _person("retry", 2))
    now = T0 + timedelta(minutes=3)
    status, _, _ = run(plan, cluster, status=ended, now=now, commands=retry, max_ticks=20)
    assert status.phase == "WaitingApproval"
    assert [a.decision for a in status.approvals] == ["Retried"]
