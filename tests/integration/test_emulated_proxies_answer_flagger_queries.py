"""The mesh emulator, run as its own process against the local control plane, feeds the real
Prometheus so that Flagger's Linkerd queries see what a real mesh would show."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration.conftest import Cluster

pytestmark = pytest.mark.integration

SCRAPE_INTERVAL = 10.0

SUCCESS_RATE = (
    'sum(rate(response_total{{namespace="{ns}",deployment=~"{d}",classification!="failure",'
    'direction="inbound"}}[1m])) / sum(rate(response_total{{namespace="{ns}",deployment=~"{d}",'
    'direction="inbound"}}[1m])) * 100'
)
P99 = (
    'histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{{namespace="{ns}",'
    'deployment=~"{d}",direction="inbound"}}[1m])) by (le))'
)


@contextmanager
def emulator(cluster: Cluster, namespace: str, log: Path) -> Iterator[Path]:
    """Run ``python -m canary.emulator`` for one namespace; yields its targets file."""
    targets_file = f"emulator-{namespace}.json"
    with log.open("w") as err:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "canary.emulator",
                "--kubeconfig", str(cluster.kubeconfig),
                "--targets-dir", str(cluster.targets_dir),
                "--targets-file", targets_file,
                "--namespace", namespace,
                "--port", "0",
                "--policy-grpc", cluster.policy_grpc,
                "--seed", "7",
            ],
            stdout=err,
            stderr=err,
        )  # fmt: skip
        try:
            yield cluster.targets_dir / targets_file
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert not (cluster.targets_dir / targets_file).exists(), "targets withdrawn on stop"


def wait_for(what: str, condition: Callable[[], Any], seconds: float, every: float = 0.5) -> Any:
    """Poll until ``condition()`` is truthy; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(every)


def query(cluster: Cluster, promql: str) -> list[dict[str, Any]]:
    """An instant query against the dev Prometheus; the result list."""
    url = f"{cluster.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def scalar(cluster: Cluster, promql: str) -> float | None:
    """The single value of a query, or None when it has no result."""
    result = query(cluster, promql)
    return float(result[0]["value"][1]) if result else None


def deployment(name: str, replicas: int, annotations: dict[str, str]) -> client.V1Deployment:
    """A Deployment whose pods carry ``app=<name>`` and the given sim annotations."""
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels, annotations=annotations),
                spec=client.V1PodSpec(
                    containers=[
                        client.V1Container(
                            name="app",
                            image="ghcr.io/stefanprodan/podinfo:6.0.0",
                            ports=[client.V1ContainerPort(container_port=9898)],
                        )
                    ]
                ),
            ),
        ),
    )


def service(name: str, app: str, annotations: dict[str, str] | None = None) -> client.V1Service:
    """A Service on port 9898 selecting ``app``."""
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name, annotations=annotations),
        spec=client.V1ServiceSpec(
            selector={"app": app}, ports=[client.V1ServicePort(port=9898, target_port=9898)]
        ),
    )


def ready_pods(kube: client.ApiClient, namespace: str) -> int:
    """How many pods of the namespace are Ready with an IP."""
    pods = client.CoreV1Api(kube).list_namespaced_pod(namespace).items
    return sum(
        1
        for pod in pods
        if pod.status
        and pod.status.pod_ip
        and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    )


def create_app(
    kube: client.ApiClient, namespace: str, rps: int, canary: dict[str, str] | None = None
) -> None:
    """podinfo (1 pod) behind its apex Service at ``rps``; with ``canary``, also podinfo-canary
    (1 pod with those annotations) and the podinfo-stable/podinfo-canary Services."""
    apps, core = client.AppsV1Api(kube), client.CoreV1Api(kube)
    stable = {"sim.canary.dev/latency-p50-ms": "20", "sim.canary.dev/latency-p99-ms": "80"}
    if canary is None:
        stable["sim.canary.dev/error-rate"] = "0.05"
    apps.create_namespaced_deployment(namespace, deployment("podinfo", 1, stable))
    core.create_namespaced_service(
        namespace, service("podinfo", "podinfo", {"sim.canary.dev/rps": str(rps)})
    )
    expected = 1
    if canary is not None:
        apps.create_namespaced_deployment(namespace, deployment("podinfo-canary", 1, canary))
        core.create_namespaced_service(namespace, service("podinfo-stable", "podinfo"))
        core.create_namespaced_service(namespace, service("podinfo-canary", "podinfo-canary"))
        expected = 2
    wait_for("pods to be Ready", lambda: ready_pods(kube, namespace) == expected, 60)


