"""Linkerd's own admission webhook, served by the real policy controller, stands between every
writer and the API server: it refuses routes and policy objects Linkerd could not use, with
Linkerd's reason, and lets the routes the router writes through. When it refuses canary's weight
change of a tenant's route, the release holds traffic where it is and says why on the Rollout."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from canary.adapters.kube.events import KubeEventRecorder
from canary.adapters.kube.objects import CustomObjects
from canary.adapters.kube.rollouts import KubeRolloutStore
from canary.adapters.kube.workloads import KubeWorkloads
from canary.adapters.routers.httproute import HTTPRouteRouter
from canary.errors import WriteRefused
from canary.ports import Ref
from canary.runtime.clock import SystemClock
from canary.runtime.reconciler import ROUTE_WRITABLE, Reconciler, Result
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


OPT_OUT = "config.linkerd.io/admission-webhooks"  # Linkerd's webhook skips such a namespace


def _label(kube: client.ApiClient, namespace: str, value: str | None) -> None:
    patch = {"metadata": {"labels": {OPT_OUT: value}}}
    client.CoreV1Api(kube).patch_namespace(namespace, patch)


@contextmanager
def _unchecked(kube: client.ApiClient, namespace: str) -> Iterator[None]:
    """Writes in ``namespace`` skip Linkerd's webhook meanwhile (as a route written before
    Linkerd was installed, or while its webhook was down, did); it checks them again after.
    The API server matches a webhook's namespaceSelector against its own cache of namespaces,
    so a label change takes effect a moment after the write: both ways are waited for."""
    _label(kube, namespace, "disabled")
    deadline = time.monotonic() + 10
    while _create(kube, NETWORK_AUTHN, namespace, _narrowed_network(), dry=True) is not None:
        assert time.monotonic() < deadline, "Linkerd's webhook never skipped the namespace"
        time.sleep(0.2)
    try:
        yield
    finally:
        _label(kube, namespace, None)
    deadline = time.monotonic() + 10
    while _create(kube, NETWORK_AUTHN, namespace, _narrowed_network(), dry=True) is None:
        assert time.monotonic() < deadline, "Linkerd's webhook never checked the namespace again"
        time.sleep(0.2)


def _tenant_route(service: str) -> dict[str, Any]:
    """A route of the tenant's that steers canary's Services (all to stable), with a timeout
    annotation Linkerd cannot read."""
    route = _route({"timeout.linkerd.io/request": "soon"})
    route["metadata"]["name"] = service
    route["spec"]["parentRefs"][0]["name"] = service
    route["spec"]["rules"] = [
        {
            "backendRefs": [
                {"name": f"{service}-stable", "port": 9898, "weight": 100},
                {"name": f"{service}-canary", "port": 9898, "weight": 0},
            ]
        }
    ]
    return route


def _app(kube: client.ApiClient, namespace: str, name: str) -> None:
    labels = {"app": name}
    apps: Any = client.AppsV1Api(kube)
    core: Any = client.CoreV1Api(kube)
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": name},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": name, "image": f"{name}:1"}]},
                },
            },
        },
    )
    core.create_namespaced_service(
        namespace,
        {"metadata": {"name": name}, "spec": {"selector": labels, "ports": [{"port": 9898}]}},
    )


def _until(what: str, check: Callable[[], bool], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_the_router_reports_a_refused_weight_change_with_linkerds_reason(
    kube: client.ApiClient, webhook: str
) -> None:
    """A weight patch on a stored route Linkerd's webhook now refuses raises WriteRefused
    (not a retry as if the API server were down), quoting Linkerd, and changes nothing."""
    plan = make_plan(service={"name": "web", "port": 9898})
    create_services(kube, webhook, plan)
    with _unchecked(kube, webhook):
        assert _create(kube, GATEWAY, webhook, _tenant_route("web"), dry=False) is None
    router = HTTPRouteRouter(partial(CustomObjects, kube))
    with pytest.raises(WriteRefused) as refused:
        router.set_weights(webhook, plan, 20)
    assert DENIED in str(refused.value)
    assert "soon" in str(refused.value)
    state = router.observe(webhook, plan)
    assert state is not None
    assert state.canary_weight == 0


def test_a_refused_route_holds_the_release_and_is_reported_on_the_rollout(
    kube: client.ApiClient, webhook: str
) -> None:
    """The reconciler (real store, workloads, router and Events) goes for its first step, whose
    weight Linkerd's webhook refuses: the route keeps all traffic on stable, the release records
    no step, the Rollout shows
    RouteWritable=False with Linkerd's reason and a Warning Event RouteRefused; once the
    tenant fixes the route, the next reconcile sets the weight and the condition turns True."""
    _app(kube, webhook, "web")
    with _unchecked(kube, webhook):
        assert _create(kube, GATEWAY, webhook, _tenant_route("web"), dry=False) is None
    client.CustomObjectsApi(kube).create_namespaced_custom_object(
        "canary.dev",
        "v1alpha1",
        webhook,
        "rollouts",
        {
            "apiVersion": "canary.dev/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "web-2"},
            "spec": {
                "targetRef": {"name": "web"},
                "service": {"name": "web", "port": 9898},
                "release": {"images": {"web": "web:2"}},
                "steps": [{"setWeight": 20}],
            },
        },
    )
    store = KubeRolloutStore(kube)
    objects = partial(CustomObjects, kube)
    router = HTTPRouteRouter(objects)
    reconciler = Reconciler(
        store,
        KubeWorkloads(kube),
        {"HTTPRoute": router},
        KubeEventRecorder(kube),
        SystemClock(),
    )
    ref = Ref(webhook, "web-2")
    plan = make_plan(service={"name": "web", "port": 9898})
    results: list[Result] = []

    def writable() -> str:
        results.append(reconciler.reconcile(ref))
        rollout = store.get(ref)
        assert rollout is not None
        found = [c for c in rollout.status.conditions if c.type == ROUTE_WRITABLE]
        return found[0].status if found else ""

    _until("the refusal on the Rollout", lambda: writable() == "False")
    rollout = store.get(ref)
    assert rollout is not None
    (condition,) = [c for c in rollout.status.conditions if c.type == ROUTE_WRITABLE]
    assert DENIED in condition.message
    assert "to 20% canary" in condition.message
    assert "traffic stays at 0%" in condition.message
    assert (rollout.status.phase, rollout.status.steps) == ("Initializing", [])  # no step taken
    assert results[-1].error == "RouteRefused"
    events = client.CoreV1Api(kube).list_namespaced_event(webhook).items
    assert [e.type for e in events if e.reason == "RouteRefused"] == ["Warning"]
    state = router.observe(webhook, plan)
    assert state is not None
    assert state.canary_weight == 0
    fixed = {"metadata": {"annotations": {"timeout.linkerd.io/request": "5s"}}}
    objects("gateway.networking.k8s.io/v1", "httproutes").patch(webhook, "web", fixed)
    _until("the weight after the fix", lambda: writable() == "True")
    state = router.observe(webhook, plan)
    assert state is not None
    assert state.canary_weight == 20
