"""Linkerd's own admission webhook, served by the real policy controller, stands between every
writer and the API server: it refuses routes and policy objects Linkerd could not use, with
Linkerd's reason, and lets the routes the router writes through."""

from __future__ import annotations

import json
import time
from functools import partial
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from canary.adapters.kube.objects import CustomObjects
from canary.adapters.routers.httproute import HTTPRouteRouter
from tests.integration.test_routers_keep_the_router_contract import create_services, set_weights
from tests.unit.fake_cluster import make_plan

pytestmark = pytest.mark.integration

GATEWAY = ("gateway.networking.k8s.io", "v1", "httproutes")
NETWORK_AUTHN = ("policy.linkerd.io", "v1alpha1", "networkauthentications")
DENIED = 'admission webhook "linkerd-policy-validator.linkerd.io" denied the request: '
PLAN = make_plan()


def _route(annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "timed", "annotations": annotations},
        "spec": {
            "parentRefs": [{"group": "core", "kind": "Service", "name": "podinfo", "port": 9898}],
            "rules": [{"backendRefs": [{"name": "podinfo-stable", "port": 9898}]}],
        },
    }


def _narrowed_network() -> dict[str, Any]:
    # The exception lies outside the network it narrows: valid to the CRD schema, not to Linkerd.
    return {
        "apiVersion": "policy.linkerd.io/v1alpha1",
        "kind": "NetworkAuthentication",
        "metadata": {"name": "office"},
        "spec": {"networks": [{"cidr": "10.0.0.0/16", "except": ["192.168.0.0/24"]}]},
    }


def _create(
    kube: client.ApiClient, kind: tuple[str, str, str], namespace: str, body: Any, dry: bool
) -> str | None:
    """The API server's refusal message (a 400 Bad Request), or None when it accepted the
    object; any other error is raised."""
    group, version, plural = kind
    try:
        client.CustomObjectsApi(kube).create_namespaced_custom_object(
            group, version, namespace, plural, body, dry_run="All" if dry else None
        )
    except ApiException as error:
        if error.status != 400:
            raise
        return str(json.loads(error.body or "{}").get("message"))
    return None


@pytest.fixture
def webhook(kube: client.ApiClient, namespace: str) -> str:
    """The namespace, once the API server calls the webhook (it takes up a new registration
    shortly after `up` has made it)."""
    deadline = time.monotonic() + 10
    while _create(kube, NETWORK_AUTHN, namespace, _narrowed_network(), dry=True) is None:
        assert time.monotonic() < deadline, "the API server never called Linkerd's webhook"
        time.sleep(0.2)
    return namespace


def test_a_route_with_a_timeout_linkerd_cannot_read_is_refused(
    kube: client.ApiClient, webhook: str
) -> None:
    """An HTTPRoute on a Service whose Linkerd timeout annotation is not a duration is refused
    with Linkerd's reason and not stored; a readable one is stored."""
    create_services(kube, webhook, PLAN)
    unreadable = _route({"timeout.linkerd.io/request": "soon"})
    refusal = _create(kube, GATEWAY, webhook, unreadable, dry=False)
    assert refusal is not None
    assert refusal.startswith(DENIED)
    assert "soon" in refusal
    assert CustomObjects(kube, "gateway.networking.k8s.io/v1", "httproutes").list(webhook) == []
    readable = _route({"timeout.linkerd.io/request": "5s"})
    assert _create(kube, GATEWAY, webhook, readable, dry=False) is None


def test_a_network_authentication_linkerd_rejects_is_refused(
    kube: client.ApiClient, webhook: str
) -> None:
    """A policy.linkerd.io NetworkAuthentication whose exception lies outside its network is
    refused with Linkerd's reason, though the CRD schema allows it."""
    refusal = _create(kube, NETWORK_AUTHN, webhook, _narrowed_network(), dry=False)
    assert refusal == DENIED + "cidr '10.0.0.0/16' does not include exception '192.168.0.0/24'"


def test_routes_the_router_writes_pass_the_webhook(kube: client.ApiClient, webhook: str) -> None:
    """The route the router creates, and each weight patch after, is admitted by Linkerd."""
    create_services(kube, webhook, PLAN)
    router = HTTPRouteRouter(partial(CustomObjects, kube))
    for weight in (10, 60, 100):
        set_weights(router, webhook, PLAN, weight)
        state = router.observe(webhook, PLAN)
        assert state is not None
        assert state.canary_weight == weight
