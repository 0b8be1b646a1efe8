"""What the mesh emulator sees of the cluster: Services, Pods, ReplicaSets and traffic routes.

Who calls it: ``canary.emulator`` (the only user). It keeps a live, watch-fed cache of the
objects a Linkerd data plane reacts to and hands out plain frozen snapshots of them, so that the
emulator never touches the ``kubernetes`` library. It also plays the one write Linkerd's policy
controller does that the controller relies on: marking GAMMA HTTPRoutes ``Accepted``.

It is longer than 400 lines because it converts five kinds of object and runs their informers
in one place, so that only this module of the emulator touches ``kubernetes``.

What it must not do: decide anything about traffic (that is the emulator's and the traffic
model's job) or swallow the API server being down silently — watch failures are retried with
backoff and counted in ``errors``.

Versions: each kind is read at the first of its ``ROUTE_VERSIONS`` (newest first) that the API
server serves (a CRD that serves several shows the same objects at each, so only one is
watched). A kind whose CRD is not installed is looked for again every few seconds.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from kubernetes import dynamic as _dynamic
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from canary.adapters.kube.client import connect, translated
from canary.core import weights
from canary.errors import ApiUnavailable, CanaryError
from canary.model.policy import ROUTE_VERSIONS

POLICY_CONTROLLER = "linkerd.io/policy-controller"
"""The ``controllerName`` Linkerd's policy controller writes into HTTPRoute parent status."""


Json = dict[str, Any]

# The kubernetes package is only partly typed; its entry points are used as untyped values.
DynamicClient: Any = _dynamic.DynamicClient

T = TypeVar("T")


@dataclass(frozen=True)
class PodView:
    """A pod as the emulator needs it."""

    namespace: str
    name: str
    uid: str
    ip: str
    phase: str
    ready: bool
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    owner_replicaset: str
    service_account: str
    container_ports: tuple[int, ...]


@dataclass(frozen=True)
class ServiceView:
    """A Service: its selector, its ports and its annotations."""

    namespace: str
    name: str
    selector: Mapping[str, str]
    ports: tuple[int, ...]
    annotations: Mapping[str, str]


@dataclass(frozen=True)
class RouteView:
    """A traffic split of an apex Service into weighted backend Services.

    ``kind`` is ``HTTPRoute`` or ``TrafficSplit``; ``backends`` are ``(service, weight)`` pairs.
    """

    kind: str
    namespace: str
    name: str
    apex: str
    backends: tuple[tuple[str, float], ...]
    generation: int = 0
    accepted_generation: int | None = None


@dataclass(frozen=True)
class MeshSnapshot:
    """Everything the emulator reads, at one moment."""

    pods: tuple[PodView, ...] = ()
    services: tuple[ServiceView, ...] = ()
    routes: tuple[RouteView, ...] = ()
    replicaset_owners: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """``(namespace, replicaset) -> deployment`` for ReplicaSets owned by a Deployment."""


def _meta(obj: Json) -> Json:
    meta: Json = obj.get("metadata") or {}
    return meta


def _pod(obj: Json) -> PodView:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    owner = next(
        (
            o.get("name", "")
            for o in meta.get("ownerReferences") or []
            if o.get("kind") == "ReplicaSet"
        ),
        "",
    )
    ports = tuple(
        int(p["containerPort"])
        for c in spec.get("containers") or []
        for p in c.get("ports") or []
        if "containerPort" in p
    )
    return PodView(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        ip=status.get("podIP") or "",
        phase=status.get("phase") or "",
        ready=ready and not meta.get("deletionTimestamp"),
        labels=dict(meta.get("labels") or {}),
        annotations=dict(meta.get("annotations") or {}),
        owner_replicaset=owner,
        service_account=spec.get("serviceAccountName") or "default",
        container_ports=ports,
    )


def _service(obj: Json) -> ServiceView:
    meta, spec = _meta(obj), obj.get("spec") or {}
    return ServiceView(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        selector=dict(spec.get("selector") or {}),
        ports=tuple(int(p["port"]) for p in spec.get("ports") or [] if "port" in p),
        annotations=dict(meta.get("annotations") or {}),
    )


def _replicaset_owner(obj: Json) -> tuple[str, str, str]:
    """``(namespace, replicaset, deployment)``, deployment empty when no Deployment owns it."""
    meta = _meta(obj)
    deployment = next(
        (
            o.get("name", "")
            for o in meta.get("ownerReferences") or []
            if o.get("kind") == "Deployment"
        ),
        "",
    )
    return (meta.get("namespace", ""), meta.get("name", ""), deployment)


