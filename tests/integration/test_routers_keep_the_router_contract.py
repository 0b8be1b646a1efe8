"""The TrafficRouter contract, run against FakeRouter and the real routers on a real API server.

Keeps the runtime's fake honest: whatever the fake promises here, HTTPRoute (gateway v1, v1beta1,
policy.linkerd.io v1beta3) and TrafficSplit (v1alpha2, v1alpha1) do too. For HTTPRoutes the mesh
is Linkerd's real policy controller of the dev environment: ``accept`` waits until it has marked
the route Accepted and ResolvedRefs (it needs the apex and backend Services, created first); a
TrafficSplit has no status.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from kubernetes import client

from canary.core.plan import Plan
from canary.errors import Conflict
from canary.ports import TrafficRouter
from tests.fakes import FakeRouter
from tests.unit.fake_cluster import make_plan


@dataclass
class Subject:
    """A router under contract, the namespace and plan it steers, and its mesh."""

    router: TrafficRouter
    namespace: str
    plan: Plan
    accept: Callable[[], None]


def create_services(kube: Any, namespace: str, plan: Plan) -> None:
    """The apex Service and canary's two backend Services, as a release has them."""
    core = client.CoreV1Api(kube)
    for name in (plan.service.name, plan.stable_service, plan.canary_service):
        body = client.V1Service(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1ServiceSpec(
                selector={"app": name}, ports=[client.V1ServicePort(port=plan.service.port)]
            ),
        )
        core.create_namespaced_service(namespace, body)


def set_weights(router: TrafficRouter, namespace: str, plan: Plan, canary: int) -> None:
    """``set_weights`` as the reconciler drives it: a Conflict means another writer (here
    Linkerd's policy controller, writing route status) landed between the read and the patch,
    and the next attempt re-reads."""
    for attempt in range(5):
        try:
            router.set_weights(namespace, plan, canary)
            return
        except Conflict:
            if attempt == 4:
                raise
            time.sleep(0.2)


def wait_accepted(router: TrafficRouter, namespace: str, plan: Plan, timeout: float = 20) -> None:
    """Wait until Linkerd's policy controller has accepted the route (it writes status within
    about a second of a route or Service change, and re-checks every 10 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = router.observe(namespace, plan)
        if state is not None and state.accepted:
            return
        time.sleep(0.2)
    pytest.fail(f"the policy controller did not accept the route within {timeout:.0f}s")


def _fake(request: pytest.FixtureRequest, auto_accept: bool) -> Subject:
    router = FakeRouter(auto_accept=auto_accept)
    plan = make_plan()
    return Subject(router, "shop", plan, partial(router.accept, "shop", plan))


def _real(request: pytest.FixtureRequest, router_kind: str, api_version: str) -> Subject:
    from canary.adapters.kube.objects import CustomObjects
    from canary.adapters.routers.httproute import HTTPRouteRouter
    from canary.adapters.routers.trafficsplit import TrafficSplitRouter

    kube = request.getfixturevalue("kube")
    namespace: str = request.getfixturevalue("namespace")
    plan = make_plan(traffic={"router": router_kind, "apiVersion": api_version})
    objects = partial(CustomObjects, kube)
    if router_kind == "HTTPRoute":
        create_services(kube, namespace, plan)
        router = HTTPRouteRouter(objects)
        return Subject(router, namespace, plan, partial(wait_accepted, router, namespace, plan))
    return Subject(TrafficSplitRouter(objects), namespace, plan, lambda: None)


SUBJECTS: dict[str, Callable[[pytest.FixtureRequest], Subject]] = {
    "fake-mesh-accepts-at-once": partial(_fake, auto_accept=True),
    "fake-mesh-accepts-later": partial(_fake, auto_accept=False),
    "httproute-v1": partial(
        _real, router_kind="HTTPRoute", api_version="gateway.networking.k8s.io/v1"
    ),
    "httproute-v1beta1": partial(
        _real, router_kind="HTTPRoute", api_version="gateway.networking.k8s.io/v1beta1"
    ),
    "httproute-linkerd-v1beta3": partial(
        _real, router_kind="HTTPRoute", api_version="policy.linkerd.io/v1beta3"
    ),
    "trafficsplit-v1alpha2": partial(
        _real, router_kind="TrafficSplit", api_version="split.smi-spec.io/v1alpha2"
    ),
    "trafficsplit-v1alpha1": partial(
        _real, router_kind="TrafficSplit", api_version="split.smi-spec.io/v1alpha1"
    ),
}


@pytest.fixture(
    params=[
        pytest.param(name, marks=[] if name.startswith("fake") else [pytest.mark.integration])
        for name in SUBJECTS
    ]
)
def subject(request: pytest.FixtureRequest) -> Subject:
    """Each router under contract."""
    return SUBJECTS[request.param](request)


def test_no_route_is_observed_as_none(subject: Subject) -> None:
    """Before the first set_weights there is no route."""
    assert subject.router.observe(subject.namespace, subject.plan) is None


def test_weights_set_are_the_weights_observed(subject: Subject) -> None:
    """Every percent set, up and back down, is the percent observed."""
    for weight in (0, 5, 33, 50, 100, 10, 0):
        set_weights(subject.router, subject.namespace, subject.plan, weight)
        state = subject.router.observe(subject.namespace, subject.plan)
        assert state is not None
        assert state.canary_weight == weight


def test_a_weight_change_keeps_an_accepted_route_accepted(subject: Subject) -> None:
    """Once the mesh accepted the route, new weights are trusted at once: Linkerd's policy
    controller does not rewrite status when only weights change, so nothing else would come."""
    set_weights(subject.router, subject.namespace, subject.plan, 5)
    subject.accept()
    set_weights(subject.router, subject.namespace, subject.plan, 20)
    state = subject.router.observe(subject.namespace, subject.plan)
    assert state is not None
    assert (state.canary_weight, state.accepted) == (20, True)


def test_repeating_a_weight_keeps_it_accepted(subject: Subject) -> None:
    """Setting the weights the route already has changes nothing, not even its acceptance."""
    set_weights(subject.router, subject.namespace, subject.plan, 40)
    subject.accept()
    set_weights(subject.router, subject.namespace, subject.plan, 40)
    state = subject.router.observe(subject.namespace, subject.plan)
    assert state is not None
    assert (state.canary_weight, state.accepted) == (40, True)


@pytest.mark.parametrize("weight", [-1, 101])
def test_a_percent_outside_0_to_100_is_refused(subject: Subject, weight: int) -> None:
    """A weight that is not a percent is a programming error and writes nothing."""
    with pytest.raises(ValueError, match="percent"):
        subject.router.set_weights(subject.namespace, subject.plan, weight)
    assert subject.router.observe(subject.namespace, subject.plan) is None
