"""After Succeeded, a stable Deployment that no longer runs the release (a GitOps sync put Git's
image back) is reported on the Rollout — once, as a StableReverted Warning and condition — and
never written back; a change of that Deployment wakes the Rollout at once. Only the newest
release that promoted watches its target."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from canary.core import machine, vocabulary
from canary.model.rollout import Rollout
from canary.model.status import RolloutStatus
from canary.ports import Change
from canary.runtime import reconciler as rec
from canary.runtime.controller import Controller
from tests.fakes import FakeMetrics
from tests.unit.fake_cluster import T0, make_plan, make_rollout
from tests.unit.test_reconciler_and_controller_drive_releases import World

SUCCEEDED = RolloutStatus(phase="Succeeded", phase_since=T0, finished_at=T0)


def _target(has_release: bool) -> vocabulary.TargetState:
    return vocabulary.TargetState(replicas=2, ready=True, has_release=has_release)


def _decide(
    status: RolloutStatus, has_release: bool, newer_promotion: bool = False
) -> vocabulary.Decision:
    obs = vocabulary.Observation(
        target=_target(has_release), apex_service=True, newer_promotion=newer_promotion
    )
    return machine.decide(make_plan(), status, obs, T0)


def _reverted(status: RolloutStatus) -> tuple[str, str] | None:
    found = next((c for c in status.conditions if c.type == "StableReverted"), None)
    return None if found is None else (found.status, found.reason)


def test_a_revert_is_reported_once_and_a_restore_clears_it() -> None:
    """Git's image back: a Warning and StableReverted=True, once; the release back: a Normal
    StableRestored and StableReverted=False. Never an action; the phase stays Succeeded."""
    reverted = _decide(SUCCEEDED, has_release=False)
    assert reverted.actions == ()
    assert reverted.status.phase == "Succeeded"
    assert [(e.type, e.reason) for e in reverted.events] == [("Warning", "StableReverted")]
    assert "podinfo=podinfo:6.1.0" in reverted.events[0].message
    assert "docs/gitops.md" in reverted.events[0].message
    assert _reverted(reverted.status) == ("True", "TemplateChanged")
    again = _decide(reverted.status, has_release=False)
    assert (again.events, again.status) == ((), reverted.status)
    restored = _decide(reverted.status, has_release=True)
    assert [(e.type, e.reason) for e in restored.events] == [("Normal", "StableRestored")]
    assert _reverted(restored.status) == ("False", "RunsTheRelease")
    assert restored.actions == ()


def test_nothing_is_said_while_the_release_runs_or_is_not_this_rollouts() -> None:
    """The release still running, the Deployment gone, or a newer release promoted: silence."""
    for decision in (
        _decide(SUCCEEDED, has_release=True),
        _decide(SUCCEEDED, has_release=False, newer_promotion=True),
        machine.decide(
            make_plan(), SUCCEEDED, vocabulary.Observation(target=None, apex_service=True), T0
        ),
    ):
        assert (decision.events, decision.actions) == ((), ())
        assert _reverted(decision.status) is None


def _newer(name: str, phase: str, created: datetime | None = None) -> Rollout:
    base = make_rollout()
    meta = base.metadata.model_copy(update={"name": name, "creation_timestamp": created})
    status = RolloutStatus.model_validate({"phase": phase})
    return base.model_copy(update={"metadata": meta, "status": status})


def test_newer_promotion_counts_only_newer_releases_of_the_same_target_that_promoted() -> None:
    """A newer Rollout that promoted (or is promoting, or failed promoting) takes the target
    over; one rolled back, aborted or still progressing does not."""
    mine = make_rollout().model_copy(
        update={
            "metadata": make_rollout().metadata.model_copy(
                update={"creation_timestamp": datetime(2026, 1, 1, tzinfo=UTC)}
            )
        }
    )
    later = datetime(2026, 2, 1, tzinfo=UTC)
    for phase in ("Succeeded", "Promoting", "Failed"):
        assert rec.newer_promotion(mine, [_newer("a-next", phase, later)])
        older = mine.model_copy(update={"status": SUCCEEDED})
        assert not rec.newer_promotion(_newer("a-next", phase, later), [older])
    for phase in ("RolledBack", "Aborted", "Progressing"):
        assert not rec.newer_promotion(mine, [_newer("a-next", phase, later)])
    elsewhere = _newer("a-next", "Succeeded", later)
    elsewhere = elsewhere.model_copy(
        update={"spec": elsewhere.spec.model_copy(update={"target_ref": {"name": "other"}})}
    )
    assert not rec.newer_promotion(mine, [elsewhere])


def test_controller_reports_a_revert_and_the_deployments_changes_wake_the_rollout() -> None:
    """A Succeeded release is watched by a freshly started controller: its reconcile names the
    target, a revert becomes a Warning Event and a condition (the Deployment is not written),
    the Deployment's changes wake it, and a newer promoted release ends the watch."""
    world = World()
    assert world.drive() == "Succeeded"
    controller = Controller(world.reconciler, world.store, FakeMetrics(), world.clock)
    stop = threading.Event()
    assert controller.work(world.ref).watches == "podinfo"
    controller.on_change(Change("Deployment", "t", "podinfo"))
    assert controller.queue.get(stop) == (world.ref, None)
    controller.queue.done(world.ref)

    world.cluster.stable_template = "v1"  # Git's image, forced back by a GitOps sync
    controller.work(world.ref)
    stored = world.store.get(world.ref)
    assert stored is not None
    assert stored.status.phase == "Succeeded"
    assert _reverted(stored.status) == ("True", "TemplateChanged")
    assert ("podinfo-2", "StableReverted") in world.events.events
    assert world.cluster.stable_template == "v1"

    world.store.add(_newer("podinfo-3", "Succeeded"))
    assert controller.work(world.ref).watches is None
    controller.on_change(Change("Deployment", "t", "podinfo"))
    assert len(controller.queue) == 0


def test_a_succeeded_release_whose_policy_is_gone_is_left_as_it_is() -> None:
    """No policy to plan with: the watch says nothing and writes nothing."""
    rollout = make_rollout(policyRef={"name": "gone"}).model_copy(update={"status": SUCCEEDED})
    world = World(rollout=rollout)
    result = world.reconciler.reconcile(world.ref)
    stored = world.store.get(world.ref)
    assert stored is not None
    assert (result.watches, stored.status) == (None, SUCCEEDED)
    assert world.events.events == []