def _httproute(obj: Json) -> RouteView | None:
    """The route's split of a GAMMA parent Service, or None for a route that is not GAMMA."""
    meta, spec = _meta(obj), obj.get("spec") or {}
    namespace = meta.get("namespace", "")
    apex = next(
        (
            p.get("name", "")
            for p in spec.get("parentRefs") or []
            if p.get("kind") == "Service"
            and p.get("group") in ("", "core")
            and p.get("namespace", namespace) == namespace
        ),
        "",
    )
    if not apex:
        return None
    rule: Json = next((r for r in spec.get("rules") or [] if r.get("backendRefs")), {})
    backends = tuple(
        (ref.get("name", ""), float(ref.get("weight", 1)))
        for ref in rule.get("backendRefs") or []
        if ref.get("kind", "Service") == "Service" and ref.get("group", "") in ("", "core")
    )
    accepted = [
        cond.get("observedGeneration")
        for parent in (obj.get("status") or {}).get("parents") or []
        if parent.get("controllerName") == POLICY_CONTROLLER
        for cond in parent.get("conditions") or []
        if cond.get("type") == "Accepted" and cond.get("status") == "True"
    ]
    return RouteView(
        kind="HTTPRoute",
        namespace=namespace,
        name=meta.get("name", ""),
        apex=apex,
        backends=backends,
        generation=int(meta.get("generation") or 0),
        accepted_generation=accepted[0] if accepted else None,
    )


def _trafficsplit(obj: Json) -> RouteView | None:
    meta, spec = _meta(obj), obj.get("spec") or {}
    backends: list[tuple[str, float]] = []
    for b in spec.get("backends") or []:
        with contextlib.suppress(ValueError):
            backends.append(
                (b.get("service", ""), float(weights.parse_quantity(b.get("weight", 0))))
            )
    if not spec.get("service"):
        return None
    return RouteView(
        kind="TrafficSplit",
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        apex=spec["service"],
        backends=tuple(backends),
        generation=int(meta.get("generation") or 0),
    )


