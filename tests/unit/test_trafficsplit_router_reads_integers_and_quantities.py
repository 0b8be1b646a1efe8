"""TrafficSplit router logic on an in-memory store: both SMI versions, weight-only patches."""

from __future__ import annotations

from typing import Any

import pytest

from canary.adapters.routers import trafficsplit
from canary.adapters.routers.trafficsplit import TrafficSplitRouter
from canary.core.vocabulary import RouteState
from canary.errors import Conflict, InvalidSpec
from tests.fakes import InMemoryObjects
from tests.unit.fake_cluster import make_plan

NS = "shop"
V2 = make_plan(traffic={"router": "TrafficSplit"})
V1 = make_plan(traffic={"router": "TrafficSplit", "apiVersion": "split.smi-spec.io/v1alpha1"})


def _router(store: InMemoryObjects) -> TrafficSplitRouter:
    return TrafficSplitRouter(lambda api_version, plural: store)


def _split(*backends: dict[str, Any], service: str = "podinfo") -> dict[str, Any]:
    return {
        "metadata": {"name": "podinfo"},
        "spec": {"service": service, "backends": list(backends)},
    }


def test_creates_a_v1alpha2_split_with_integer_percents() -> None:
    """An absent split is created with integer weights and canary's label; always accepted."""
    store = InMemoryObjects()
    router = _router(store)
    assert router.observe(NS, V2) is None
    router.set_weights(NS, V2, 5)
    split = store.objects[(NS, "podinfo")]
    assert split["apiVersion"] == "split.smi-spec.io/v1alpha2"
    assert split["kind"] == "TrafficSplit"
    assert split["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "canary"}
    assert split["spec"] == {
        "service": "podinfo",
        "backends": [
            {"service": "podinfo-stable", "weight": 95},
            {"service": "podinfo-canary", "weight": 5},
        ],
    }
    assert router.observe(NS, V2) == RouteState(5, True)


def test_creates_a_v1alpha1_split_with_quantities() -> None:
    """v1alpha1 weights are written as shares of one and read back as the percent."""
    store = InMemoryObjects()
    router = _router(store)
    router.set_weights(NS, V1, 5)
    assert store.objects[(NS, "podinfo")]["spec"]["backends"] == [
        {"service": "podinfo-stable", "weight": "950m"},
        {"service": "podinfo-canary", "weight": "50m"},
    ]
    assert router.observe(NS, V1) == RouteState(5, True)
    router.set_weights(NS, V1, 100)
    assert [b["weight"] for b in store.objects[(NS, "podinfo")]["spec"]["backends"]] == ["0", "1"]
    assert router.observe(NS, V1) == RouteState(100, True)


@pytest.mark.parametrize(
    ("stable", "canary", "expected"),
    [
        ("500m", "500m", 50),
        ("1", "0", 0),
        (900, 100, 10),
        ("3", "1", 25),
        (0, 0, 0),
        ("0.75", "250m", 25),
    ],
)
def test_observe_reads_any_quantity(stable: object, canary: object, expected: int) -> None:
    """Weights written by people in any quantity form give the canary's percent."""
    split = _split(
        {"service": "podinfo-stable", "weight": stable},
        {"service": "podinfo-canary", "weight": canary},
    )
    assert trafficsplit.canary_weight(split, NS, V1) == expected


def test_an_unreadable_weight_is_a_configuration_error() -> None:
    """A weight that is no quantity is reported with the split and backend named."""
    split = _split({"service": "podinfo-canary", "weight": "lots"})
    with pytest.raises(InvalidSpec, match="TrafficSplit shop/podinfo: backend podinfo-canary"):
        trafficsplit.canary_weight(split, NS, V1)


def test_only_canary_backends_change() -> None:
    """Other backends and matches stay; a missing canary backend is added."""
    store = InMemoryObjects()
    body = _split(
        {"service": "podinfo-stable", "weight": 100},
        {"service": "podinfo-mirror", "weight": 3},
    )
    body["spec"]["matches"] = [{"kind": "HTTPRouteGroup", "name": "api"}]
    store.create(NS, body)
    router = _router(store)
    router.set_weights(NS, V2, 20)
    spec = store.objects[(NS, "podinfo")]["spec"]
    assert spec["matches"] == [{"kind": "HTTPRouteGroup", "name": "api"}]
    assert spec["backends"] == [
        {"service": "podinfo-stable", "weight": 80},
        {"service": "podinfo-mirror", "weight": 3},
        {"service": "podinfo-canary", "weight": 20},
    ]
    assert router.observe(NS, V2) == RouteState(20, True)


def test_equal_weights_in_another_form_are_not_rewritten() -> None:
    """A v1alpha1 split already at the split (as "0.95"/"0.05") is not written again."""
    store = InMemoryObjects()
    store.create(
        NS,
        _split(
            {"service": "podinfo-stable", "weight": "0.95"},
            {"service": "podinfo-canary", "weight": "0.05"},
        ),
    )
    writes = store.writes
    _router(store).set_weights(NS, V1, 5)
    assert store.writes == writes


def test_duplicate_backends_do_not_double_a_share() -> None:
    """A second entry for the same Service gets weight 0."""
    store = InMemoryObjects()
    store.create(
        NS,
        _split(
            {"service": "podinfo-canary", "weight": 1},
            {"service": "podinfo-canary", "weight": 1},
            {"service": "podinfo-stable", "weight": 1},
        ),
    )
    router = _router(store)
    router.set_weights(NS, V2, 10)
    assert [b["weight"] for b in store.objects[(NS, "podinfo")]["spec"]["backends"]] == [10, 0, 90]
    assert router.observe(NS, V2) == RouteState(10, True)


def test_a_split_of_another_service_is_refused() -> None:
    """A split with another apex would move no traffic for this rollout: InvalidSpec."""
    store = InMemoryObjects()
    store.create(NS, _split({"service": "podinfo-stable", "weight": 1}, service="web"))
    with pytest.raises(InvalidSpec, match="splits Service web, not podinfo"):
        _router(store).set_weights(NS, V2, 10)


def test_a_concurrent_edit_makes_the_patch_conflict() -> None:
    """The patch carries the resourceVersion it was computed from: a race raises Conflict."""

    class Racing(InMemoryObjects):
        def patch(self, namespace: str, name: str, patch: Any) -> dict[str, Any]:
            obj = self.objects[(namespace, name)]
            obj["spec"]["backends"].append({"service": "x", "weight": 1})
            self._stamp(obj, obj["metadata"]["generation"] + 1)
            return super().patch(namespace, name, patch)

    store = Racing()
    store.create(NS, _split({"service": "podinfo-stable", "weight": 1}))
    with pytest.raises(Conflict):
        _router(store).set_weights(NS, V2, 10)


def test_an_httproute_plan_is_refused() -> None:
    """Handing an HTTPRoute plan to the TrafficSplit router is a configuration error."""
    with pytest.raises(InvalidSpec, match="does not serve TrafficSplit"):
        _router(InMemoryObjects()).set_weights(NS, make_plan(), 10)
