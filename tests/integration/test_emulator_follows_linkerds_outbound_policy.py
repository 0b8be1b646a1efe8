"""The emulator splits an HTTPRoute's load by what Linkerd's real policy controller pushes on
``OutboundPolicies/Watch``, as a client proxy would, and follows the answer when the route
changes; ``OutboundWatches`` itself against the real controller: first answers, pushed changes,
Services no longer followed, and a clean close."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from canary.adapters.outbound.client import OutboundPolicies, OutboundWatches
from tests.integration.conftest import Cluster
from tests.integration.test_emulated_proxies_answer_flagger_queries import (
    create_app,
    emulator,
    wait_for,
)

pytestmark = pytest.mark.integration


def _route(stable: int, canary: int) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "podinfo"},
        "spec": {
            "parentRefs": [{"group": "core", "kind": "Service", "name": "podinfo", "port": 9898}],
            "rules": [
                {
                    "backendRefs": [
                        {"name": "podinfo-stable", "port": 9898, "weight": stable},
                        {"name": "podinfo-canary", "port": 9898, "weight": canary},
                    ]
                }
            ],
        },
    }


def _counts(targets_file: Path) -> dict[str, int]:
    """Inbound requests served so far per pod, read from the emulator's own /metrics."""
    counts = {}
    for group in json.loads(targets_file.read_text()):
        labels = group["labels"]
        if labels.get("deployment", "").endswith("-loadgen"):
            continue
        url = f"http://{group['targets'][0]}{labels['__metrics_path__']}"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        counts[labels["deployment"]] = sum(
            int(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("request_total{")
        )
    return counts


def _canary_share(targets_file: Path, seconds: float = 4.0) -> float:
    """The canary's percent of the requests served over the next ``seconds``."""
    before = _counts(targets_file)
    time.sleep(seconds)
    after = _counts(targets_file)
    delta = {name: after[name] - before.get(name, 0) for name in after}
    total = sum(delta.values())
    assert total > 300, delta
    return 100 * delta.get("podinfo-canary", 0) / total


def test_the_split_follows_the_policy_controllers_answer(
    cluster: Cluster, kube: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """Route 100/0 then 70/30: each time the emulator's canary share is what
    OutboundPolicies/Get hands a client proxy, once the controller serves the change (the
    emulator learns it from its Watch stream)."""
    assert cluster.policy_grpc, "the dev environment names no policy controller gRPC address"
    create_app(kube, namespace, rps=200, canary={"sim.canary.dev/latency-p50-ms": "20"})
    custom = client.CustomObjectsApi(kube)
    args = ("gateway.networking.k8s.io", "v1", namespace, "httproutes")
    custom.create_namespaced_custom_object(*args, _route(100, 0))
    policies = OutboundPolicies(cluster.policy_grpc)

    def answer() -> dict[str, float]:
        found = policies.backends(namespace, "podinfo", 9898, "podinfo-loadgen")
        return dict(found)

    try:
        wait_for(
            "the policy controller to serve the route",
            lambda: answer() == {"podinfo-stable": 100.0, "podinfo-canary": 0.0},
            20,
        )
        with emulator(cluster, namespace, tmp_path / "emulator.log") as targets_file:
            wait_for("the emulator's targets", targets_file.exists, 20)
            assert _canary_share(targets_file) == 0
            custom.patch_namespaced_custom_object(*args, "podinfo", _route(70, 30))
            wait_for(
                "the policy controller to serve 70/30",
                lambda: answer() == {"podinfo-stable": 70.0, "podinfo-canary": 30.0},
                20,
            )
            time.sleep(1.5)  # the push reaches the emulator's next loop turn (0.5 s)
            assert _canary_share(targets_file) == pytest.approx(30, abs=6)
    finally:
        policies.close()


def test_watches_deliver_first_answers_and_pushed_changes(
    cluster: Cluster, kube: client.ApiClient, namespace: str
) -> None:
    """Following the routed Service and one without a route: both have an answer when
    ``follow`` returns (the route's split; the plain Service to itself); a route change is
    pushed (``changed`` set, the new split read) without asking again; a Service no longer
    followed loses its answer; ``close`` ends the loop's thread."""
    assert cluster.policy_grpc, "the dev environment names no policy controller gRPC address"
    create_app(kube, namespace, rps=0, canary={})
    core = client.CoreV1Api(kube)
    core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="plain"),
            spec=client.V1ServiceSpec(
                selector={"app": "plain"}, ports=[client.V1ServicePort(port=8080)]
            ),
        ),
    )
    custom = client.CustomObjectsApi(kube)
    args = ("gateway.networking.k8s.io", "v1", namespace, "httproutes")
    custom.create_namespaced_custom_object(*args, _route(90, 10))
    policies = OutboundPolicies(cluster.policy_grpc)
    wait_for(
        "the policy controller to serve the route",
        lambda: (
            dict(policies.backends(namespace, "podinfo", 9898, "podinfo-loadgen"))
            == {"podinfo-stable": 90.0, "podinfo-canary": 10.0}
        ),
        20,
    )
    policies.close()
    watches = OutboundWatches(cluster.policy_grpc)
    try:
        watches.follow(
            {
                (namespace, "podinfo"): (9898, "podinfo-loadgen"),
                (namespace, "plain"): (8080, "plain-loadgen"),
            }
        )
        assert watches.answers() == {
            (namespace, "podinfo"): (("podinfo-stable", 90.0), ("podinfo-canary", 10.0)),
            (namespace, "plain"): (("plain", 1.0),),
        }
        watches.changed.clear()
        custom.patch_namespaced_custom_object(*args, "podinfo", _route(40, 60))
        assert watches.changed.wait(20), "no answer pushed after the route changed"
        wait_for(
            "the pushed 40/60",
            lambda: (
                watches.answers()[(namespace, "podinfo")]
                == (("podinfo-stable", 40.0), ("podinfo-canary", 60.0))
            ),
            20,
        )
        watches.follow({(namespace, "plain"): (8080, "plain-loadgen")})
        assert watches.answers() == {(namespace, "plain"): (("plain", 1.0),)}
    finally:
        watches.close()
    assert not any(t.name == "outbound-watches" for t in threading.enumerate())
