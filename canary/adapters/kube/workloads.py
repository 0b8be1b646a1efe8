"""The stable and canary Deployments and the ``-stable``/``-canary`` Services of a rollout.

Implements ``ports.Workloads`` for the reconciler. Every action is absolute and idempotent.
The canary's pod template is the stable template with the release applied by the API server
itself (a server-side dry-run strategic-merge patch of the stable Deployment, so the merge
semantics are exactly Kubernetes'), and its selector labels rewritten with a ``-canary`` suffix
so that the apex Service never selects canary pods. The stable Deployment is written only by
``PromoteStable``; a rollback never touches it.

With a HorizontalPodAutoscaler on the target, the canary gets its own
(``canary.adapters.kube.autoscalers``); while it exists, the canary's replicas are only ever
raised to the floor the machine asks for, never lowered, and it is deleted before the canary is
scaled to zero.

Every write carries the field manager ``canary``. Promotion is a strategic-merge patch of the
stable Deployment, so the API server records ``canary`` as the owner of exactly the fields whose
values the release changed (its images, its ``templatePatch`` values and the release annotation),
and a GitOps controller keeps owning every other field: docs/gitops.md says why, and what Argo CD
and Flux must be told.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from canary.adapters.kube.autoscalers import CanaryAutoscalers, Listing, OwnerLookup, bounds
from canary.adapters.kube.client import translated
from canary.core import undo
from canary.core.plan import CANARY_SUFFIX, Plan
from canary.core.vocabulary import (
    Action,
    Autoscaler,
    CanaryState,
    EnsureCanary,
    EnsureServices,
    PromoteStable,
    ScaleCanaryToZero,
    TargetState,
)
from canary.errors import InvalidSpec, Problem
from canary.model.rollout import MANAGED_BY, ROLLOUT_LABEL
from canary.ports import WorkloadState

RELEASE_ANNOTATION = "canary.dev/release"
FIELD_MANAGER = "canary"
"""Owner of the fields canary writes; teams' Argo CD configurations name it, so it never changes."""


def release_id(rollout: str, plan: Plan) -> str:
    """Names a release's template: the Rollout plus a digest of what it changes."""
    change = json.dumps([plan.images, plan.template_patch], sort_keys=True)
    return f"{rollout}.{hashlib.sha256(change.encode()).hexdigest()[:12]}"


def release_patch(plan: Plan) -> dict[str, Any]:
    """The strategic-merge patch of a Deployment that applies the release to its template."""
    template = copy.deepcopy(plan.template_patch or {})
    spec = template.setdefault("spec", {})
    containers = {c["name"]: c for c in spec.get("containers", []) if isinstance(c, dict)}
    for name, image in sorted(plan.images.items()):
        containers.setdefault(name, {"name": name})["image"] = image
    if containers:
        spec["containers"] = list(containers.values())
    return {"spec": {"template": template}}


def has_release(deployment: dict[str, Any], rollout: str, plan: Plan) -> bool:
    """The Deployment names this release and runs what it changed. Its content is checked, not
    just the annotation, because a GitOps controller that puts Git's template back leaves the
    annotation (not in Git) in place."""
    if _annotations(deployment).get(RELEASE_ANNOTATION) != release_id(rollout, plan):
        return False
    template = deployment["spec"]["template"]
    running = {c["name"]: c.get("image") for c in template["spec"]["containers"]}
    if any(running.get(name) != image for name, image in plan.images.items()):
        return False
    return _runs_patch(template, plan.template_patch or {})


