"""The controller's reads, served from shared informers instead of the API server.

``KubeCache`` owns the informers of the watched namespaces — Rollouts, RolloutPolicies,
Deployments (trimmed to the fields the controller reads), Services, HorizontalPodAutoscalers,
and the route kinds on first use — and is the controller's ``ports.ChangeFeed``: their changes
wake Rollouts. It hands out cache-backed implementations of the existing read ports:
``CachedRolloutStore`` (``ports.RolloutStore``), the lookups ``KubeWorkloads`` reads through,
and ``CachedObjects`` (``routers.RouteObjects``). Every write still goes to the API server
through the direct adapters, guarded by resourceVersion, and a status write is put into the
cache at once so the next reconcile does not read it back stale. In the steady state a
reconcile sends no GET. Built by ``canary.cli``; must not be used before ``wait_synced`` (an
unsynced cache would say that objects do not exist).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable, Sequence
from typing import Any

from kubernetes import client

from canary.adapters.kube.informer import Informer, Scope
from canary.adapters.kube.objects import CustomObjects
from canary.adapters.kube.rollouts import KubeRolloutStore, parse_policy, parse_rollout
from canary.errors import InvalidSpec
from canary.model.base import share_field_sets
from canary.model.rollout import GROUP, VERSION, Rollout, RolloutPolicy
from canary.model.status import RolloutStatus
from canary.ports import ROUTE, Change, Ref, StopSignal

Obj = dict[str, Any]

RELEASED_CONTAINER_FIELDS = ("name", "image", "env", "args", "resources")
"""What the cache keeps of each container: what a release may change, and its name."""

SYNC_SECONDS = 60.0
"""How long a first read of a route kind waits for its cache to be listed."""


def trim_deployment(obj: Obj) -> Obj:
    """A Deployment cut to what ``KubeWorkloads.observe`` reads: names, generation,
    resourceVersion, canary's annotations, replicas, selector, what a release may change of
    the pod template (its labels and annotations; each container's name, image, env, args and
    resources: ``core.undo.record`` keeps them for an undo), and the rollout counters of its
    status."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    template = spec.get("template") or {}
    template_spec = template.get("spec") or {}
    template_meta = template.get("metadata") or {}
    status = obj.get("status") or {}
    return {
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "generation": meta.get("generation", 0),
            "resourceVersion": meta.get("resourceVersion"),
            "annotations": {
                k: v for k, v in (meta.get("annotations") or {}).items() if "canary.dev/" in k
            },
        },
        "spec": {
            "replicas": spec.get("replicas"),
            "selector": spec.get("selector") or {},
            "template": {
                "metadata": {
                    k: template_meta[k] for k in ("labels", "annotations") if k in template_meta
                },
                "spec": {
                    "containers": [
                        {k: c[k] for k in RELEASED_CONTAINER_FIELDS if k in c}
                        for c in template_spec.get("containers") or []
                    ]
                },
            },
        },
        "status": {
            k: status[k]
            for k in (
                "observedGeneration",
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
            )
            if k in status
        },
    }


def trim_service(obj: Obj) -> Obj:
    """A Service cut to its names, resourceVersion, selector and ports."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    return {
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "spec": {"selector": spec.get("selector"), "ports": spec.get("ports") or []},
    }


def trim_route(obj: Obj) -> Obj:
    """A route (HTTPRoute, TrafficSplit) without its ``managedFields``: the routers read and
    patch the rest (a route's rules, backends and filters are the tenant's and survive every
    weight patch, so they are kept whole), while the field managers' record — one entry per
    writer: the tenant's GitOps tool, canary, the mesh's status writer — is about as large as
    the route itself and nothing of canary's reads it."""
    meta = obj.get("metadata") or {}
    if "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


def trim_autoscaler(obj: Obj) -> Obj:
    """A HorizontalPodAutoscaler cut to its names, resourceVersion, labels and spec (which the
    canary's own autoscaler copies its metrics and behavior from)."""
    meta = obj.get("metadata") or {}
    return {
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "resourceVersion": meta.get("resourceVersion"),
            "labels": meta.get("labels") or {},
        },
        "spec": obj.get("spec") or {},
    }


