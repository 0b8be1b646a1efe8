"""What the mesh emulator sees of the cluster: Services, Pods, ReplicaSets and the splits real
Linkerd puts in force.

Who calls it: ``canary.emulator`` (the only user). It keeps a live, watch-fed cache of the
objects a Linkerd data plane reacts to and hands out plain frozen snapshots of them, so that the
emulator never touches the ``kubernetes`` library. It writes nothing: route status is written
by Linkerd's real policy controller, ServiceProfiles by the real linkerd-smi adaptor.

Splits, as proxies get them: an HTTPRoute counts only once Linkerd's policy controller has
accepted it for a Service parent (``Accepted`` and ``ResolvedRefs`` True), so a route the real
controller rejects sends no canary traffic; a TrafficSplit counts through the ServiceProfile
``dstOverrides`` the smi adaptor wrote from it, never through the split itself.

It is longer than 400 lines because it converts five kinds of object and runs their informers
in one place, so that only this module of the emulator touches ``kubernetes``.

What it must not do: decide anything about traffic (that is the emulator's and the traffic
model's job) or swallow the API server being down silently — watch failures are retried with
backoff and counted in ``errors``.

Versions: Gateway API HTTPRoutes are read at the first of ``ROUTE_VERSIONS["HTTPRoute"]``
(newest first) that the API server serves (a CRD that serves several shows the same objects at
each, so only one is watched), Linkerd's own ``policy.linkerd.io/v1beta3`` HTTPRoutes (other
objects) beside them, ServiceProfiles at ``linkerd.io/v1alpha2``. A kind whose CRD is not
installed is looked for again every few seconds.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kubernetes import dynamic as _dynamic
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from canary.adapters.kube.client import connect, translated
from canary.core import weights
from canary.errors import ApiUnavailable, CanaryError
from canary.model.policy import ROUTE_VERSIONS

POLICY_CONTROLLER = "linkerd.io/policy-controller"
"""The ``controllerName`` Linkerd's policy controller writes into HTTPRoute parent status."""

LINKERD_HTTPROUTE_VERSIONS = ("policy.linkerd.io/v1beta3",)
SERVICEPROFILE_VERSIONS = ("linkerd.io/v1alpha2",)
CLUSTER_DOMAIN_SUFFIX = ".svc.cluster.local"


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
    """A traffic split of an apex Service into weighted backend Services, as Linkerd has it in
    force.

    ``kind`` is ``HTTPRoute`` or ``ServiceProfile``; ``backends`` are ``(service, weight)``.
    """

    kind: str
    namespace: str
    name: str
    apex: str
    backends: tuple[tuple[str, float], ...]


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


def _linkerd_accepts(obj: Json) -> bool:
    """Whether Linkerd's policy controller accepted the route for a Service parent and
    resolved its backends (what makes it serve the route to proxies)."""
    for parent in (obj.get("status") or {}).get("parents") or []:
        if parent.get("controllerName") != POLICY_CONTROLLER:
            continue
        verdicts = {c.get("type"): c.get("status") for c in parent.get("conditions") or []}
        if verdicts.get("Accepted") == "True" and verdicts.get("ResolvedRefs") == "True":
            return True
    return False


def _httproute(obj: Json) -> RouteView | None:
    """The route's split of a GAMMA parent Service, or None for a route that is not GAMMA or
    that Linkerd has not accepted."""
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
    if not apex or not _linkerd_accepts(obj):
        return None
    rule: Json = next((r for r in spec.get("rules") or [] if r.get("backendRefs")), {})
    backends = tuple(
        (ref.get("name", ""), float(ref.get("weight", 1)))
        for ref in rule.get("backendRefs") or []
        if ref.get("kind", "Service") == "Service" and ref.get("group", "") in ("", "core")
    )
    return RouteView(
        kind="HTTPRoute",
        namespace=namespace,
        name=meta.get("name", ""),
        apex=apex,
        backends=backends,
    )


def _service_of(authority: str, namespace: str) -> str:
    """``web`` from ``web.<namespace>.svc.cluster.local[:port]``, else empty."""
    host = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
    suffix = f".{namespace}{CLUSTER_DOMAIN_SUFFIX}"
    return host.removesuffix(suffix) if host.endswith(suffix) else ""


def _serviceprofile(obj: Json) -> RouteView | None:
    """The split a ServiceProfile's ``dstOverrides`` put in force (the smi adaptor writes them
    from a TrafficSplit), or None for a profile without overrides."""
    meta, spec = _meta(obj), obj.get("spec") or {}
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    apex = _service_of(name, namespace)
    overrides = spec.get("dstOverrides") or []
    if not apex or not overrides:
        return None
    backends: list[tuple[str, float]] = []
    for override in overrides:
        service = _service_of(str(override.get("authority", "")), namespace)
        with contextlib.suppress(ValueError):
            if service:
                backends.append((service, float(weights.parse_quantity(override.get("weight", 0)))))
    return RouteView(
        kind="ServiceProfile", namespace=namespace, name=name, apex=apex, backends=tuple(backends)
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
        self._linkerd_httproutes = _Informer(
            self._dyn, LINKERD_HTTPROUTE_VERSIONS, "HTTPRoute", _httproute, self.changed
        )
        self._profiles = _Informer(
            self._dyn, SERVICEPROFILE_VERSIONS, "ServiceProfile", _serviceprofile, self.changed
        )
        self._informers = (
            self._pods,
            self._services,
            self._replicasets,
            self._httproutes,
            self._linkerd_httproutes,
            self._profiles,
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
            routes=(
                *self._httproutes.items(),
                *self._linkerd_httproutes.items(),
                *self._profiles.items(),
            ),
            replicaset_owners=owners,
        )
