"""The routers against a real API server with Linkerd's real policy controller: what they write,
what survives, what conflicts, and what Linkerd's route status means to them."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import pytest
from kubernetes import client

from canary.adapters.kube.objects import CustomObjects
from canary.adapters.routers.httproute import HTTPRouteRouter
from canary.adapters.routers.trafficsplit import TrafficSplitRouter
from canary.core.vocabulary import RouteState
from canary.errors import Conflict, InvalidSpec
from tests.integration.test_routers_keep_the_router_contract import (
    create_services,
    set_weights,
    wait_accepted,
)
from tests.unit.fake_cluster import make_plan

pytestmark = pytest.mark.integration

V1 = "gateway.networking.k8s.io/v1"
PLAN = make_plan()


def _user_route() -> dict[str, Any]:
    return {
        "apiVersion": V1,
        "kind": "HTTPRoute",
        "metadata": {"name": "podinfo"},
        "spec": {
            "parentRefs": [{"group": "core", "kind": "Service", "name": "podinfo", "port": 9898}],
            "rules": [
                {
                    "matches": [{"headers": [{"name": "x-canary", "value": "always"}]}],
                    "backendRefs": [{"name": "podinfo-canary", "port": 9898, "weight": 1}],
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
                    "backendRefs": [{"name": "admin", "port": 80}],
                },
                {
                    "backendRefs": [
                        {"name": "podinfo-stable", "port": 9898, "weight": 100},
                        {"name": "podinfo-canary", "port": 9898, "weight": 0},
                    ]
                },
            ],
        },
    }


def test_created_route_has_the_gamma_shape(kube: client.ApiClient, namespace: str) -> None:
    """The created route attaches to the core Service with group and kind set, and is labelled."""
    set_weights(HTTPRouteRouter(partial(CustomObjects, kube)), namespace, PLAN, 5)
    route = CustomObjects(kube, V1, "httproutes").get(namespace, "podinfo")
    assert route is not None
    assert route["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "canary"
    (parent,) = route["spec"]["parentRefs"]
    assert (parent["group"], parent["kind"], parent["name"], parent["port"]) == (
        "core",
        "Service",
        "podinfo",
        9898,
    )
    refs = route["spec"]["rules"][0]["backendRefs"]
    assert [(r["name"], r["port"], r["weight"]) for r in refs] == [
        ("podinfo-stable", 9898, 95),
        ("podinfo-canary", 9898, 5),
    ]


def test_user_rules_survive_weight_patches(kube: client.ApiClient, namespace: str) -> None:
    """Header and path rules the user owns keep their matches and backends through every step,
    and Linkerd's policy controller accepts the route with them."""
    create_services(kube, namespace, PLAN)
    admin = client.V1Service(
        metadata=client.V1ObjectMeta(name="admin"),
        spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)]),
    )
    client.CoreV1Api(kube).create_namespaced_service(namespace, admin)
    objects = CustomObjects(kube, V1, "httproutes")
    objects.create(namespace, _user_route())
    router = HTTPRouteRouter(partial(CustomObjects, kube))
    for weight in (5, 50, 100, 0):
        set_weights(router, namespace, PLAN, weight)
        route = objects.get(namespace, "podinfo")
        assert route is not None
        rules = route["spec"]["rules"]
        assert len(rules) == 3
        assert rules[0]["matches"][0]["headers"] == [
            {"name": "x-canary", "type": "Exact", "value": "always"}
        ]
        assert [(r["name"], r.get("weight")) for r in rules[1]["backendRefs"]] == [("admin", 1)]
        split = {r["name"]: r["weight"] for r in rules[2]["backendRefs"]}
        assert split == {"podinfo-stable": 100 - weight, "podinfo-canary": weight}
        state = router.observe(namespace, PLAN)
        assert state is not None
        assert state.canary_weight == weight
    wait_accepted(router, namespace, PLAN)
    assert router.observe(namespace, PLAN) == RouteState(0, True)


