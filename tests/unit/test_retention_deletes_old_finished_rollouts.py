"""Retention labels every finished Rollout with its target (the controller labels active ones
with their first status write), deletes the finished Rollouts beyond the
newest N per target, keeps the last Succeeded one, and leaves a Rollout that changed since it
was listed."""

from __future__ import annotations

from canary.errors import ApiUnavailable
from canary.model.rollout import Rollout
from canary.ports import Ref
from canary.runtime.retention import Retention
from tests.fake_store import MemoryRolloutStore


def _rollout(name: str, phase: str, minute: int) -> Rollout:
    return Rollout.model_validate(
        {
            "metadata": {
                "name": name,
                "namespace": "t",
                "resourceVersion": "1",
                "creationTimestamp": f"2026-11-21T08:{minute:02d}:00Z",
            },
            "spec": {"targetRef": {"name": "web"}, "release": {"images": {"c": "i:2"}}},
            "status": {"phase": phase},
        }
    )


def _store() -> MemoryRolloutStore:
    return MemoryRolloutStore(
        _rollout("web-1", "Succeeded", 1),
        _rollout("web-2", "RolledBack", 2),
        _rollout("web-3", "RolledBack", 3),
        _rollout("web-4", "Progressing", 4),
    )


def test_old_finished_rollouts_are_deleted_and_counted() -> None:
    """keep=1: web-2 goes; web-3 is the newest finished, web-1 the last Succeeded, web-4 runs."""
    store, deleted = _store(), []
    retention = Retention(store, store, keep=1, on_deleted=lambda: deleted.append(1))
    assert retention.run() == 1
    assert sorted(r.name for r in store.rollouts) == ["web-1", "web-3", "web-4"]
    assert len(deleted) == 1
    assert retention.run() == 0


def test_rollouts_are_labelled_with_their_target_even_when_nothing_is_deleted() -> None:
    """keep=0 deletes nothing; every finished Rollout gets canary.dev/target=web, other labels
    stay; the active web-4 is left to the controller's status write."""
    store = _store()
    first = store.rollouts[Ref("t", "web-1")]
    labelled = first.metadata.model_copy(update={"labels": {"team": "a"}})
    store.rollouts[Ref("t", "web-1")] = first.model_copy(update={"metadata": labelled})
    assert Retention(store, store, keep=0).run() == 0
    assert len(store.rollouts) == 4
    assert {r.metadata.name: r.metadata.labels for r in store.rollouts.values()} == {
        "web-1": {"team": "a", "canary.dev/target": "web"},
        "web-2": {"canary.dev/target": "web"},
        "web-3": {"canary.dev/target": "web"},
        "web-4": {},
    }


class Racing(MemoryRolloutStore):
    """A store where every Rollout changes between the list and the delete."""

    def list(self, namespace: str | None = None, target: str | None = None) -> list[Rollout]:
        listed = super().list(namespace, target)
        for rollout in listed:
            self.annotate(Ref(rollout.metadata.namespace, rollout.metadata.name), "k", "v")
        return listed


def test_a_rollout_changed_since_it_was_listed_is_left_alone() -> None:
    """A retry annotation written meanwhile makes the delete a Conflict: the Rollout stays."""
    store = Racing(*_store().rollouts.values())
    assert Retention(store, store, keep=1).run() == 0
    assert len(store.rollouts) == 4


class Down(MemoryRolloutStore):
    def list(self, namespace: str | None = None, target: str | None = None) -> list[Rollout]:
        raise ApiUnavailable("down")


def test_an_unreachable_cluster_deletes_nothing_and_raises_nothing() -> None:
    """Retention logs and waits for its next run."""
    store = Down()
    assert Retention(store, store, keep=1).run() == 0
