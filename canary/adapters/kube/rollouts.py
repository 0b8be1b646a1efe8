"""Rollouts and RolloutPolicies in the cluster, as the pydantic models.

``KubeRolloutStore`` implements ``ports.RolloutStore`` for the reconciler,
``ports.RolloutJanitor`` for retention, and ``ports.Annotator`` for the CLI and the HTTP API
(people's commands are annotations, see ``canary.core.commands``). Status is written only
through the status subresource, guarded by the Rollout's resourceVersion, so a stale writer
gets ``Conflict`` instead of clobbering (unless only a label changed meanwhile: see
``replace_status``). The first status write of a Rollout made without its ``canary.dev/target``
label (by kubectl or a GitOps tool) sets that label first, so retention never has to patch a
Rollout the controller is writing.
A store scoped to some namespaces (a namespaced install, whose RBAC covers only those) lists
each of them instead of asking for every namespace, which that RBAC would refuse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import structlog
from kubernetes import client
from pydantic import ValidationError

from canary.adapters.kube.objects import CustomObjects
from canary.core.history import TARGET_LABEL
from canary.core.lint import problems_of
from canary.errors import Conflict, InvalidSpec, Problem
from canary.model.rollout import API_VERSION, Rollout, RolloutPolicy, decided_alike
from canary.model.status import RolloutStatus
from canary.ports import Ref

log = structlog.get_logger("canary.rollouts")


def parse_rollout(obj: dict[str, Any]) -> Rollout:
    """A Rollout from the wire; InvalidSpec (with field paths) when it does not parse."""
    try:
        return Rollout.model_validate(obj)
    except ValidationError as error:
        raise InvalidSpec(problems_of(error)) from error
    except (ValueError, TypeError, ArithmeticError, RecursionError) as error:
        # The models raise only ValidationError; this keeps one odd object from breaking every
        # list should a validator ever let something else escape.
        raise InvalidSpec(
            [Problem("", f"cannot read the object: {type(error).__name__}")]
        ) from error


def parse_policy(obj: dict[str, Any]) -> RolloutPolicy:
    """A RolloutPolicy from the wire; InvalidSpec when it does not parse."""
    try:
        return RolloutPolicy.model_validate(obj)
    except ValidationError as error:
        raise InvalidSpec(problems_of(error)) from error


class KubeRolloutStore:
    """Reads Rollouts and RolloutPolicies, writes Rollout status and command annotations."""

    def __init__(self, api: client.ApiClient, namespaces: Sequence[str] = ()) -> None:
        self._rollouts = CustomObjects(api, API_VERSION, "rollouts")
        self._policies = CustomObjects(api, API_VERSION, "rolloutpolicies")
        self._scope = tuple(namespaces)

    def get(self, ref: Ref) -> Rollout | None:
        """The Rollout, or None when it does not exist. Raises InvalidSpec (with field paths)
        when the stored object does not parse."""
        found = self._rollouts.get(ref.namespace, ref.name)
        return None if found is None else parse_rollout(found)

    def list(self, namespace: str | None = None, target: str | None = None) -> list[Rollout]:
        """Every Rollout (in one namespace, or in all the store sees; of one target Deployment)
        that parses; others are logged. A scoped store finds nothing outside its namespaces."""
        if not self._scope:
            found = self._rollouts.list(namespace)
        else:
            wanted = [namespace] if namespace is not None else list(self._scope)
            found = [obj for ns in wanted if ns in self._scope for obj in self._rollouts.list(ns)]
        rollouts = []
        for obj in found:
            try:
                rollout = parse_rollout(obj)
                if target is None or rollout.spec.target_ref.name == target:
                    rollouts.append(rollout)
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
        return None if found is None else parse_policy(found)

    def write_status(self, rollout: Rollout, status: RolloutStatus) -> None:
        """Replace the status, guarded by the Rollout's resourceVersion (raises Conflict)."""
        self.replace_status(rollout, status)

    def replace_status(
        self, rollout: Rollout, status: RolloutStatus
    ) -> tuple[dict[str, Any], tuple[str | None, ...]]:
        """``write_status``, answering the Rollout as the API server stored it and the
        resourceVersions the write was made on (the one read, and the label's when this set
        it: a cache holding either has seen nothing but this write's own steps).

        A write that lost its race only to a change the status was not decided from (a label)
        is made again on the stored version: the reconcile that decided it may already have
        moved traffic, and a retry from scratch would see the route it moved without the
        counts that moved it (``canary.model.rollout.decided_alike``). A Rollout without its
        target label gets it first (``_labelled``)."""
        try:
            version = self._labelled(rollout)
            based_on = (rollout.metadata.resource_version, version)
            return self._replace_status(rollout, status, version), based_on
        except Conflict:
            found = self._rollouts.get(rollout.metadata.namespace, rollout.metadata.name)
            if found is None:
                raise
            stored = parse_rollout(found)
            if not decided_alike(rollout, stored):
                raise
            version = self._labelled(stored)
            based_on = (stored.metadata.resource_version, version)
            return self._replace_status(stored, status, version), based_on

    def _labelled(self, rollout: Rollout) -> str | None:
        """The resourceVersion to write the status on: the Rollout's own, or, when its
        ``canary.dev/target`` label is missing or wrong, the one the API server answers after
        this sets it. The label patch is guarded by the version read (Conflict when it
        changed), so the status never lands on a version its decision did not see."""
        meta, target = rollout.metadata, rollout.spec.target_ref.name
        if meta.labels.get(TARGET_LABEL) == target:
            return meta.resource_version
        patch = {
            "metadata": {"resourceVersion": meta.resource_version, "labels": {TARGET_LABEL: target}}
        }
        done = self._rollouts.patch(meta.namespace, meta.name, patch)
        return cast(str, done["metadata"]["resourceVersion"])

    def _replace_status(
        self, rollout: Rollout, status: RolloutStatus, version: str | None
    ) -> dict[str, Any]:
        meta = rollout.metadata
        body = {
            "apiVersion": API_VERSION,
            "kind": "Rollout",
            "metadata": {
                "name": meta.name,
                "namespace": meta.namespace,
                "resourceVersion": version,
            },
            "status": status.wire(),
        }
        return self._rollouts.replace_status(meta.namespace, meta.name, body)

    def annotate(self, ref: Ref, key: str, value: str) -> None:
        """Set one annotation on the Rollout (a merge patch: other annotations stay)."""
        self._rollouts.patch(ref.namespace, ref.name, {"metadata": {"annotations": {key: value}}})

    def create(self, rollout: Rollout) -> Rollout:
        """Create the Rollout (its status, if any, is the controller's and is left out).
        Raises Conflict when it already exists."""
        body = rollout.wire()
        body.pop("status", None)
        made = self._rollouts.create(rollout.metadata.namespace, body)
        return parse_rollout(made)

    def label(self, ref: Ref, key: str, value: str) -> None:
        """Set one label on the Rollout (a merge patch: other labels stay)."""
        self._rollouts.patch(ref.namespace, ref.name, {"metadata": {"labels": {key: value}}})

    def delete(self, rollout: Rollout) -> None:
        """Delete the Rollout if it has not changed since it was read (else Conflict)."""
        meta = rollout.metadata
        self._rollouts.delete(meta.namespace, meta.name, meta.uid, meta.resource_version)
