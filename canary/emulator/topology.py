"""From a snapshot of the cluster to what the emulated mesh does: who is scraped, who sends what
to whom, and with which labels.

Who calls it: ``canary.emulator.engine`` whenever the cluster changed. It is a pure function of a
:class:`~canary.adapters.kube.meshview.MeshSnapshot` (no I/O), so the rules below are tested on
plain values:

- A pod is *meshed* unless annotated ``linkerd.io/inject: disabled``; a meshed pod in phase
  Pending/Running with an IP is scraped (as the linkerd-viz job keeps Pending/Running pods), and
  only a Ready one receives traffic.
- A Service annotated ``sim.canary.dev/rps`` (and optionally ``sim.canary.dev/paths``, the mix
  of paths its clients ask for) gets that load from a load-generator "pod"
  ``<service>-loadgen``. It is split by the split Linkerd has in force for that Service (an
  HTTPRoute the policy controller accepted with the Service as a GAMMA parent, else the
  ServiceProfile dstOverrides the smi adaptor wrote from a TrafficSplit); a Service without one
  sends to its own pods. A backend's pods are the Ready pods its selector picks.
- Scrape target labels are what the linkerd-viz ``linkerd-proxy`` job's relabelling produces:
  ``namespace``, ``pod``, the proxy-injector's labels (``deployment`` from the owning
  Deployment, ``control_plane_ns``, ``workload_ns``), every other pod label under its sanitized
  name, ``job`` and ``instance="<podIP>:4191"``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from canary.adapters.kube.meshview import MeshSnapshot, PodView, RouteView, ServiceView
from canary.emulator.annotations import (
    AnnotationProblem,
    pod_behaviour,
    service_paths,
    service_rps,
)
from canary.sim.exposition import Destination, Labels, identity, inbound_labels
from canary.sim.traffic import Backend, Behaviour

JOB = "linkerd-proxy"
ADMIN_PORT = 4191
CONTROL_PLANE_NS = "linkerd"
LOADGEN_SERVICE_ACCOUNT = "loadgen"
DEFAULT_PORT = 80
SCRAPED_PHASES = ("Pending", "Running")

_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True)
class ScrapedPod:
    """A pod whose proxy is emulated: its identity, scrape target and behaviour."""

    key: str
    namespace: str
    name: str
    ip: str
    ready: bool
    metrics_path: str
    target_labels: Mapping[str, str]
    inbound: Labels
    behaviour: Behaviour
    deployment: str
    pod_template_hash: str
    service_account: str


@dataclass(frozen=True)
class Flow:
    """Load sent to one apex Service, split over its backends."""

    client: str
    namespace: str
    service: str
    rps: float
    backends: Mapping[str, Backend]
    paths: tuple[tuple[str, float], ...]
    ports: Mapping[str, int]
    metrics_path: str
    target_labels: Mapping[str, str]


@dataclass(frozen=True)
class Topology:
    """Everything the engine needs from one snapshot."""

    pods: Mapping[str, ScrapedPod]
    flows: tuple[Flow, ...]
    problems: tuple[AnnotationProblem, ...]


def pod_key(pod: PodView) -> str:
    """The traffic model's name for a pod: a recreated pod (new uid) starts from zero."""
    return f"{pod.namespace}/{pod.name}/{pod.uid}"


def sanitize(name: str) -> str:
    """A Kubernetes label name as Prometheus' discovery exposes it (invalid characters → ``_``)."""
    return _INVALID_LABEL_CHARS.sub("_", name)


def proxy_labels(pod: PodView, deployment: str) -> dict[str, str]:
    """The labels Linkerd's proxy injector adds to a meshed pod (kept if the pod has them)."""
    injected = {
        "linkerd.io/control-plane-ns": CONTROL_PLANE_NS,
        "linkerd.io/workload-ns": pod.namespace,
    }
    if deployment:
        injected["linkerd.io/proxy-deployment"] = deployment
    return {**injected, **pod.labels}


def viz_target_labels(pod: PodView, labels: Mapping[str, str]) -> dict[str, str]:
    """The linkerd-viz scrape job's relabelling applied to a pod's labels."""
    proxy, linkerd, ordinary = {}, {}, {}
    for name, value in labels.items():
        if name.startswith("linkerd.io/proxy-"):
            proxy[sanitize(name.removeprefix("linkerd.io/proxy-"))] = value
        elif name.startswith("linkerd.io/"):
            linkerd[sanitize(name.removeprefix("linkerd.io/"))] = value
        else:
            ordinary[sanitize(name)] = value
    result = {"namespace": pod.namespace, "pod": pod.name, **proxy, **linkerd, **ordinary}
    result["job"] = JOB
    result["instance"] = f"{pod.ip}:{ADMIN_PORT}"
    # Prometheus drops labels whose value is empty.
    return {name: value for name, value in result.items() if value}