def _runs_patch(template: dict[str, Any], patch: dict[str, Any]) -> bool:
    """The pod template holds what the release's ``templatePatch`` set and the API server keeps
    as written: pod labels and annotations, each patched container's env values and args.
    Resources are left out (the API server may write a quantity another way: 0.5 as 500m)."""
    metadata, patched = template.get("metadata") or {}, patch.get("metadata") or {}
    for key in ("labels", "annotations"):
        have = metadata.get(key) or {}
        if any(have.get(k) != v for k, v in (patched.get(key) or {}).items()):
            return False
    containers = {c["name"]: c for c in template["spec"]["containers"]}
    for wanted in (patch.get("spec") or {}).get("containers") or []:
        have = containers.get(wanted["name"])
        if have is None:
            return False
        env = {e["name"]: e.get("value", "") for e in have.get("env") or []}
        if any(env.get(e["name"]) != e.get("value", "") for e in wanted.get("env") or []):
            return False
        if "args" in wanted and have.get("args") != wanted["args"]:
            return False
    return True


def canary_labels(labels: dict[str, str], keys: set[str]) -> dict[str, str]:
    """Pod labels with every selector key's value suffixed, so stable selectors miss them."""
    return {k: (f"{v}{CANARY_SUFFIX}" if k in keys else v) for k, v in labels.items()}


Obj = dict[str, Any]


def _replicas(deployment: Obj) -> int:
    wanted = deployment["spec"].get("replicas")
    return 1 if wanted is None else int(wanted)


def _rolled_out(deployment: Obj) -> bool:
    status = deployment.get("status", {})
    want = _replicas(deployment)
    return status.get("observedGeneration", 0) >= deployment["metadata"].get(
        "generation", 0
    ) and all(
        status.get(field, 0) == want
        for field in ("updatedReplicas", "readyReplicas", "availableReplicas", "replicas")
    )


def _annotations(obj: Obj) -> dict[str, str]:
    return dict(obj["metadata"].get("annotations") or {})


Lookup = Callable[[str, str], Obj | None]
"""Where ``observe`` and the no-change checks read a Deployment or a Service: by default a GET,
in ``canary run`` an informer's trimmed copy (``canary.adapters.kube.cached``)."""


