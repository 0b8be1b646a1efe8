"""The controller's API client tells its metrics what each request to a real API server was,
in the API server's own terms (verb, resource, subresource, as ``apiserver_request_total``
labels them), its status code, and how long it and the client-side rate limit took.

The requests are sent by the real ``kubernetes`` client to the dev environment's real
kube-apiserver, through ``canary.adapters.kube.client.connect`` (the client ``canary run``
uses); ``ControllerMetrics`` counts them as ``/metrics`` serves them.
"""

from __future__ import annotations

import pytest
from kubernetes import client, watch
from prometheus_client.parser import text_string_to_metric_families

from canary.adapters.kube import client as kube
from canary.api.metrics import ControllerMetrics
from tests.integration.conftest import Cluster

pytestmark = pytest.mark.integration


def test_each_request_is_counted_as_the_api_server_labels_it(
    cluster: Cluster, namespace: str
) -> None:
    heard: list[tuple[kube.Request, str, float, float]] = []
    registry = ControllerMetrics()
    api = kube.connect(str(cluster.kubeconfig), limiter=kube.RateLimiter(5, 1))

    def observe(request: kube.Request, code: str, seconds: float, waited: float) -> None:
        heard.append((request, code, seconds, waited))
        registry.observe_kube_request(
            (request.verb, request.resource, request.subresource), code, seconds, waited
        )

    api.observer = observe
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    try:
        core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"))
        )
        core.read_namespaced_config_map("c", namespace)
        core.list_namespaced_config_map(namespace)
        core.patch_namespaced_config_map("c", namespace, {"data": {"k": "v"}})
        with pytest.raises(client.ApiException):
            apps.read_namespaced_deployment_status("missing", namespace)
        for _ in watch.Watch().stream(  # type: ignore[no-untyped-call]
            core.list_namespaced_config_map, namespace, timeout_seconds=5
        ):
            break  # the existing ConfigMap's ADDED event
        core.delete_namespaced_config_map("c", namespace)
    finally:
        api.close()  # type: ignore[no-untyped-call]

    assert [(r.verb, r.resource, r.subresource, code) for r, code, _, _ in heard] == [
        ("POST", "configmaps", "", "201"),
        ("GET", "configmaps", "", "200"),
        ("LIST", "configmaps", "", "200"),
        ("PATCH", "configmaps", "", "200"),
        ("GET", "deployments", "status", "404"),
        ("WATCH", "configmaps", "", "200"),
        ("DELETE", "configmaps", "", "200"),
    ]
    assert all(seconds > 0 for _, _, seconds, _ in heard)
    # A burst of 1 at 5 a second: requests sent back to back waited for their token.
    assert sum(waited > 0 for _, _, _, waited in heard) >= 1

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(registry.exposition().decode())
        for s in family.samples
    }
    status = (("resource", "deployments"), ("subresource", "status"), ("verb", "GET"))
    assert samples["canary_kube_requests_total", tuple(sorted((*status, ("code", "404"))))] == 1
    assert samples["canary_kube_request_duration_seconds_count", status] == 1
    watched = (("resource", "configmaps"), ("subresource", ""), ("verb", "WATCH"))
    assert samples["canary_kube_requests_total", tuple(sorted((*watched, ("code", "200"))))] == 1
    assert ("canary_kube_request_duration_seconds_count", watched) not in samples  # stays open
    assert samples["canary_kube_rate_limiter_wait_seconds_count", ()] == len(heard)