def _selects(service: ServiceView, pod: PodView) -> bool:
    return (
        bool(service.selector)
        and service.namespace == pod.namespace
        and all(pod.labels.get(k) == v for k, v in service.selector.items())
    )


def _candidates(
    by_label: dict[tuple[str, str, str], list[tuple[int, ServiceView]]], pod: PodView
) -> list[tuple[int, ServiceView]]:
    """The Services (with their place in the snapshot) that may select ``pod``."""
    return [
        found
        for key, value in pod.labels.items()
        for found in by_label.get((pod.namespace, key, value), ())
    ]


def _meshed(pod: PodView) -> bool:
    return pod.annotations.get("linkerd.io/inject") != "disabled"


def _port(pod: PodView, services: list[ServiceView]) -> int:
    if pod.container_ports:
        return pod.container_ports[0]
    return next((s.ports[0] for s in services if s.ports), DEFAULT_PORT)


class PodMemo:
    """What :func:`build` derived from each pod, kept from one build to the next: a pod whose
    view is the very same object (the cluster view keeps a pod's until it changes), with the
    same Deployment and port, is not derived again. At N = 1000 apps, deriving every pod's
    labels and behaviour was half of a build, and the emulator builds twice a second while
    releases change the cluster. Holds only the pods of the last build."""

    def __init__(self) -> None:
        self._pods: dict[int, tuple[PodView, str, int, ScrapedPod, list[AnnotationProblem]]] = {}
        self._next: dict[int, tuple[PodView, str, int, ScrapedPod, list[AnnotationProblem]]] = {}

    def get(
        self, pod: PodView, deployment: str, port: int
    ) -> tuple[ScrapedPod, list[AnnotationProblem]] | None:
        """The pod's derivation of the last build, if nothing it came from changed."""
        found = self._pods.get(id(pod))
        if found is None or found[0] is not pod or found[1:3] != (deployment, port):
            return None
        self._next[id(pod)] = found
        return found[3], found[4]

    def put(
        self,
        pod: PodView,
        deployment: str,
        port: int,
        scraped: ScrapedPod,
        problems: list[AnnotationProblem],
    ) -> None:
        """Keep a derivation for the next build."""
        self._next[id(pod)] = (pod, deployment, port, scraped, problems)

    def done(self) -> None:
        """The build is over: keep only what it used or made."""
        self._pods, self._next = self._next, {}


def _scraped(
    pod: PodView, deployment: str, port: int
) -> tuple[ScrapedPod, list[AnnotationProblem]]:
    behaviour, problems = pod_behaviour(f"pod {pod.namespace}/{pod.name}", pod.annotations)
    labels = proxy_labels(pod, deployment)
    key = pod_key(pod)
    path = f"/pods/{pod.namespace}/{pod.name}/metrics"
    scraped = ScrapedPod(
        key=key,
        namespace=pod.namespace,
        name=pod.name,
        ip=pod.ip,
        ready=pod.ready,
        metrics_path=path,
        target_labels={**viz_target_labels(pod, labels), "__metrics_path__": path},
        inbound=inbound_labels(
            pod_ip=pod.ip,
            port=port,
            client_id=identity(LOADGEN_SERVICE_ACCOUNT, pod.namespace),
        ),
        behaviour=behaviour,
        deployment=labels.get("linkerd.io/proxy-deployment", ""),
        pod_template_hash=pod.labels.get("pod-template-hash", ""),
        service_account=pod.service_account,
    )
    return scraped, problems


def _derive(
    memo: PodMemo | None, pod: PodView, deployment: str, port: int
) -> tuple[ScrapedPod, list[AnnotationProblem]]:
    found = memo.get(pod, deployment, port) if memo is not None else None
    if found is None:
        found = _scraped(pod, deployment, port)
        if memo is not None:
            memo.put(pod, deployment, port, *found)
    return found