class _Informer(Generic[T]):
    """List then watch one kind into a dict, relisting on any failure, until stopped."""

    def __init__(
        self,
        dyn: Any,
        api_versions: tuple[str, ...],
        kind: str,
        convert: Callable[[Json], T | None],
        changed: threading.Event,
    ) -> None:
        self._dyn, self._versions, self._kind = dyn, api_versions, kind
        self._convert, self._changed = convert, changed
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], T] = {}
        self.synced = threading.Event()
        self.errors = 0
        self.api_version = ""

    def items(self) -> list[T]:
        with self._lock:
            return list(self._items.values())

    def _resource(self) -> Any:
        for version in self._versions:
            try:
                resource = self._dyn.resources.get(api_version=version, kind=self._kind)
            except ResourceNotFoundError:
                continue
            self.api_version = version
            return resource
        return None

    def run(self, stop: threading.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            try:
                with translated(f"discover {self._kind}"):
                    resource = self._resource()
                if resource is None:
                    # The CRD is not installed (yet): nothing to show, look again later.
                    self.synced.set()
                    stop.wait(5.0)
                    self._dyn.resources.invalidate_cache()
                    continue
                with translated(f"list and watch {self._kind}"):
                    self._list_and_watch(resource, stop)
                backoff = 0.5
            except CanaryError:  # the API failed (translated): relist after a pause
                self.errors += 1
                stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def _key(self, obj: Json) -> tuple[str, str]:
        meta = _meta(obj)
        return (meta.get("namespace", ""), meta.get("name", ""))

    def _put(self, obj: Json) -> None:
        view = self._convert(obj)
        with self._lock:
            if view is None:
                self._items.pop(self._key(obj), None)
            else:
                self._items[self._key(obj)] = view

    def _list_and_watch(self, resource: Any, stop: threading.Event) -> None:
        listing = self._dyn.get(resource).to_dict()
        items: dict[tuple[str, str], T] = {}
        for obj in listing.get("items") or []:
            view = self._convert(obj)
            if view is not None:
                items[self._key(obj)] = view
        with self._lock:
            self._items = items
        self._changed.set()
        self.synced.set()
        version = (listing.get("metadata") or {}).get("resourceVersion")
        while not stop.is_set():
            for event in self._dyn.watch(
                resource, resource_version=version, timeout=20, allow_watch_bookmarks=True
            ):
                kind, obj = event["type"], event["raw_object"]
                if kind == "ERROR":
                    raise ApiUnavailable(f"watch of {self._kind} failed: {obj}")
                version = _meta(obj).get("resourceVersion", version)
                if kind in ("ADDED", "MODIFIED"):
                    self._put(obj)
                elif kind == "DELETED":
                    with self._lock:
                        self._items.pop(self._key(obj), None)
                if kind != "BOOKMARK":
                    self._changed.set()
                if stop.is_set():
                    return


class MeshView:
    """A watch-fed view of the cluster for the mesh emulator.

    ``start()`` launches one daemon thread per kind; ``snapshot()`` is cheap and thread-safe;
    ``changed`` is set whenever any object changed (the caller clears it).
    """

    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        self._dyn = DynamicClient(connect(kubeconfig, context))
        self.changed = threading.Event()
        self._stop = threading.Event()
        self._pods = _Informer(self._dyn, ("v1",), "Pod", _pod, self.changed)
        self._services = _Informer(self._dyn, ("v1",), "Service", _service, self.changed)
        self._replicasets = _Informer(
            self._dyn,
            ("apps/v1",),
            "ReplicaSet",
            _replicaset_owner,
            self.changed,
        )
        self._httproutes = _Informer(
            self._dyn, ROUTE_VERSIONS["HTTPRoute"], "HTTPRoute", _httproute, self.changed
        )
        self._splits = _Informer(
            self._dyn, ROUTE_VERSIONS["TrafficSplit"], "TrafficSplit", _trafficsplit, self.changed
        )
        self._informers = (
            self._pods,
            self._services,
            self._replicasets,
            self._httproutes,
            self._splits,
        )
        self._threads: list[threading.Thread] = []

    def start(self, timeout: float = 30.0) -> None:
        """Start watching; return once every kind has been listed once (or ``timeout`` passed)."""
        for informer in self._informers:
            thread = threading.Thread(target=informer.run, args=(self._stop,), daemon=True)
            thread.start()
            self._threads.append(thread)
        deadline = time.monotonic() + timeout
        for informer in self._informers:
            informer.synced.wait(max(0.0, deadline - time.monotonic()))

    def stop(self) -> None:
        """Ask the watch threads to finish (they end within one watch timeout)."""
        self._stop.set()

    @property
    def errors(self) -> int:
        """How many list/watch attempts failed since start (each was retried)."""
        return sum(informer.errors for informer in self._informers)

    def snapshot(self) -> MeshSnapshot:
        """The cached objects as plain frozen values."""
        owners = {
            (namespace, name): deployment
            for namespace, name, deployment in self._replicasets.items()
            if deployment
        }
        return MeshSnapshot(
            pods=tuple(self._pods.items()),
            services=tuple(self._services.items()),
            routes=(*self._httproutes.items(), *self._splits.items()),
            replicaset_owners=owners,
        )

    def accept_route(self, route: RouteView) -> None:
        """Mark a GAMMA HTTPRoute ``Accepted`` at its generation, as Linkerd's policy controller
        does; other controllers' parent entries are kept.

        Raises canary's errors (``client.translated``): :class:`~canary.errors.Conflict` when
        the route changed meanwhile.
        """
        with translated(f"mark HTTPRoute {route.namespace}/{route.name} accepted"):
            self._accept_route(route)

    def _accept_route(self, route: RouteView) -> None:
        resource = self._dyn.resources.get(
            api_version=self._httproutes.api_version, kind="HTTPRoute"
        )
        current = self._dyn.get(resource, name=route.name, namespace=route.namespace).to_dict()
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        parents = [
            p
            for p in (current.get("status") or {}).get("parents") or []
            if p.get("controllerName") != POLICY_CONTROLLER
        ]
        generation = _meta(current).get("generation", route.generation)
        for ref in (current.get("spec") or {}).get("parentRefs") or []:
            if ref.get("kind") != "Service":
                continue
            parents.append(
                {
                    "parentRef": ref,
                    "controllerName": POLICY_CONTROLLER,
                    "conditions": [
                        {
                            "type": condition,
                            "status": "True",
                            "reason": condition,
                            "message": "",
                            "observedGeneration": generation,
                            "lastTransitionTime": now,
                        }
                        for condition in ("Accepted", "ResolvedRefs")
                    ],
                }
            )
        body = {
            "metadata": {"resourceVersion": _meta(current).get("resourceVersion")},
            "status": {"parents": parents},
        }
        self._dyn.patch(
            resource.status,
            body=body,
            name=route.name,
            namespace=route.namespace,
            content_type="application/merge-patch+json",
        )
