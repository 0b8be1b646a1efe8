"""The dev API server serves canary's CRDs, the Gateway API HTTPRoute and the SMI TrafficSplit,
and validates objects against their schemas."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("group", "version", "plural"),
    [
        ("canary.dev", "v1alpha1", "rollouts"),
        ("canary.dev", "v1alpha1", "rolloutpolicies"),
        ("gateway.networking.k8s.io", "v1", "httproutes"),
        ("split.smi-spec.io", "v1alpha1", "trafficsplits"),
        ("split.smi-spec.io", "v1alpha2", "trafficsplits"),
    ],
)
def test_resource_is_served(
    kube: client.ApiClient, namespace: str, group: str, version: str, plural: str
) -> None:
    """The resource lists (empty) in a new namespace."""
    listed: dict[str, Any] = client.CustomObjectsApi(kube).list_namespaced_custom_object(  # type: ignore[assignment]
        group, version, namespace, plural
    )
    assert listed["items"] == []


def _create(kube: client.ApiClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    group, version = body["apiVersion"].split("/")
    plural = body["kind"].lower() + "s"
    created: dict[str, Any] = client.CustomObjectsApi(kube).create_namespaced_custom_object(  # type: ignore[assignment]
        group, version, namespace, plural, body
    )
    return created


def _message(error: client.ApiException) -> str:
    """The API server's message in a rejection's Status body."""
    return str(json.loads(str(error.body))["message"])


def test_invalid_rollout_is_rejected_with_the_schema_message(
    kube: client.ApiClient, namespace: str
) -> None:
    """A Rollout with an unknown router gets 422 naming the field and the allowed values."""
    rollout = {
        "apiVersion": "canary.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "bad"},
        "spec": {
            "targetRef": {"kind": "Deployment", "name": "podinfo"},
            "traffic": {"router": "Istio"},
        },
    }
    with pytest.raises(client.ApiException) as rejected:
        _create(kube, namespace, rollout)
    assert rejected.value.status == 422
    message = _message(rejected.value)
    assert 'spec.traffic.router: Unsupported value: "Istio"' in message
    assert '"HTTPRoute"' in message


def test_httproute_v1_with_weighted_backends_is_accepted(
    kube: client.ApiClient, namespace: str
) -> None:
    """An HTTPRoute v1 with a Service parent and two weighted backends is stored as sent."""
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "podinfo"},
        "spec": {
            "parentRefs": [{"group": "core", "kind": "Service", "name": "podinfo", "port": 9898}],
            "rules": [
                {
                    "backendRefs": [
                        {"name": "podinfo-stable", "port": 9898, "weight": 95},
                        {"name": "podinfo-canary", "port": 9898, "weight": 5},
                    ]
                }
            ],
        },
    }
    created = _create(kube, namespace, route)
    weights = [ref["weight"] for ref in created["spec"]["rules"][0]["backendRefs"]]
    assert weights == [95, 5]


def _split(version: str, weight: object) -> dict[str, Any]:
    return {
        "apiVersion": f"split.smi-spec.io/{version}",
        "kind": "TrafficSplit",
        "metadata": {"name": f"podinfo-{version}"},
        "spec": {
            "service": "podinfo",
            "backends": [
                {"service": "podinfo-stable", "weight": weight},
                {"service": "podinfo-canary", "weight": weight},
            ],
        },
    }


def test_trafficsplit_v1alpha1_takes_quantity_weights(
    kube: client.ApiClient, namespace: str
) -> None:
    """A v1alpha1 TrafficSplit accepts quantity weights such as 500m."""
    created = _create(kube, namespace, _split("v1alpha1", "500m"))
    assert created["spec"]["backends"][0]["weight"] == "500m"


def test_trafficsplit_v1alpha2_rejects_non_integer_weights(
    kube: client.ApiClient, namespace: str
) -> None:
    """A v1alpha2 TrafficSplit takes integer weights and rejects a quantity with 422."""
    assert _create(kube, namespace, _split("v1alpha2", 50))["spec"]["backends"][1]["weight"] == 50
    bad = _split("v1alpha2", "500m")
    bad["metadata"]["name"] = "bad"
    with pytest.raises(client.ApiException) as rejected:
        _create(kube, namespace, bad)
    assert rejected.value.status == 422
    assert "spec.backends[0].weight" in _message(rejected.value)
