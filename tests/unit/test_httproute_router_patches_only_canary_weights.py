"""HTTPRoute router logic on an in-memory store: creation, weight-only patches, and what
Linkerd's route status means (acceptance, refusals with their reason)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from canary.adapters.routers import httproute
from canary.adapters.routers.httproute import HTTPRouteRouter
from canary.core.plan import Plan
from canary.core.vocabulary import RouteState
from canary.errors import Conflict, InvalidSpec
from tests.fakes import InMemoryObjects
from tests.unit.fake_cluster import make_plan

NS = "shop"
PLAN = make_plan()  # apex podinfo:9898, HTTPRoute gateway.networking.k8s.io/v1


def _router(store: InMemoryObjects) -> HTTPRouteRouter:
    return HTTPRouteRouter(lambda api_version, plural: store)


def _accept(
    store: InMemoryObjects,
    *,
    generation: int | None = None,
    accepted: tuple[str, str] = ("True", "Accepted"),
    resolved: tuple[str, str] = ("True", "ResolvedRefs"),
    controller: str = "linkerd.io/policy-controller",
) -> None:
    """Write the parent status Linkerd's policy controller writes (no observedGeneration unless
    ``generation`` is given)."""
    route = store.objects[(NS, PLAN.route_name)]
    parent_ref = {**route["spec"]["parentRefs"][0], "namespace": NS}
    conditions: list[dict[str, Any]] = [
        {"type": kind, "status": status, "reason": reason, "message": ""}
        for kind, (status, reason) in (("Accepted", accepted), ("ResolvedRefs", resolved))
    ]
    if generation is not None:
        for condition in conditions:
            condition["observedGeneration"] = generation
    store.set_status(
        NS,
        PLAN.route_name,
        {
            "parents": [
                {"parentRef": parent_ref, "controllerName": controller, "conditions": conditions}
            ]
        },
    )


def _user_route(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "parentRefs": [{"group": "core", "kind": "Service", "name": "podinfo", "port": 9898}],
        "rules": [
            {
                "matches": [{"headers": [{"name": "x-canary", "value": "always"}]}],
                "backendRefs": [{"name": "podinfo-canary", "port": 9898}],
            },
            {
                "backendRefs": [
                    {"name": "podinfo-stable", "port": 9898, "weight": 100},
                    {"name": "podinfo-canary", "port": 9898, "weight": 0},
                ],
                "filters": [{"type": "RequestHeaderModifier"}],
            },
        ],
    }
    base.update(spec)
    return {"metadata": {"name": "podinfo"}, "spec": base}


def test_creates_the_route_with_the_apex_as_parent() -> None:
    """An absent route is created: core Service parent, one weighted rule, canary's label."""
    store = InMemoryObjects()
    router = _router(store)
    assert router.observe(NS, PLAN) is None
    router.set_weights(NS, PLAN, 20)
    route = store.objects[(NS, "podinfo")]
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["kind"] == "HTTPRoute"
    assert route["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "canary"}
    assert route["spec"]["parentRefs"] == [
        {"group": "core", "kind": "Service", "name": "podinfo", "port": 9898}
    ]
    assert route["spec"]["rules"] == [
        {
            "backendRefs": [
                {"name": "podinfo-stable", "port": 9898, "weight": 80},
                {"name": "podinfo-canary", "port": 9898, "weight": 20},
            ]
        }
    ]
    state = router.observe(NS, PLAN)
    assert state is not None
    assert (state.canary_weight, state.accepted) == (20, False)


def test_weights_are_trusted_once_linkerd_accepts_and_through_later_weight_changes() -> None:
    """Not trusted before Linkerd accepts; after that a weight change is trusted at once,
    because Linkerd does not rewrite status when only weights change."""
    store = InMemoryObjects()
    router = _router(store)
    router.set_weights(NS, PLAN, 5)
    assert router.observe(NS, PLAN) == RouteState(5, False)
    _accept(store)
    assert router.observe(NS, PLAN) == RouteState(5, True)
    router.set_weights(NS, PLAN, 10)
    assert router.observe(NS, PLAN) == RouteState(10, True)


def test_a_generation_is_compared_only_when_a_condition_carries_one() -> None:
    """A stale observedGeneration does not count; a current one or none at all does."""
    store = InMemoryObjects()
    router = _router(store)
    router.set_weights(NS, PLAN, 5)
    router.set_weights(NS, PLAN, 6)  # generation 2
    _accept(store, generation=1)
    assert router.observe(NS, PLAN) == RouteState(6, False)
    _accept(store, generation=2)
    assert router.observe(NS, PLAN) == RouteState(6, True)
    _accept(store)
    assert router.observe(NS, PLAN) == RouteState(6, True)


def test_setting_the_same_weights_writes_nothing() -> None:
    """Repeating an action is harmless: no write, no new generation, acceptance kept."""
    store = InMemoryObjects()
    router = _router(store)
    router.set_weights(NS, PLAN, 50)
    _accept(store)
    writes = store.writes
    router.set_weights(NS, PLAN, 50)
    assert store.writes == writes
    assert router.observe(NS, PLAN) == RouteState(50, True)


def test_user_rules_survive_weight_changes() -> None:
    """Only the weights of canary's backendRefs change; matches, filters and order stay."""
    store = InMemoryObjects()
    store.create(NS, _user_route())
    before = copy.deepcopy(store.objects[(NS, "podinfo")]["spec"])
    router = _router(store)
    router.set_weights(NS, PLAN, 30)
    after = store.objects[(NS, "podinfo")]["spec"]
    assert after["rules"][0]["matches"] == before["rules"][0]["matches"]
    assert after["rules"][1]["filters"] == before["rules"][1]["filters"]
    assert after["rules"][1]["backendRefs"] == [
        {"name": "podinfo-stable", "port": 9898, "weight": 70},
        {"name": "podinfo-canary", "port": 9898, "weight": 30},
    ]
    # The header rule named only the canary: it gains the stable backend at the same split.
    assert after["rules"][0]["backendRefs"] == [
        {"name": "podinfo-canary", "port": 9898, "weight": 30},
        {"name": "podinfo-stable", "port": 9898, "weight": 70},
    ]
    state = router.observe(NS, PLAN)
    assert state is not None
    assert state.canary_weight == 30


def test_other_backends_in_a_rule_are_untouched() -> None:
    """A third backend of the user's in canary's rule keeps its weight."""
    store = InMemoryObjects()
    rules = [
        {
            "backendRefs": [
                {"name": "podinfo-stable", "port": 9898, "weight": 90},
                {"name": "mirror", "port": 80, "weight": 7},
                {"name": "podinfo-canary", "port": 9898, "weight": 10},
            ]
        }
    ]
    store.create(NS, _user_route(rules=rules))
    _router(store).set_weights(NS, PLAN, 40)
    refs = store.objects[(NS, "podinfo")]["spec"]["rules"][0]["backendRefs"]
    assert [r["weight"] for r in refs] == [60, 7, 40]


def test_disagreeing_rules_report_the_highest_canary_share() -> None:
    """Rules edited apart report the highest canary percent, so a rollback waits for all."""
    rules = [
        {"backendRefs": [{"name": "podinfo-stable", "port": 9898, "weight": 1}]},
        {
            "backendRefs": [
                {"name": "podinfo-stable", "port": 9898},
                {"name": "podinfo-canary", "port": 9898},
            ]
        },
    ]
    route = _user_route(rules=rules)
    assert httproute.canary_weight(route, NS, PLAN) == 50  # unset weights are 1 each


def test_backends_elsewhere_are_not_ours() -> None:
    """Services of the same name in another namespace, or non-Service backends, are ignored."""
    rules = [
        {
            "backendRefs": [
                {"name": "podinfo-canary", "namespace": "other", "port": 9898, "weight": 5},
                {"name": "podinfo-canary", "group": "x.io", "kind": "Bucket", "weight": 5},
            ]
        }
    ]
    route = _user_route(rules=rules)
    assert httproute.our_rules(route, NS, PLAN) == []
    assert httproute.canary_weight(route, NS, PLAN) == 0
    with pytest.raises(InvalidSpec, match="no rule sending traffic to podinfo-stable"):
        httproute.weight_patch(route, NS, PLAN, 10)


def test_a_route_canary_created_gets_its_rule_back() -> None:
    """If canary's own route lost its rule, canary adds the rule again (and never removes)."""
    store = InMemoryObjects()
    router = _router(store)
    router.set_weights(NS, PLAN, 10)
    store.objects[(NS, "podinfo")]["spec"]["rules"] = [
        {"backendRefs": [{"name": "maintenance", "port": 80}]}
    ]
    router.set_weights(NS, PLAN, 10)
    rules = store.objects[(NS, "podinfo")]["spec"]["rules"]
    assert rules[0] == {"backendRefs": [{"name": "maintenance", "port": 80}]}
    assert [r["weight"] for r in rules[1]["backendRefs"]] == [90, 10]
    del store.objects[(NS, "podinfo")]["spec"]["rules"]
    router.set_weights(NS, PLAN, 10)
    assert len(store.objects[(NS, "podinfo")]["spec"]["rules"]) == 1


def test_a_route_of_another_parent_is_refused() -> None:
    """A route not attached to the apex Service and port would move no traffic: InvalidSpec."""
    for parent in (
        {"name": "podinfo", "port": 9898},  # defaults to a Gateway
        {"group": "core", "kind": "Service", "name": "podinfo", "port": 80},
        {"group": "core", "kind": "Service", "name": "other"},
    ):
        route = _user_route(parentRefs=[parent])
        with pytest.raises(InvalidSpec, match="does not attach to Service podinfo port 9898"):
            httproute.weight_patch(route, NS, PLAN, 10)
    portless = _user_route(parentRefs=[{"group": "", "kind": "Service", "name": "podinfo"}])
    ops = httproute.weight_patch(portless, NS, PLAN, 0)  # a portless parent is every port
    assert ops
    assert all(op["path"].startswith("/spec/rules/") for op in ops)


def test_duplicate_references_do_not_double_a_share() -> None:
    """A second reference to the same Service gets weight 0 so the split stays exact."""
    rules = [
        {
            "backendRefs": [
                {"name": "podinfo-stable", "port": 9898, "weight": 50},
                {"name": "podinfo-canary", "port": 9898, "weight": 50},
                {"name": "podinfo-canary", "port": 9898, "weight": 50},
            ]
        }
    ]
    store = InMemoryObjects()
    store.create(NS, _user_route(rules=rules))
    router = _router(store)
    router.set_weights(NS, PLAN, 25)
    refs = store.objects[(NS, "podinfo")]["spec"]["rules"][0]["backendRefs"]
    assert [r["weight"] for r in refs] == [75, 25, 0]
    assert router.observe(NS, PLAN) == RouteState(25, False)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({}, False),
        ({"parents": []}, False),
        ({"parents": [{"parentRef": {"group": "core", "kind": "Service", "name": "x"}}]}, False),
    ],
)
def test_no_status_for_the_apex_is_not_accepted(status: dict[str, Any], expected: bool) -> None:
    """Without a parent status for the apex Service the weights are not trusted."""
    route = _user_route()
    route["metadata"]["generation"] = 1
    route["status"] = status
    assert httproute.accepted(route, NS, PLAN) is expected