class _Parsed:
    """A Rollout or RolloutPolicy parsed once per resourceVersion, or why it does not parse."""

    __slots__ = ("error", "raw_version", "value")

    def __init__(self, parse: Callable[[Obj], Any], obj: Obj) -> None:
        self.raw_version = (obj.get("metadata") or {}).get("resourceVersion")
        self.value: Any = None
        self.error: InvalidSpec | None = None
        try:
            self.value = parse(obj)
        except InvalidSpec as error:
            self.error = error
        else:
            # Kept until the object changes: its models share their sets of set-field names
            # (a Rollout with a status took 53 KB parsed, 20 KB so: make bench-parsed-memory).
            share_field_sets(self.value)

    def get(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class KubeCache:
    """Informers over the watched namespaces (all when none are given)."""

    def __init__(self, api: client.ApiClient, namespaces: Sequence[str] = ()) -> None:
        self._api = api
        self._namespaces = tuple(namespaces)
        custom: Any = client.CustomObjectsApi(api)
        apps: Any = client.AppsV1Api(api)
        core: Any = client.CoreV1Api(api)
        self.rollouts = Informer(
            "Rollout",
            self._custom_scopes(custom, GROUP, VERSION, "rollouts"),
            functools.partial(_Parsed, parse_rollout),
            index=_target_of,
        )
        self.policies = Informer(
            "RolloutPolicy",
            self._custom_scopes(custom, GROUP, VERSION, "rolloutpolicies"),
            functools.partial(_Parsed, parse_policy),
        )
        self.deployments = Informer(
            "Deployment",
            self._scopes(apps.list_deployment_for_all_namespaces, apps.list_namespaced_deployment),
            trim_deployment,
        )
        self.services = Informer(
            "Service",
            self._scopes(core.list_service_for_all_namespaces, core.list_namespaced_service),
            trim_service,
        )
        autoscaling: Any = client.AutoscalingV2Api(api)
        self.autoscalers = Informer(
            "HorizontalPodAutoscaler",
            self._scopes(
                autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces,
                autoscaling.list_namespaced_horizontal_pod_autoscaler,
            ),
            trim_autoscaler,
        )
        self._custom = custom
        self._routes: dict[tuple[str, str], Informer] = {}
        self._lock = threading.Lock()
        self._stop: StopSignal | None = None
        self._on_change: Callable[[Change], None] | None = None
        self.ready = threading.Event()

    def _scopes(self, everywhere: Callable[..., Any], one: Callable[..., Any]) -> list[Scope]:
        if not self._namespaces:
            return [(None, everywhere)]
        return [(ns, functools.partial(one, ns)) for ns in self._namespaces]

    def _custom_scopes(self, custom: Any, group: str, version: str, plural: str) -> list[Scope]:
        return self._scopes(
            functools.partial(custom.list_cluster_custom_object, group, version, plural),
            lambda ns, **kw: custom.list_namespaced_custom_object(group, version, ns, plural, **kw),
        )

    def informers(self) -> list[Informer]:
        """The informers running now (the route kinds only once used)."""
        with self._lock:
            routes = list(self._routes.values())
        return [
            self.rollouts,
            self.policies,
            self.deployments,
            self.services,
            self.autoscalers,
            *routes,
        ]

    def run(self, on_change: Callable[[Change], None], stop: StopSignal) -> None:
        """Keep every informer current until ``stop``, reporting Rollout, Deployment and route
        changes (``ports.ChangeFeed``); blocks. ``ready`` is set once all are synced."""
        self._on_change = on_change
        self._stop = stop
        threads = [
            threading.Thread(target=informer.run, args=(feed, stop), daemon=True, name=name)
            for informer, feed, name in (
                (self.rollouts, on_change, "rollouts"),
                (self.policies, None, "policies"),
                (self.deployments, on_change, "deployments"),
                (self.services, None, "services"),
                (self.autoscalers, None, "autoscalers"),
            )
        ]
        for thread in threads:
            thread.start()
        while not stop.is_set() and not all(i.synced() for i in self.informers()):
            stop.wait(0.05)
        self.ready.set()
        for thread in threads:
            thread.join()

    def sizes(self) -> dict[str, tuple[int, int]]:
        """Each running informer's kind → (objects it holds, index keys it holds)."""
        return {i.kind: (len(i), i.index_keys()) for i in self.informers()}

    def wait_synced(self, timeout: float) -> None:
        """Block until the first lists are in (raises the API error, or ApiUnavailable)."""
        for informer in (
            self.rollouts,
            self.policies,
            self.deployments,
            self.services,
            self.autoscalers,
        ):
            informer.wait_synced(timeout)

    def autoscalers_of(self, namespace: str) -> list[Obj]:
        """The cached HorizontalPodAutoscalers of a namespace (``KubeWorkloads``' listing)."""
        found: list[Obj] = self.autoscalers.values(namespace)
        return found

    def rollout_uid(self, namespace: str, name: str) -> str | None:
        """The uid of a cached Rollout (None: not cached, or it does not parse)."""
        found: _Parsed | None = self.rollouts.get(namespace, name)
        if found is None or found.error is not None:
            return None
        uid: str | None = found.value.metadata.uid
        return uid

    def store(self, direct: KubeRolloutStore) -> CachedRolloutStore:
        """A ``ports.RolloutStore`` reading this cache and writing through ``direct``."""
        return CachedRolloutStore(direct, self.rollouts, self.policies)

    def route_objects(self, api_version: str, plural: str) -> CachedObjects:
        """``routers.ObjectsFactory``: route objects read from a cache started on first use."""
        key = (api_version, plural)
        with self._lock:
            informer = self._routes.get(key)
            if informer is None:
                group, version = api_version.split("/", 1)
                informer = Informer(
                    f"{plural}.{group}",
                    self._custom_scopes(self._custom, group, version, plural),
                    trim_route,
                )
                self._routes[key] = informer
                stop = self._stop
                if stop is None:
                    raise RuntimeError("KubeCache.run must be started before routes are read")
                feed = self._on_change
                routed = None if feed is None else functools.partial(_as_route, feed)
                threading.Thread(
                    target=informer.run, args=(routed, stop), daemon=True, name=plural
                ).start()
        return CachedObjects(CustomObjects(self._api, api_version, plural), informer)


def _target_of(parsed: _Parsed) -> str | None:
    """The Deployment a cached Rollout targets: its key in the Rollouts' index (None: it does
    not parse, and no list shows it)."""
    if parsed.error is not None:
        return None
    name: str = parsed.value.spec.target_ref.name
    return name


def _as_route(on_change: Callable[[Change], None], change: Change) -> None:
    """Report a change of a route kind as a change of kind ``ports.ROUTE``."""
    on_change(dataclasses.replace(change, kind=ROUTE))


class CachedRolloutStore:
    """``ports.RolloutStore`` from the cache; status writes go to the API server."""

    def __init__(self, direct: KubeRolloutStore, rollouts: Informer, policies: Informer) -> None:
        self._direct, self._rollouts, self._policies = direct, rollouts, policies

    def get(self, ref: Ref) -> Rollout | None:
        """The cached Rollout (InvalidSpec when it does not parse), or None."""
        found: _Parsed | None = self._rollouts.get(ref.namespace, ref.name)
        return None if found is None else found.get()

    def list(self, namespace: str | None = None, target: str | None = None) -> list[Rollout]:
        """Every cached Rollout that parses (of one namespace, or of all; of one target
        Deployment, looked up in the index), sorted."""
        parsed: list[_Parsed] = self._rollouts.values(namespace, target)
        return [p.value for p in parsed if p.error is None]

    def policy(self, ref: Ref) -> RolloutPolicy | None:
        """The cached RolloutPolicy (InvalidSpec when it does not parse), or None."""
        found: _Parsed | None = self._policies.get(ref.namespace, ref.name)
        return None if found is None else found.get()

    def write_status(self, rollout: Rollout, status: RolloutStatus) -> None:
        """Replace the status on the API server (guarded: raises Conflict when the Rollout
        changed), and cache the answer."""
        written, based_on = self._direct.replace_status(rollout, status)
        self._rollouts.offer(written, *based_on)


class CachedObjects:
    """``routers.RouteObjects`` whose reads come from an informer."""

    def __init__(self, direct: CustomObjects, informer: Informer) -> None:
        self._direct, self._informer = direct, informer

    def get(self, namespace: str, name: str) -> Obj | None:
        """The cached object, or None (waits for the first list of this kind)."""
        self._informer.wait_synced(SYNC_SECONDS)
        found: Obj | None = self._informer.get(namespace, name)
        return found

    def create(self, namespace: str, body: Obj) -> Obj:
        """Create the object on the API server."""
        return self._direct.create(namespace, body)

    def patch(self, namespace: str, name: str, patch: Any) -> Obj:
        """Patch the object on the API server (a stale resourceVersion guard: Conflict), and
        cache the answer."""
        current: Obj | None = self._informer.get(namespace, name)
        done = self._direct.patch(namespace, name, patch)
        if current is not None:
            self._informer.offer(done, (current.get("metadata") or {}).get("resourceVersion"))
        return done


class CachedLookup:
    """Reads of one kind from an informer: ``KubeWorkloads``' deployments or services."""

    def __init__(self, informer: Informer) -> None:
        self._informer = informer

    def __call__(self, namespace: str, name: str) -> Obj | None:
        found: Obj | None = self._informer.get(namespace, name)
        return found
