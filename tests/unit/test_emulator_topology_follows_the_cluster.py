"""The emulator's topology: who is scraped with which labels, and how load is split."""

import dataclasses

from canary.adapters.kube.meshview import MeshSnapshot, PodView, RouteView, ServiceView
from canary.emulator.topology import PodMemo, build, pod_key
from canary.sim.traffic import Backend


def _pod(name: str, app: str, *, ready: bool = True, rs: str = "", **annotations: str) -> PodView:
    return PodView(
        namespace="test",
        name=name,
        uid=f"uid-{name}",
        ip=f"10.0.0.{len(name)}",
        phase="Running",
        ready=ready,
        labels={"app": app, "pod-template-hash": "abc123"},
        annotations={f"sim.canary.dev/{k.replace('_', '-')}": v for k, v in annotations.items()},
        owner_replicaset=rs,
        service_account="podinfo",
        container_ports=(9898,),
    )


def _svc(name: str, app: str, rps: str | None = None) -> ServiceView:
    return ServiceView(
        namespace="test",
        name=name,
        selector={"app": app},
        ports=(9898,),
        annotations={"sim.canary.dev/rps": rps} if rps else {},
    )


STABLE = _pod("podinfo-abc123-x1", "podinfo", rs="podinfo-abc123")
CANARY = _pod("podinfo-canary-def-y1", "podinfo-canary", rs="podinfo-canary-def", error_rate="0.5")
SERVICES = (
    _svc("podinfo", "podinfo", rps="50"),
    _svc("podinfo-stable", "podinfo"),
    _svc("podinfo-canary", "podinfo-canary"),
)
OWNERS = {("test", "podinfo-abc123"): "podinfo", ("test", "podinfo-canary-def"): "podinfo-canary"}


def test_scrape_labels_are_what_the_linkerd_viz_job_produces() -> None:
    """Target labels: namespace, pod, deployment, app, pod_template_hash, control-plane labels,
    job and instance at the pod IP's admin port, plus the pod's metrics path."""
    topology = build(MeshSnapshot(pods=(STABLE,), services=SERVICES, replicaset_owners=OWNERS))
    labels = topology.pods[pod_key(STABLE)].target_labels
    assert labels == {
        "namespace": "test",
        "pod": "podinfo-abc123-x1",
        "deployment": "podinfo",
        "app": "podinfo",
        "pod_template_hash": "abc123",
        "control_plane_ns": "linkerd",
        "workload_ns": "test",
        "job": "linkerd-proxy",
        "instance": f"{STABLE.ip}:4191",
        "__metrics_path__": "/pods/test/podinfo-abc123-x1/metrics",
    }


def test_service_without_route_sends_to_its_own_ready_pods() -> None:
    """An annotated Service with no route is one backend: itself, with its Ready pods."""
    unready = _pod("podinfo-abc123-x2", "podinfo", ready=False)
    topology = build(MeshSnapshot(pods=(STABLE, unready), services=SERVICES))
    (flow,) = topology.flows
    assert flow.rps == 50
    assert flow.backends == {"podinfo": Backend(1.0, (pod_key(STABLE),))}
    assert pod_key(unready) in topology.pods, "a Running pod that is not Ready is still scraped"


def test_route_splits_the_apex_by_its_weights() -> None:
    """With an HTTPRoute on the apex, the load goes to its backends by weight."""
    route = RouteView(
        kind="HTTPRoute",
        namespace="test",
        name="podinfo",
        apex="podinfo",
        backends=(("podinfo-stable", 80.0), ("podinfo-canary", 20.0)),
    )
    snapshot = MeshSnapshot(pods=(STABLE, CANARY), services=SERVICES, routes=(route,))
    topology = build(snapshot)
    (flow,) = topology.flows
    assert flow.backends == {
        "podinfo-stable": Backend(80.0, (pod_key(STABLE),)),
        "podinfo-canary": Backend(20.0, (pod_key(CANARY),)),
    }
    assert topology.pods[pod_key(CANARY)].behaviour.error_rate == 0.5


def test_httproute_wins_over_a_serviceprofile() -> None:
    """When an accepted HTTPRoute and a ServiceProfile's overrides both split the apex, the
    HTTPRoute is used (Linkerd's proxies prefer routes)."""
    route = RouteView("HTTPRoute", "test", "r", "podinfo", (("podinfo-canary", 1.0),))
    profile = RouteView(
        "ServiceProfile", "test", "a-profile", "podinfo", (("podinfo-stable", 1.0),)
    )
    snapshot = MeshSnapshot(pods=(STABLE, CANARY), services=SERVICES, routes=(profile, route))
    topology = build(snapshot)
    assert list(topology.flows[0].backends) == ["podinfo-canary"]