def test_only_linkerds_status_with_both_conditions_true_counts() -> None:
    """Another controller's parent status, or Accepted without ResolvedRefs, is not enough."""
    store = InMemoryObjects()
    router = _router(store)
    router.set_weights(NS, PLAN, 6)
    _accept(store, controller="example.com/gateway")
    assert router.observe(NS, PLAN) == RouteState(6, False)
    route = store.objects[(NS, "podinfo")]
    route["status"]["parents"][0]["controllerName"] = "linkerd.io/policy-controller"
    route["status"]["parents"][0]["conditions"].pop()  # ResolvedRefs
    assert router.observe(NS, PLAN) == RouteState(6, False)


@pytest.mark.parametrize(
    ("condition", "reason", "hint"),
    [
        ("Accepted", "NoMatchingParent", "the parent Service podinfo must exist in shop"),
        ("Accepted", "RouteReasonConflicted", "another route already claims Service podinfo"),
        ("ResolvedRefs", "BackendNotFound", "canary creates podinfo-stable and podinfo-canary"),
        ("ResolvedRefs", "InvalidKind", "backendRefs must be Services"),
        ("ResolvedRefs", "SomethingNew", "see the route's status.parents"),
    ],
)
def test_a_refusal_is_reported_with_linkerds_reason_and_a_hint(
    condition: str, reason: str, hint: str
) -> None:
    """Accepted=False or ResolvedRefs=False: not accepted, Linkerd's reason, a hint to fix it."""
    store = InMemoryObjects()
    router = _router(store)
    router.set_weights(NS, PLAN, 6)
    refused = {"accepted" if condition == "Accepted" else "resolved": ("False", reason)}
    _accept(store, **refused)  # type: ignore[arg-type]
    state = router.observe(NS, PLAN)
    assert state is not None
    assert (state.accepted, state.rejection_reason) == (False, reason)
    assert f"{condition}=False ({reason})" in state.rejection_message
    assert hint in state.rejection_message