def build(
    snapshot: MeshSnapshot,
    namespaces: frozenset[str] = frozenset(),
    memo: PodMemo | None = None,
) -> Topology:
    """What the emulated mesh looks like for this snapshot of the cluster (only ``namespaces``
    when given: the rest of the cluster has no emulated proxies). With a ``memo``, pods that
    did not change since the last build with it are not derived again."""
    if namespaces:
        snapshot = MeshSnapshot(
            pods=tuple(p for p in snapshot.pods if p.namespace in namespaces),
            services=tuple(s for s in snapshot.services if s.namespace in namespaces),
            routes=tuple(r for r in snapshot.routes if r.namespace in namespaces),
            replicaset_owners=snapshot.replicaset_owners,
        )
    problems: list[AnnotationProblem] = []
    services = {(s.namespace, s.name): s for s in snapshot.services}
    # Each Service under one label of its selector (its smallest): a pod's candidates are the
    # Services filed under one of its own labels, not every Service of its namespace.
    by_label: dict[tuple[str, str, str], list[tuple[int, ServiceView]]] = {}
    for position, service in enumerate(snapshot.services):
        if service.selector:
            key, value = min(service.selector.items())
            by_label.setdefault((service.namespace, key, value), []).append((position, service))

    pods: dict[str, ScrapedPod] = {}
    ready_by_service: dict[tuple[str, str], list[str]] = {}
    for pod in sorted(snapshot.pods, key=lambda p: (p.namespace, p.name)):
        if not (_meshed(pod) and pod.ip and pod.phase in SCRAPED_PHASES):
            continue
        selecting = [s for _, s in sorted(_candidates(by_label, pod)) if _selects(s, pod)]
        deployment = snapshot.replicaset_owners.get((pod.namespace, pod.owner_replicaset), "")
        port = _port(pod, selecting)
        scraped, pod_problems = _derive(memo, pod, deployment, port)
        problems.extend(pod_problems)
        key = scraped.key
        pods[key] = scraped
        if pod.ready:
            for service in selecting:
                ready_by_service.setdefault((service.namespace, service.name), []).append(key)

    routes: dict[tuple[str, str], RouteView] = {}
    for route in sorted(snapshot.routes, key=lambda r: (r.kind != "HTTPRoute", r.name)):
        routes.setdefault((route.namespace, route.apex), route)

    flows: list[Flow] = []
    for service in sorted(snapshot.services, key=lambda s: (s.namespace, s.name)):
        where = f"service {service.namespace}/{service.name}"
        rps, found = service_rps(where, service.annotations)
        problems.extend(found)
        if rps <= 0:
            continue
        paths, found = service_paths(where, service.annotations)
        problems.extend(found)
        split = routes.get((service.namespace, service.name))
        weights = split.backends if split else ((service.name, 1.0),)
        backends = {
            name: Backend(weight, tuple(ready_by_service.get((service.namespace, name), ())))
            for name, weight in weights
        }
        ports = {
            name: next(iter(services[(service.namespace, name)].ports), DEFAULT_PORT)
            if (service.namespace, name) in services
            else DEFAULT_PORT
            for name, _ in weights
        }
        loadgen = f"{service.name}-loadgen"
        path = f"/loadgen/{service.namespace}/{service.name}/metrics"
        flows.append(
            Flow(
                client=f"{service.namespace}/{service.name}",
                namespace=service.namespace,
                service=service.name,
                rps=rps,
                backends=backends,
                paths=paths,
                ports=ports,
                metrics_path=path,
                target_labels={
                    "namespace": service.namespace,
                    "pod": loadgen,
                    "deployment": loadgen,
                    "app": loadgen,
                    "control_plane_ns": CONTROL_PLANE_NS,
                    "workload_ns": service.namespace,
                    "job": JOB,
                    "instance": f"{loadgen}.{service.namespace}:{ADMIN_PORT}",
                    "__metrics_path__": path,
                },
            )
        )

    if memo is not None:
        memo.done()
    return Topology(pods=pods, flows=tuple(flows), problems=tuple(problems))


def destination(flow: Flow, backend: str, pod: ScrapedPod | None) -> Destination:
    """The ``dst_*`` view the load generator's proxy has of an endpoint of ``backend``."""
    port = flow.ports.get(backend, DEFAULT_PORT)
    if pod is None:
        return Destination(namespace=flow.namespace, service=backend, port=port)
    return Destination(
        namespace=flow.namespace,
        service=backend,
        port=port,
        pod=pod.name,
        pod_ip=pod.ip,
        deployment=pod.deployment,
        pod_template_hash=pod.pod_template_hash,
        service_account=pod.service_account,
    )