def test_unmeshed_pods_and_pods_without_ip_are_not_scraped() -> None:
    """linkerd.io/inject: disabled, no IP, or a finished phase means no emulated proxy."""
    disabled = PodView(
        **{
            **STABLE.__dict__,
            "name": "a",
            "uid": "a",
            "annotations": {"linkerd.io/inject": "disabled"},
        }
    )
    no_ip = PodView(**{**STABLE.__dict__, "name": "b", "uid": "b", "ip": ""})
    done = PodView(**{**STABLE.__dict__, "name": "c", "uid": "c", "phase": "Succeeded"})
    topology = build(MeshSnapshot(pods=(disabled, no_ip, done), services=SERVICES))
    assert topology.pods == {}


def test_bad_annotations_are_collected_not_raised() -> None:
    """A bad pod or Service annotation shows up in problems; the rest of the topology is built."""
    bad = _pod("podinfo-abc123-x3", "podinfo", error_rate="lots")
    services = (*SERVICES, _svc("other", "other", rps="-1"))
    topology = build(MeshSnapshot(pods=(bad,), services=services))
    assert [p.key for p in topology.problems] == ["sim.canary.dev/error-rate", "sim.canary.dev/rps"]
    assert pod_key(bad) in topology.pods
    assert len(topology.flows) == 1


def test_a_pod_is_a_backend_of_every_service_whose_whole_selector_it_matches() -> None:
    """Selection goes by the whole selector and the namespace, whichever label a Service is
    looked up by: a two-label selector the pod matches, one it half matches, a Service of
    another namespace and one without a selector."""
    two = {"app": "podinfo", "pod-template-hash": "abc123"}
    both = dataclasses.replace(_svc("both", "podinfo", rps="10"), selector=two)
    half = dataclasses.replace(
        _svc("half", "podinfo", rps="10"), selector={**two, "pod-template-hash": "zzz"}
    )
    elsewhere = dataclasses.replace(_svc("elsewhere", "podinfo", rps="10"), namespace="other")
    bare = dataclasses.replace(_svc("bare", "podinfo", rps="10"), selector={})
    plain = _svc("plain", "podinfo", rps="10")
    topology = build(MeshSnapshot(pods=(STABLE,), services=(half, both, elsewhere, bare, plain)))
    backends = {name: f.backends[name].pods for f in topology.flows for name in f.backends}
    assert backends["both"] == backends["plain"] == (pod_key(STABLE),)
    assert backends["half"] == backends["elsewhere"] == backends["bare"] == ()


def test_a_memo_reuses_unchanged_pods_and_rederives_changed_ones() -> None:
    """With a memo, each build equals the build without one; a pod view that is the same object
    (same owner, same port) keeps its derived proxy, an edited pod (a new view) is derived again
    with its new behaviour, a pod whose owner changed gets its new deployment label, and a bad
    annotation is reported at every build, memoized or not."""
    memo = PodMemo()
    bad = _pod("podinfo-abc123-x3", "podinfo", rs="podinfo-abc123", error_rate="lots")
    first = MeshSnapshot(pods=(STABLE, CANARY, bad), services=SERVICES, replicaset_owners=OWNERS)
    before = build(first, memo=memo)
    assert before == build(first)
    again = build(first, memo=memo)
    assert again == before
    assert again.pods[pod_key(STABLE)] is before.pods[pod_key(STABLE)]
    assert [p.key for p in again.problems] == ["sim.canary.dev/error-rate"]

    edited = dataclasses.replace(
        CANARY, annotations={"sim.canary.dev/error-rate": "0.01"}
    )  # same name and uid: the pod's key stays, its view is new
    owners = {**OWNERS, ("test", "podinfo-abc123"): "podinfo-renamed"}
    second = MeshSnapshot(pods=(STABLE, edited, bad), services=SERVICES, replicaset_owners=owners)
    after = build(second, memo=memo)
    assert after == build(second)
    assert after.pods[pod_key(CANARY)].behaviour.error_rate == 0.01
    assert after.pods[pod_key(STABLE)].deployment == "podinfo-renamed"
    assert after.pods[pod_key(STABLE)].target_labels["deployment"] == "podinfo-renamed"
