"""``request_of`` names a request to the API server by its verb, resource and subresource as
``apiserver_request_total`` does: a GET of a collection is a LIST, or a WATCH with
``watch=true``; the namespace and the name are not part of the resource; discovery is a GET of
none. The scale harness reads the controller's counts of them back from its /metrics."""

from __future__ import annotations

import pytest

from bench import scale
from canary.adapters.kube.client import Request, request_of
from canary.api.metrics import ControllerMetrics

HOST = "https://127.0.0.1:6443"


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/api/v1/namespaces/a/pods/p", Request("GET", "pods")),
        ("GET", "/api/v1/namespaces/a/pods", Request("LIST", "pods")),
        ("GET", "/api/v1/pods?watch=True&resourceVersion=5", Request("WATCH", "pods")),
        ("GET", "/api/v1/namespaces/a/pods?watch=false", Request("LIST", "pods")),
        ("GET", "/api/v1/namespaces/a", Request("GET", "namespaces")),
        ("GET", "/api/v1/namespaces", Request("LIST", "namespaces")),
        ("DELETE", "/api/v1/namespaces/namespaces", Request("DELETE", "namespaces")),
        (
            "put",
            "/apis/canary.dev/v1alpha1/namespaces/a/rollouts/r/status",
            Request("PUT", "rollouts", "status"),
        ),
        (
            "PATCH",
            "/apis/apps/v1/namespaces/a/deployments/d/scale",
            Request("PATCH", "deployments", "scale"),
        ),
        (
            "POST",
            "/apis/gateway.networking.k8s.io/v1/namespaces/a/httproutes",
            Request("POST", "httproutes"),
        ),
        ("GET", "/apis/coordination.k8s.io/v1/leases", Request("LIST", "leases")),
        ("GET", "/apis/canary.dev/v1alpha1", Request("GET", "")),
        ("GET", "/apis", Request("GET", "")),
        ("GET", "/version", Request("GET", "")),
    ],
)
def test_a_request_is_named_by_verb_resource_and_subresource(
    method: str, path: str, expected: Request
) -> None:
    assert request_of(method, HOST + path) == expected


def test_the_scale_harness_reads_the_rounds_requests_from_two_scrapes() -> None:
    """Between two scrapes of the registry: each (verb, resource) with its count and seconds,
    watches left out, and the rate limit's wait; the account lists the busiest first."""
    metrics = ControllerMetrics()
    put = ("PUT", "rollouts", "status")
    metrics.observe_kube_request(put, "200", 5.0, 0.0)  # before the round: not counted
    before = scale.metric_samples(metrics.exposition().decode())
    for seconds in (0.2, 0.4, 0.6):
        metrics.observe_kube_request(put, "200", seconds, 0.1)
    metrics.observe_kube_request(("PATCH", "httproutes", ""), "409", 0.5, 0.0)
    metrics.observe_kube_request(("WATCH", "deployments", ""), "200", 30.0, 0.0)
    after = scale.metric_samples(metrics.exposition().decode())
    found = scale.kube_requests(before, after)
    assert found.keys() == {"PUT rollouts/status", "PATCH httproutes"}
    assert found["PUT rollouts/status"] == pytest.approx((3, 1.2))
    assert found["PATCH httproutes"] == pytest.approx((1, 0.5))
    report = scale.Report(n=1, seconds=1.0, request_times=found, throttled=(5, 0.3))
    assert scale.requests_account(report) == (
        "PUT rollouts/status 3 at 0.400 s; PATCH httproutes 1 at 0.500 s; "
        "the client-side rate limit held a request 0.060 s on average"
    )