def test_a_route_read_at_v1beta1_shows_the_same_weights(
    kube: client.ApiClient, namespace: str
) -> None:
    """A route written at v1 and steered at v1beta1 is one object: both read the same split."""
    v1 = HTTPRouteRouter(partial(CustomObjects, kube))
    set_weights(v1, namespace, PLAN, 30)
    v1beta1_plan = make_plan(traffic={"apiVersion": "gateway.networking.k8s.io/v1beta1"})
    v1beta1 = HTTPRouteRouter(partial(CustomObjects, kube))
    seen = v1beta1.observe(namespace, v1beta1_plan)
    assert seen is not None
    assert seen.canary_weight == 30
    set_weights(v1beta1, namespace, v1beta1_plan, 60)
    seen = v1.observe(namespace, PLAN)
    assert seen is not None
    assert seen.canary_weight == 60


def test_linkerd_accepts_without_a_generation_and_keeps_it_through_weight_changes(
    kube: client.ApiClient, namespace: str
) -> None:
    """The real policy controller marks the route Accepted and ResolvedRefs without any
    observedGeneration; a later weight change is trusted at once (status is not rewritten)."""
    create_services(kube, namespace, PLAN)
    router = HTTPRouteRouter(partial(CustomObjects, kube))
    set_weights(router, namespace, PLAN, 10)
    wait_accepted(router, namespace, PLAN)
    route = CustomObjects(kube, V1, "httproutes").get(namespace, "podinfo")
    assert route is not None
    (parent,) = route["status"]["parents"]
    assert parent["controllerName"] == "linkerd.io/policy-controller"
    conditions = {c["type"]: c for c in parent["conditions"]}
    assert {t: c["status"] for t, c in conditions.items()} == {
        "Accepted": "True",
        "ResolvedRefs": "True",
    }
    assert not any("observedGeneration" in c for c in conditions.values())
    set_weights(router, namespace, PLAN, 20)
    assert router.observe(namespace, PLAN) == RouteState(20, True)


def test_a_missing_parent_service_is_reported_with_linkerds_reason(
    kube: client.ApiClient, namespace: str
) -> None:
    """Without the apex Service Linkerd answers NoMatchingParent; the router reports that reason
    and a fix hint, and never counts the route as accepted."""
    router = HTTPRouteRouter(partial(CustomObjects, kube))
    set_weights(router, namespace, PLAN, 10)
    deadline = time.monotonic() + 20
    state = router.observe(namespace, PLAN)
    while state is not None and not state.rejection_reason and time.monotonic() < deadline:
        time.sleep(0.2)
        state = router.observe(namespace, PLAN)
    assert state is not None
    assert (state.accepted, state.rejection_reason) == (False, "NoMatchingParent")
    assert "the parent Service podinfo must exist" in state.rejection_message


class _RacingObjects(CustomObjects):
    """Custom objects where another writer edits the object just before each patch."""

    def patch(self, namespace: str, name: str, patch: Any) -> dict[str, Any]:
        edit = [{"op": "add", "path": "/metadata/annotations", "value": {"edited-by": "someone"}}]
        super().patch(namespace, name, edit)
        return super().patch(namespace, name, patch)


@pytest.mark.parametrize(
    ("router_kind", "api_version", "plural"),
    [
        ("HTTPRoute", V1, "httproutes"),
        ("TrafficSplit", "split.smi-spec.io/v1alpha2", "trafficsplits"),
    ],
)
def test_a_concurrent_edit_conflicts_instead_of_being_overwritten(
    kube: client.ApiClient, namespace: str, router_kind: str, api_version: str, plural: str
) -> None:
    """A weight patch computed before someone else's write fails with Conflict; retried, it
    applies and keeps their edit."""
    plan = make_plan(traffic={"router": router_kind, "apiVersion": api_version})
    router_type = HTTPRouteRouter if router_kind == "HTTPRoute" else TrafficSplitRouter
    set_weights(router_type(partial(CustomObjects, kube)), namespace, plan, 5)
    racing = router_type(partial(_RacingObjects, kube))
    with pytest.raises(Conflict):
        racing.set_weights(namespace, plan, 10)
    router = router_type(partial(CustomObjects, kube))
    set_weights(router, namespace, plan, 10)
    state = router.observe(namespace, plan)
    assert state is not None
    assert state.canary_weight == 10
    obj = CustomObjects(kube, api_version, plural).get(namespace, "podinfo")
    assert obj is not None
    assert obj["metadata"]["annotations"] == {"edited-by": "someone"}


