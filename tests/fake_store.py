"""The one in-memory Rollout store of the tests: ``ports.RolloutStore``, ``ports.RolloutJanitor``
and ``ports.Annotator``, for tests of the shells that use those ports (the reconciler, the
controller, the HTTP API, the console, retention). The contract test in tests/integration runs
the same checks against it and the real ``KubeRolloutStore``, so it stays honest."""

from __future__ import annotations

from typing import Any

from canary.model.rollout import Rollout
from canary.runtime.memory import MemoryRolloutStore

__all__ = ["MemoryRolloutStore", "make"]


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