class KubeWorkloads:
    """Deployments and Services through the apps/v1 and core/v1 APIs. Reads go through the
    lookups; a write re-reads what it rewrites from the API server (a cached copy is trimmed)
    and carries its resourceVersion, so a stale cache costs a Conflict, never a wrong write."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        deployments: Lookup | None = None,
        services: Lookup | None = None,
        autoscalers: Listing | None = None,
        owners: OwnerLookup | None = None,
    ) -> None:
        # Objects are handled as camelCase dicts, as on the wire; the typed client models
        # would only add Optional checks on fields the API server always sets.
        self._apps: Any = client.AppsV1Api(api)
        self._core: Any = client.CoreV1Api(api)
        self._api = api
        self._read_deployment: Lookup = deployments or self._deployment
        self._read_service: Lookup = services or self._service
        self._autoscalers = CanaryAutoscalers(
            api, field_manager=FIELD_MANAGER, autoscalers=autoscalers, owners=owners
        )

    def _dict(self, obj: object) -> Obj:
        result: Obj = self._api.sanitize_for_serialization(obj)
        return result

    def _deployment(self, namespace: str, name: str) -> Obj | None:
        with translated(f"get deployment {namespace}/{name}"):
            try:
                return self._dict(self._apps.read_namespaced_deployment(name, namespace))
            except ApiException as error:
                if error.status == 404:
                    return None
                raise

    def _service(self, namespace: str, name: str) -> Obj | None:
        with translated(f"get service {namespace}/{name}"):
            try:
                return self._dict(self._core.read_namespaced_service(name, namespace))
            except ApiException as error:
                if error.status == 404:
                    return None
                raise

    def observe(self, namespace: str, rollout: str, plan: Plan) -> WorkloadState:
        """Read the target, the apex Service, the canary Deployment and the two Services."""
        wanted = release_id(rollout, plan)
        stable = self._read_deployment(namespace, plan.target)
        apex = self._read_service(namespace, plan.service.name)
        target = None
        if stable is not None:
            hpa = self._autoscalers.of(namespace, plan.target)
            status = stable.get("status") or {}
            target = TargetState(
                replicas=_replicas(stable),
                ready=_rolled_out(stable),
                has_release=has_release(stable, rollout, plan),
                template=undo.record(stable["spec"]["template"]),
                current_replicas=status.get("replicas"),
                ready_replicas=int(status.get("readyReplicas") or 0),
                autoscaler=None if hpa is None else bounds(hpa),
            )
        canary = self._read_deployment(namespace, plan.canary_deployment)
        canary_state = None
        if canary is not None:
            status = canary.get("status", {})
            generation_seen = status.get("observedGeneration", 0) >= canary["metadata"].get(
                "generation", 0
            )
            # Ready pods of the newest template only: old pods of a superseded release may still
            # be ready while the new ones start, so take the smaller of updated and ready.
            fresh = min(status.get("updatedReplicas", 0), status.get("readyReplicas", 0))
            canary_state = CanaryState(
                replicas=int(canary["spec"].get("replicas") or 0),
                ready_replicas=fresh if generation_seen else 0,
                current=_annotations(canary).get(RELEASE_ANNOTATION) == wanted,
                settled=generation_seen,
            )
        services_ready = apex is not None and all(
            (found := self._read_service(namespace, name)) is not None
            and (found["spec"].get("selector") or {}) == selector
            for name, selector in self._service_selectors(plan, apex).items()
        )
        return WorkloadState(
            target=target,
            apex_service=apex is not None,
            canary=canary_state,
            services_ready=services_ready,
        )

    def _service_selectors(self, plan: Plan, apex: Obj) -> dict[str, dict[str, str]]:
        selector = dict(apex["spec"].get("selector") or {})
        return {
            plan.stable_service: selector,
            plan.canary_service: canary_labels(selector, set(selector)),
        }

    def apply(self, namespace: str, rollout: str, plan: Plan, action: Action) -> None:
        """Carry out one workload action."""
        match action:
            case EnsureServices():
                self._ensure_services(namespace, plan)
            case EnsureCanary(replicas=replicas, autoscaler=autoscaler):
                self._ensure_canary(namespace, rollout, plan, replicas, autoscaler)
            case PromoteStable():
                self._promote(namespace, rollout, plan)
            case ScaleCanaryToZero():
                self._autoscalers.remove(namespace, plan)  # it would scale the canary up again
                self._scale_canary(namespace, plan, 0)
            case _:
                raise TypeError(f"not a workload action: {action!r}")

    def _ensure_services(self, namespace: str, plan: Plan) -> None:
        apex = self._read_service(namespace, plan.service.name)
        if apex is None:
            raise InvalidSpec(
                [Problem("spec.service.name", f"Service {plan.service.name} does not exist")]
            )
        ports = [
            {k: v for k, v in port.items() if k != "nodePort"}
            for port in apex["spec"].get("ports") or []
        ]
        for name, selector in self._service_selectors(plan, apex).items():
            existing = self._read_service(namespace, name)
            if existing is not None and (existing["spec"].get("selector") or {}) != selector:
                existing = self._service(namespace, name)  # the whole object, to replace it
            with translated(f"write service {namespace}/{name}"):
                if existing is None:
                    body = {
                        "metadata": {"name": name, "labels": dict(MANAGED_BY)},
                        "spec": {"selector": selector, "ports": ports},
                    }
                    self._core.create_namespaced_service(
                        namespace, body, field_manager=FIELD_MANAGER
                    )
                elif (existing["spec"].get("selector") or {}) != selector:
                    existing["spec"]["selector"] = selector  # a patch would merge old keys in
                    self._core.replace_namespaced_service(
                        name, namespace, existing, field_manager=FIELD_MANAGER
                    )

    def _release_template(self, namespace: str, stable: Obj, plan: Plan) -> Obj:
        containers = {c["name"] for c in stable["spec"]["template"]["spec"]["containers"]}
        missing = sorted(set(plan.images) - containers)
        if missing:
            raise InvalidSpec(
                [
                    Problem(
                        f"spec.release.images.{name}",
                        f"Deployment {plan.target} has no container {name!r}",
                        f"containers are: {', '.join(sorted(containers))}",
                    )
                    for name in missing
                ]
            )
        with translated(f"dry-run release patch of deployment {namespace}/{plan.target}"):
            merged = self._apps.patch_namespaced_deployment(
                plan.target,
                namespace,
                release_patch(plan),
                dry_run="All",
                field_manager=FIELD_MANAGER,
            )
        template: Obj = self._dict(merged)["spec"]["template"]
        return template

    def _ensure_canary(
        self,
        namespace: str,
        rollout: str,
        plan: Plan,
        replicas: int,
        autoscaler: Autoscaler | None,
    ) -> None:
        wanted = release_id(rollout, plan)
        canary = self._read_deployment(namespace, plan.canary_deployment)
        if canary is None or _annotations(canary).get(RELEASE_ANNOTATION) != wanted:
            canary = self._deployment(namespace, plan.canary_deployment)  # a cache may lag
        if canary is not None and _annotations(canary).get(RELEASE_ANNOTATION) == wanted:
            have = int(canary["spec"].get("replicas") or 0)
            # With an autoscaler, replicas are a floor: the autoscaler owns the number above it.
            if have < replicas or (autoscaler is None and have != replicas):
                self._scale_canary(namespace, plan, replicas)
            self._autoscalers.sync(namespace, rollout, plan, autoscaler)
            return
        stable = self._deployment(namespace, plan.target)
        if stable is None:
            raise InvalidSpec([Problem("spec.targetRef.name", f"{plan.target} does not exist")])
        apex = self._service(namespace, plan.service.name)
        stable_match = dict(stable["spec"]["selector"].get("matchLabels") or {})
        keys = set(stable_match) | set((apex or {}).get("spec", {}).get("selector") or {})
        template = self._release_template(namespace, stable, plan)
        metadata = template.setdefault("metadata", {})
        metadata["labels"] = canary_labels(metadata.get("labels") or {}, keys)
        match = canary_labels(stable_match, keys)
        body: Obj = {
            "metadata": {
                "name": plan.canary_deployment,
                "labels": {**MANAGED_BY, ROLLOUT_LABEL: rollout},
                "annotations": {RELEASE_ANNOTATION: wanted},
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": match},
                "template": template,
            },
        }
        with translated(f"write deployment {namespace}/{plan.canary_deployment}"):
            if canary is None:
                self._apps.create_namespaced_deployment(
                    namespace, body, field_manager=FIELD_MANAGER
                )
            else:
                body["metadata"]["resourceVersion"] = canary["metadata"]["resourceVersion"]
                self._apps.replace_namespaced_deployment(
                    plan.canary_deployment, namespace, body, field_manager=FIELD_MANAGER
                )
        self._autoscalers.sync(namespace, rollout, plan, autoscaler)

    def _scale_canary(self, namespace: str, plan: Plan, replicas: int) -> None:
        if self._read_deployment(namespace, plan.canary_deployment) is None:
            return
        with translated(f"scale deployment {namespace}/{plan.canary_deployment}"):
            self._apps.patch_namespaced_deployment_scale(
                plan.canary_deployment,
                namespace,
                {"spec": {"replicas": replicas}},
                field_manager=FIELD_MANAGER,
            )

    def _promote(self, namespace: str, rollout: str, plan: Plan) -> None:
        stable = self._deployment(namespace, plan.target)
        if stable is None:
            raise InvalidSpec([Problem("spec.targetRef.name", f"{plan.target} does not exist")])
        self._release_template(namespace, stable, plan)  # validates before changing anything
        patch = release_patch(plan)
        patch["metadata"] = {"annotations": {RELEASE_ANNOTATION: release_id(rollout, plan)}}
        with translated(f"promote deployment {namespace}/{plan.target}"):
            self._apps.patch_namespaced_deployment(
                plan.target, namespace, patch, field_manager=FIELD_MANAGER
            )