def test_a_users_route_without_canary_backends_is_refused(
    kube: client.ApiClient, namespace: str
) -> None:
    """A route canary did not create and whose rules name neither canary Service is left alone."""
    body = _user_route()
    body["spec"]["rules"] = [body["spec"]["rules"][1]]
    objects = CustomObjects(kube, V1, "httproutes")
    objects.create(namespace, body)
    router = HTTPRouteRouter(partial(CustomObjects, kube))
    with pytest.raises(InvalidSpec, match="no rule sending traffic"):
        set_weights(router, namespace, PLAN, 10)
    state = router.observe(namespace, PLAN)
    assert state is not None
    assert (state.canary_weight, state.accepted) == (0, False)
    after = objects.get(namespace, "podinfo")
    assert after is not None
    assert after["metadata"]["generation"] == 1


def test_trafficsplit_versions_write_their_own_weight_forms(
    kube: client.ApiClient, namespace: str
) -> None:
    """v1alpha2 stores integer percents, v1alpha1 quantities; each reads the other's back."""
    v2 = make_plan(traffic={"router": "TrafficSplit"})
    v1 = make_plan(
        traffic={
            "router": "TrafficSplit",
            "apiVersion": "split.smi-spec.io/v1alpha1",
            "routeName": "podinfo-v1",
        }
    )
    router = TrafficSplitRouter(partial(CustomObjects, kube))
    set_weights(router, namespace, v2, 5)
    set_weights(router, namespace, v1, 5)
    stored_v2 = CustomObjects(kube, "split.smi-spec.io/v1alpha2", "trafficsplits").get(
        namespace, "podinfo"
    )
    stored_v1 = CustomObjects(kube, "split.smi-spec.io/v1alpha1", "trafficsplits").get(
        namespace, "podinfo-v1"
    )
    assert stored_v2 is not None
    assert stored_v1 is not None
    assert [b["weight"] for b in stored_v2["spec"]["backends"]] == [95, 5]
    assert [b["weight"] for b in stored_v1["spec"]["backends"]] == ["950m", "50m"]
    assert router.observe(namespace, v1) == RouteState(5, True)
    # The same objects seen through the other version's eyes.
    swapped_v1 = make_plan(
        traffic={"router": "TrafficSplit", "apiVersion": "split.smi-spec.io/v1alpha1"}
    )
    swapped_v2 = make_plan(traffic={"router": "TrafficSplit", "routeName": "podinfo-v1"})
    assert router.observe(namespace, swapped_v1) == RouteState(5, True)
    assert router.observe(namespace, swapped_v2) == RouteState(5, True)


def test_a_hand_written_quantity_split_is_read_and_steered(
    kube: client.ApiClient, namespace: str
) -> None:
    """A v1alpha1 split a person wrote with "500m"/"500m" reads as 50% and moves to 100%."""
    objects = CustomObjects(kube, "split.smi-spec.io/v1alpha1", "trafficsplits")
    objects.create(
        namespace,
        {
            "apiVersion": "split.smi-spec.io/v1alpha1",
            "kind": "TrafficSplit",
            "metadata": {"name": "podinfo"},
            "spec": {
                "service": "podinfo",
                "backends": [
                    {"service": "podinfo-stable", "weight": "500m"},
                    {"service": "podinfo-canary", "weight": "500m"},
                ],
            },
        },
    )
    plan = make_plan(traffic={"router": "TrafficSplit", "apiVersion": "split.smi-spec.io/v1alpha1"})
    router = TrafficSplitRouter(partial(CustomObjects, kube))
    assert router.observe(namespace, plan) == RouteState(50, True)
    set_weights(router, namespace, plan, 100)
    assert router.observe(namespace, plan) == RouteState(100, True)