@pytest.fixture(scope="module")
def steady(
    cluster: Cluster, kube: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A namespace where one podinfo pod at 5% errors, 20 ms median and 80 ms p99 has had 50 req/s
    for a little over a minute of Prometheus data."""
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        create_app(kube, namespace, rps=50)
        log = tmp_path_factory.mktemp("emulator") / "emulator.log"
        with emulator(cluster, namespace, log):
            first = f'request_total{{namespace="{namespace}",direction="inbound"}}'
            wait_for("the first scrape", lambda: query(cluster, first), 40)
            time.sleep(60 + SCRAPE_INTERVAL)
            yield namespace
    finally:
        core.delete_namespace(namespace)


def test_success_rate_of_a_pod_at_5_percent_errors_is_95(cluster: Cluster, steady: str) -> None:
    """Flagger's success-rate query over a minute of 50 req/s at 5% errors reads 95 ± 1."""
    rate = scalar(cluster, SUCCESS_RATE.format(ns=steady, d="podinfo"))
    assert rate is not None
    assert rate == pytest.approx(95.0, abs=1.0)


def test_p99_query_lands_in_the_bucket_of_the_true_p99(cluster: Cluster, steady: str) -> None:
    """Flagger's p99 query for an 80 ms p99 falls in the (50, 100] ms bucket."""
    p99 = scalar(cluster, P99.format(ns=steady, d="podinfo"))
    assert p99 is not None
    assert 50 < p99 <= 100


def test_emulated_targets_carry_the_linkerd_viz_labels(cluster: Cluster, steady: str) -> None:
    """The scraped series carry namespace, pod, deployment, app, pod_template_hash, control-plane
    labels, job and instance at the pod IP's admin port."""
    (series, *_) = query(cluster, f'request_total{{namespace="{steady}",direction="inbound"}}')
    labels = series["metric"]
    assert labels["deployment"] == "podinfo"
    assert labels["app"] == "podinfo"
    assert labels["job"] == "linkerd-proxy"
    assert labels["control_plane_ns"] == "linkerd"
    assert labels["workload_ns"] == steady
    assert labels["pod_template_hash"]
    assert labels["pod"].startswith(f"podinfo-{labels['pod_template_hash']}-")
    assert labels["instance"] == f"{labels['target_ip']}:4191"


def _route(router: str, canary_weight: int) -> dict[str, Any]:
    if router == "HTTPRoute":
        return {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "podinfo"},
            "spec": {
                "parentRefs": [
                    {"group": "core", "kind": "Service", "name": "podinfo", "port": 9898}
                ],
                "rules": [
                    {
                        "backendRefs": [
                            {"name": "podinfo-stable", "port": 9898, "weight": 100 - canary_weight},
                            {"name": "podinfo-canary", "port": 9898, "weight": canary_weight},
                        ]
                    }
                ],
            },
        }
    return {
        "apiVersion": "split.smi-spec.io/v1alpha2",
        "kind": "TrafficSplit",
        "metadata": {"name": "podinfo"},
        "spec": {
            "service": "podinfo",
            "backends": [
                {"service": "podinfo-stable", "weight": 10 * (100 - canary_weight)},
                {"service": "podinfo-canary", "weight": 10 * canary_weight},
            ],
        },
    }