def test_a_concurrent_edit_makes_the_patch_conflict() -> None:
    """The patch carries the resourceVersion it was computed from: a race raises Conflict."""

    class Racing(InMemoryObjects):
        def patch(self, namespace: str, name: str, patch: Any) -> dict[str, Any]:
            obj = self.objects[(namespace, name)]
            obj["spec"]["rules"][0]["matches"] = [{"path": {"value": "/v2"}}]
            self._stamp(obj, obj["metadata"]["generation"] + 1)
            return super().patch(namespace, name, patch)

    store = Racing()
    store.create(NS, _user_route())
    with pytest.raises(Conflict):
        _router(store).set_weights(NS, PLAN, 10)


@pytest.mark.parametrize(
    "api_version",
    ["gateway.networking.k8s.io/v1beta1", "policy.linkerd.io/v1beta3"],
)
def test_each_served_version_is_written_at_that_version(api_version: str) -> None:
    """The route is written with the plan's API version."""
    plan = make_plan(traffic={"apiVersion": api_version})
    asked: list[tuple[str, str]] = []
    store = InMemoryObjects()

    def factory(version: str, plural: str) -> InMemoryObjects:
        asked.append((version, plural))
        return store

    HTTPRouteRouter(factory).set_weights(NS, plan, 1)
    HTTPRouteRouter(factory).observe(NS, plan)
    assert asked == [(api_version, "httproutes")] * 2
    assert store.objects[(NS, "podinfo")]["apiVersion"] == api_version


def test_a_trafficsplit_plan_is_refused() -> None:
    """Handing a TrafficSplit plan to the HTTPRoute router is a configuration error."""
    plan: Plan = make_plan(traffic={"router": "TrafficSplit"})
    with pytest.raises(InvalidSpec, match="does not serve HTTPRoute"):
        _router(InMemoryObjects()).observe(NS, plan)
