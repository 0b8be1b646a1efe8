"""Rollouts and RolloutPolicies in the cluster, as the pydantic models.

``KubeRolloutStore`` implements ``ports.RolloutStore`` for the reconciler,
``ports.RolloutJanitor`` for retention, and ``ports.Annotator`` for the CLI and the HTTP API
(people's commands are annotations, see ``canary.core.commands``). Status is written only
through the status subresource, guarded by the Rollout's resourceVersion, so a stale writer
gets ``Conflict`` instead of clobbering.
"""

from __future__ import annotations

from typing import Any

import structlog
from kubernetes import client
from pydantic import ValidationError

from canary.adapters.kube.objects import CustomObjects
from canary.core.lint import problems_of
from canary.errors import InvalidSpec
from canary.model.rollout import API_VERSION, Rollout, RolloutPolicy
from canary.model.status import RolloutStatus
from canary.ports import Ref

log = structlog.get_logger("canary.rollouts")


def _parse_rollout(obj: dict[str, Any]) -> Rollout:
    try:
        return Rollout.model_validate(obj)
    except ValidationError as error:
        raise InvalidSpec(problems_of(error)) from error


class KubeRolloutStore:
    """Reads Rollouts and RolloutPolicies, writes Rollout status and command annotations."""

    def __init__(self, api: client.ApiClient) -> None:
        self._rollouts = CustomObjects(api, API_VERSION, "rollouts")
        self._policies = CustomObjects(api, API_VERSION, "rolloutpolicies")

    def get(self, ref: Ref) -> Rollout | None:
        """The Rollout, or None when it does not exist. Raises InvalidSpec (with field paths)
        when the stored object does not parse."""
        found = self._rollouts.get(ref.namespace, ref.name)
        return None if found is None else _parse_rollout(found)

    def list(self, namespace: str | None = None) -> list[Rollout]:
        """Every Rollout (in one namespace, or in all) that parses; others are logged."""
        rollouts = []
        for obj in self._rollouts.list(namespace):
            try:
                rollouts.append(_parse_rollout(obj))
            except InvalidSpec as error:
                meta = obj.get("metadata", {})
                log.warning(
                    "rollout_unreadable",
                    namespace=meta.get("namespace"),
                    rollout=meta.get("name"),
                    error=str(error),
                )
        return sorted(rollouts, key=lambda r: (r.metadata.namespace, r.metadata.name))

    def policy(self, ref: Ref) -> RolloutPolicy | None:
        """The RolloutPolicy, or None when it does not exist. Raises InvalidSpec when it does
        not parse."""
        found = self._policies.get(ref.namespace, ref.name)
        if found is None:
            return None
        try:
            return RolloutPolicy.model_validate(found)
        except ValidationError as error:
            raise InvalidSpec(problems_of(error)) from error

    def write_status(self, rollout: Rollout, status: RolloutStatus) -> None:
        """Replace the status, guarded by the Rollout's resourceVersion (raises Conflict)."""
        meta = rollout.metadata
        body = {
            "apiVersion": API_VERSION,
            "kind": "Rollout",
            "metadata": {
                "name": meta.name,
                "namespace": meta.namespace,
                "resourceVersion": meta.resource_version,
            },
            "status": status.wire(),
        }
        self._rollouts.replace_status(meta.namespace, meta.name, body)

    def annotate(self, ref: Ref, key: str, value: str) -> None:
        """Set one annotation on the Rollout (a merge patch: other annotations stay)."""
        self._rollouts.patch(ref.namespace, ref.name, {"metadata": {"annotations": {key: value}}})

    def create(self, rollout: Rollout) -> Rollout:
        """Create the Rollout (its status, if any, is the controller's and is left out).
        Raises Conflict when it already exists."""
        body = rollout.wire()
        body.pop("status", None)
        made = self._rollouts.create(rollout.metadata.namespace, body)
        return _parse_rollout(made)

    def label(self, ref: Ref, key: str, value: str) -> None:
        """Set one label on the Rollout (a merge patch: other labels stay)."""
        self._rollouts.patch(ref.namespace, ref.name, {"metadata": {"labels": {key: value}}})

    def delete(self, rollout: Rollout) -> None:
        """Delete the Rollout if it has not changed since it was read (else Conflict)."""
        meta = rollout.metadata
        self._rollouts.delete(meta.namespace, meta.name, meta.uid, meta.resource_version)