def _samples(namespace: str) -> str:
    """The raw inbound request counters of the namespace's pods over the last 45 s."""
    return f'request_total{{namespace="{namespace}",direction="inbound"}}[45s]'


def _post_change_rates(cluster: Cluster, namespace: str, after: float) -> dict[str, float] | None:
    """Requests per second of each serving pod between its last two scrapes taken after
    ``after``; None until every pod has two such scrapes."""
    series = query(cluster, _samples(namespace))
    rates = {}
    for s in series:
        samples = [(float(t), float(v)) for t, v in s["values"] if float(t) > after]
        if len(samples) < 2:
            return None
        (t1, v1), (t2, v2) = samples[-2], samples[-1]
        rates[s["metric"]["pod"]] = (v2 - v1) / (t2 - t1)
    return rates if len(rates) == 2 else None


@pytest.mark.parametrize("router", ["HTTPRoute", "TrafficSplit"])
def test_weight_change_moves_the_canary_share_within_two_scrapes(
    cluster: Cluster, kube: client.ApiClient, namespace: str, router: str, tmp_path: Path
) -> None:
    """Routes 100/0 → 80/20: the canary serves 20 ± 3% of requests within two scrape intervals
    (an HTTPRoute once Linkerd's policy controller accepted it, a TrafficSplit through the
    ServiceProfile the smi adaptor writes)."""
    create_app(kube, namespace, rps=200, canary={"sim.canary.dev/latency-p50-ms": "20"})
    custom = client.CustomObjectsApi(kube)
    body = _route(router, 0)
    group, version = body["apiVersion"].split("/")
    plural = body["kind"].lower() + "s"
    custom.create_namespaced_custom_object(group, version, namespace, plural, body)
    with emulator(cluster, namespace, tmp_path / "emulator.log"):
        up = f'up{{namespace="{namespace}",deployment="podinfo-canary"}} == 1'
        wait_for("the canary's proxy to be scraped", lambda: query(cluster, up), 40)
        stable = f'request_total{{namespace="{namespace}",deployment="podinfo"}}'
        wait_for("stable traffic in Prometheus", lambda: query(cluster, stable), 20)
        if router == "HTTPRoute":

            def accepted() -> bool:
                route: dict[str, Any] = custom.get_namespaced_custom_object(  # type: ignore[assignment]
                    group, version, namespace, plural, "podinfo"
                )
                return any(
                    parent["controllerName"] == "linkerd.io/policy-controller"
                    and c["type"] == "Accepted"
                    and c["status"] == "True"
                    for parent in route.get("status", {}).get("parents", [])
                    for c in parent["conditions"]
                )

            wait_for("Linkerd's policy controller to accept the route", accepted, 20)
        changed = time.time()
        patch = {"spec": _route(router, 20)["spec"]}
        custom.patch_namespaced_custom_object(group, version, namespace, plural, "podinfo", patch)
        # The emulator applies a change within a tick (0.5 s) of the watch event.
        rates = wait_for(
            "two post-change scrapes of every pod",
            lambda: _post_change_rates(cluster, namespace, changed + 1.0),
            2 * SCRAPE_INTERVAL + 5,
        )
        assert sum(rates.values()) > 100, (rates, query(cluster, _samples(namespace)))
        share = 100 * sum(r for pod, r in rates.items() if "canary" in pod) / sum(rates.values())
        assert share == pytest.approx(20, abs=3), (rates, query(cluster, _samples(namespace)))
        if router == "TrafficSplit":
            # The split reached the emulator through the smi adaptor's ServiceProfile.
            profile: dict[str, Any] = custom.get_namespaced_custom_object(  # type: ignore[assignment]
                "linkerd.io", "v1alpha2", namespace, "serviceprofiles",
                f"podinfo.{namespace}.svc.cluster.local",
            )  # fmt: skip
            overrides = {
                o["authority"].split(".")[0]: str(o["weight"])
                for o in profile["spec"]["dstOverrides"]
            }
            assert overrides == {"podinfo-stable": "800", "podinfo-canary": "200"}
