"""The TrafficRouter contract, run against FakeRouter and the real routers on a real API server.

Keeps the runtime's fake honest: whatever the fake promises here, HTTPRoute (v1, v1beta1) and
TrafficSplit (v1alpha2, v1alpha1) do too. ``accept`` plays the mesh (Linkerd's policy controller
marks an HTTPRoute's parent Accepted at its generation; a TrafficSplit has no status).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest

from canary.core.plan import Plan
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
    has_status: bool


def accept_httproute(kube: Any, api_version: str, namespace: str, name: str) -> None:
    """Write what Linkerd's policy controller writes: the Service parent Accepted at the
    route's current generation."""
    from canary.adapters.kube.objects import CustomObjects

    objects = CustomObjects(kube, api_version, "httproutes")
    route = objects.get(namespace, name)
    assert route is not None
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    parents = [
        {
            "parentRef": ref,
            "controllerName": "linkerd.io/policy-controller",
            "conditions": [
                {
                    "type": "Accepted",
                    "status": "True",
                    "reason": "Accepted",
                    "message": "",
                    "observedGeneration": route["metadata"]["generation"],
                    "lastTransitionTime": now,
                }
            ],
        }
        for ref in route["spec"]["parentRefs"]
    ]
    route["status"] = {"parents": parents}
    objects.replace_status(namespace, name, route)


def _fake(request: pytest.FixtureRequest, auto_accept: bool) -> Subject:
    router = FakeRouter(auto_accept=auto_accept)
    plan = make_plan()
    return Subject(router, "shop", plan, partial(router.accept, "shop", plan), not auto_accept)


def _real(request: pytest.FixtureRequest, router_kind: str, api_version: str) -> Subject:
    from canary.adapters.kube.objects import CustomObjects
    from canary.adapters.routers.httproute import HTTPRouteRouter
    from canary.adapters.routers.trafficsplit import TrafficSplitRouter

    kube = request.getfixturevalue("kube")
    namespace: str = request.getfixturevalue("namespace")
    plan = make_plan(traffic={"router": router_kind, "apiVersion": api_version})
    objects = partial(CustomObjects, kube)
    if router_kind == "HTTPRoute":
        return Subject(
            HTTPRouteRouter(objects),
            namespace,
            plan,
            partial(accept_httproute, kube, api_version, namespace, plan.route_name),
            True,
        )
    return Subject(TrafficSplitRouter(objects), namespace, plan, lambda: None, False)


SUBJECTS: dict[str, Callable[[pytest.FixtureRequest], Subject]] = {
    "fake-mesh-accepts-at-once": partial(_fake, auto_accept=True),
    "fake-mesh-accepts-later": partial(_fake, auto_accept=False),
    "httproute-v1": partial(
        _real, router_kind="HTTPRoute", api_version="gateway.networking.k8s.io/v1"
    ),
    "httproute-v1beta1": partial(
        _real, router_kind="HTTPRoute", api_version="gateway.networking.k8s.io/v1beta1"
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
        subject.router.set_weights(subject.namespace, subject.plan, weight)
        state = subject.router.observe(subject.namespace, subject.plan)
        assert state is not None
        assert state.canary_weight == weight


def test_weights_are_accepted_once_the_mesh_accepts_them(subject: Subject) -> None:
    """A route with status is trusted only after the mesh accepts its change; without status
    it always is."""
    subject.router.set_weights(subject.namespace, subject.plan, 5)
    subject.accept()
    subject.router.set_weights(subject.namespace, subject.plan, 20)
    state = subject.router.observe(subject.namespace, subject.plan)
    assert state is not None
    assert state.accepted is not subject.has_status
    subject.accept()
    state = subject.router.observe(subject.namespace, subject.plan)
    assert state is not None
    assert (state.canary_weight, state.accepted) == (20, True)


def test_repeating_a_weight_keeps_it_accepted(subject: Subject) -> None:
    """Setting the weights the route already has changes nothing, not even its acceptance."""
    subject.router.set_weights(subject.namespace, subject.plan, 40)
    subject.accept()
    subject.router.set_weights(subject.namespace, subject.plan, 40)
    state = subject.router.observe(subject.namespace, subject.plan)
    assert state is not None
    assert (state.canary_weight, state.accepted) == (40, True)


@pytest.mark.parametrize("weight", [-1, 101])
def test_a_percent_outside_0_to_100_is_refused(subject: Subject, weight: int) -> None:
    """A weight that is not a percent is a programming error and writes nothing."""
    with pytest.raises(ValueError, match="percent"):
        subject.router.set_weights(subject.namespace, subject.plan, weight)
    assert subject.router.observe(subject.namespace, subject.plan) is None
