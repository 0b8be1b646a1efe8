"""The canary's own HorizontalPodAutoscaler, derived from the one on the target Deployment.

Used by ``canary.adapters.kube.workloads`` (``KubeWorkloads``). When the target Deployment has an
autoscaling/v2 HorizontalPodAutoscaler (its ``scaleTargetRef`` is the Deployment), the canary
gets its own, named like the canary Deployment: the stable one's metrics and behavior, the
bounds the machine chose (``canary.core.steps.canary_autoscaler``), canary's labels and an
ownerReference to the Rollout. It never writes the user's autoscaler (GitOps owns it: only read
here), and never takes over an autoscaler canary did not create. Writes carry the field manager
``canary`` and the cached copy's resourceVersion, so a stale copy costs a Conflict, not a wrong
write.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from canary.adapters.kube.client import translated
from canary.core.plan import Plan
from canary.core.vocabulary import Autoscaler
from canary.errors import InvalidSpec, Problem
from canary.model.rollout import GROUP, MANAGED_BY, ROLLOUT_LABEL, VERSION

Obj = dict[str, Any]

Listing = Callable[[str], list[Obj]]
"""The HorizontalPodAutoscalers of a namespace: by default a LIST, in ``canary run`` an
informer's copies."""

OwnerLookup = Callable[[str, str], str | None]
"""The uid of a Rollout (None: it is gone), for the ownerReference of the canary's autoscaler."""


def autoscaler_of(autoscalers: list[Obj], deployment: str) -> Obj | None:
    """The HorizontalPodAutoscaler whose scale target is Deployment ``deployment`` (the first
    by name if several are: the autoscaling controller itself refuses to act on those)."""
    for hpa in sorted(autoscalers, key=lambda h: str(h["metadata"].get("name"))):
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        group = str(ref.get("apiVersion", "")).split("/")[0]
        if ref.get("kind") == "Deployment" and group == "apps" and ref.get("name") == deployment:
            return hpa
    return None


def bounds(hpa: Obj) -> Autoscaler:
    """An autoscaler's replica bounds (``minReplicas`` defaults to 1)."""
    spec = hpa["spec"]
    return Autoscaler(int(spec.get("minReplicas") or 1), int(spec["maxReplicas"]))


def canary_autoscaler_spec(stable: Obj, plan: Plan, wanted: Autoscaler) -> Obj:
    """The canary autoscaler's spec: the stable one's metrics and behavior, the canary
    Deployment as its target, ``wanted``'s bounds."""
    spec: Obj = {
        "scaleTargetRef": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": plan.canary_deployment,
        },
        "minReplicas": wanted.min_replicas,
        "maxReplicas": wanted.max_replicas,
    }
    for field in ("metrics", "behavior"):
        if stable["spec"].get(field) is not None:
            spec[field] = copy.deepcopy(stable["spec"][field])
    return spec


def _ours(hpa: Obj) -> bool:
    labels = hpa["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in MANAGED_BY.items())


class CanaryAutoscalers:
    """Reads autoscalers through ``autoscalers`` (default: a LIST) and writes the canary's."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        field_manager: str,
        autoscalers: Listing | None = None,
        owners: OwnerLookup | None = None,
    ) -> None:
        self._api = api
        self._manager = field_manager
        self._autoscaling: Any = client.AutoscalingV2Api(api)
        self._list: Listing = autoscalers or self._list_direct
        self._owner: OwnerLookup = owners or self._rollout_uid

    def of(self, namespace: str, deployment: str) -> Obj | None:
        """The autoscaler of Deployment ``deployment``, if it has one."""
        return autoscaler_of(self._list(namespace), deployment)

    def _list_direct(self, namespace: str) -> list[Obj]:
        with translated(f"list horizontalpodautoscalers in {namespace}"):
            found = self._autoscaling.list_namespaced_horizontal_pod_autoscaler(namespace)
            return [self._api.sanitize_for_serialization(item) for item in found.items]

    def _rollout_uid(self, namespace: str, name: str) -> str | None:
        custom: Any = client.CustomObjectsApi(self._api)
        with translated(f"get rollout {namespace}/{name}"):
            try:
                found = custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, "rollouts", name
                )
            except ApiException as error:
                if error.status == 404:
                    return None
                raise
        uid: str | None = found["metadata"].get("uid")
        return uid

    def _named(self, namespace: str, plan: Plan) -> Obj | None:
        """The autoscaler named like the canary Deployment, whoever made it."""
        name = plan.canary_deployment
        return next((h for h in self._list(namespace) if h["metadata"].get("name") == name), None)

    def sync(self, namespace: str, rollout: str, plan: Plan, wanted: Autoscaler | None) -> None:
        """Create or update the canary's autoscaler from the stable one's, or remove it when
        the stable Deployment has none (any more)."""
        stable = self.of(namespace, plan.target)
        if wanted is None or stable is None:
            self.remove(namespace, plan)
            return
        existing = self._named(namespace, plan)
        if existing is not None and not _ours(existing):
            name = plan.canary_deployment
            raise InvalidSpec(
                [
                    Problem(
                        "spec.targetRef.name",
                        f"HorizontalPodAutoscaler {name} exists and canary did not create it",
                        "canary names the canary's autoscaler after the canary Deployment; "
                        "rename or delete that one",
                    )
                ]
            )
        spec = canary_autoscaler_spec(stable, plan, wanted)
        labels = {**MANAGED_BY, ROLLOUT_LABEL: rollout}
        if existing is not None and (
            existing.get("spec") == spec
            and (existing["metadata"].get("labels") or {}).get(ROLLOUT_LABEL) == rollout
        ):
            return
        uid = self._owner(namespace, rollout)
        if uid is None:
            return  # the Rollout is gone: nothing should own a new autoscaler
        metadata: Obj = {
            "name": plan.canary_deployment,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "Rollout",
                    "name": rollout,
                    "uid": uid,
                    "controller": True,
                }
            ],
        }
        body: Obj = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": metadata,
            "spec": spec,
        }
        with translated(f"write horizontalpodautoscaler {namespace}/{plan.canary_deployment}"):
            if existing is None:
                try:
                    self._autoscaling.create_namespaced_horizontal_pod_autoscaler(
                        namespace, body, field_manager=self._manager
                    )
                except ApiException as error:
                    if error.status != 409:
                        raise
                    # Created by the previous reconcile and not in the cache yet: the next
                    # reconcile compares it with what it should be.
            else:
                metadata["resourceVersion"] = existing["metadata"]["resourceVersion"]
                self._autoscaling.replace_namespaced_horizontal_pod_autoscaler(
                    plan.canary_deployment, namespace, body, field_manager=self._manager
                )

    def remove(self, namespace: str, plan: Plan) -> None:
        """Delete the canary's autoscaler, if there is one (never one canary did not create)."""
        existing = self._named(namespace, plan)
        if existing is None or not _ours(existing):
            return
        name = plan.canary_deployment
        with translated(f"delete horizontalpodautoscaler {namespace}/{name}"):
            try:
                self._autoscaling.delete_namespaced_horizontal_pod_autoscaler(name, namespace)
            except ApiException as error:
                if error.status != 404:
                    raise
