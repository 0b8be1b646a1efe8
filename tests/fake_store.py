"""The one in-memory Rollout store of the tests: ``ports.RolloutStore``, ``ports.RolloutJanitor``
and ``ports.Annotator``, for tests of the shells that use those ports (the reconciler, the
controller, the HTTP API, the console, retention). The contract test in tests/integration runs
the same checks against it and the real ``KubeRolloutStore``, so it stays honest."""

from __future__ import annotations

from typing import Any

from canary.errors import Conflict
from canary.model.rollout import Rollout, RolloutPolicy
from canary.model.status import RolloutStatus
from canary.ports import Ref


def make(name: str, namespace: str = "test", **status: Any) -> Rollout:
    """A Rollout of podinfo with the given status fields."""
    return Rollout.model_validate(
        {
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
            "spec": {
                "targetRef": {"name": "podinfo"},
                "release": {"images": {"podinfo": "podinfo:6.1.0"}},
            },
            "status": status,
        }
    )


class MemoryRolloutStore:
    """Rollouts in a dict; resourceVersion bumps on every write, like the API server."""

    def __init__(self, *rollouts: Rollout) -> None:
        self.rollouts = {Ref(r.metadata.namespace, r.metadata.name): r for r in rollouts}
        self.policies: dict[Ref, RolloutPolicy] = {}
        self.conflicts = 0
        """How many of the next status writes lose a race (raise Conflict)."""

    def add(self, rollout: Rollout) -> Ref:
        """Create a Rollout as the API server would (resourceVersion 1, generation 1)."""
        meta = rollout.metadata.model_copy(
            update={"resource_version": "1", "generation": rollout.metadata.generation or 1}
        )
        ref = Ref(meta.namespace, meta.name)
        self.rollouts[ref] = rollout.model_copy(update={"metadata": meta})
        return ref

    def get(self, ref: Ref) -> Rollout | None:
        """The Rollout, or None."""
        return self.rollouts.get(ref)

    def list(self, namespace: str | None = None) -> list[Rollout]:
        """Every Rollout, sorted, optionally of one namespace."""
        return [
            r
            for ref, r in sorted(self.rollouts.items())
            if namespace is None or ref.namespace == namespace
        ]

    def policy(self, ref: Ref) -> RolloutPolicy | None:
        """The RolloutPolicy, or None."""
        return self.policies.get(ref)

    def _bump(self, ref: Ref, **changes: Any) -> None:
        old = self.rollouts[ref]
        version = str(int(old.metadata.resource_version or "0") + 1)
        meta = old.metadata.model_copy(update={"resource_version": version, **changes})
        self.rollouts[ref] = old.model_copy(update={"metadata": meta})

    def write_status(self, rollout: Rollout, status: RolloutStatus) -> None:
        """Replace the status if the resourceVersion matches; else Conflict."""
        ref = Ref(rollout.metadata.namespace, rollout.metadata.name)
        if self.rollouts[ref].metadata.resource_version != rollout.metadata.resource_version:
            raise Conflict(f"{ref}: the object has been modified")
        if self.conflicts:
            self.conflicts -= 1
            raise Conflict(f"{ref}: the object has been modified")
        self.rollouts[ref] = self.rollouts[ref].model_copy(update={"status": status})
        self._bump(ref)

    def annotate(self, ref: Ref, key: str, value: str) -> None:
        """Set one annotation."""
        annotations = {**self.rollouts[ref].metadata.annotations, key: value}
        self._bump(ref, annotations=annotations)

    def label(self, ref: Ref, key: str, value: str) -> None:
        """Set one label."""
        self._bump(ref, labels={**self.rollouts[ref].metadata.labels, key: value})

    def delete(self, rollout: Rollout) -> None:
        """Delete the Rollout if its resourceVersion still matches; else Conflict."""
        ref = Ref(rollout.metadata.namespace, rollout.metadata.name)
        current = self.rollouts.get(ref)
        if current is None:
            return
        if current.metadata.resource_version != rollout.metadata.resource_version:
            raise Conflict(f"{ref}: the object has been modified")
        del self.rollouts[ref]
