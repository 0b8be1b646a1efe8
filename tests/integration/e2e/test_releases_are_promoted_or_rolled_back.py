"""A real canary release on the local cluster with Linkerd's real policy controller and smi
adaptor: healthy releases are promoted, error and latency regressions rolled back without
touching stable. The healthy/faulty pair runs once per router and API version (HTTPRoute gateway
v1, v1beta1 and policy.linkerd.io v1beta3; TrafficSplit v1alpha2 and v1alpha1, whose weights are
quantities such as 950m/50m); the latency release once per router.

Every release of the matrix runs at the same time, each in its own namespace: the module's
fixture installs podinfo and creates all the Rollouts before the first test, with one emulator
and one controller per router and version (the pair shares them, so each outcome counter of that
controller counts its own release), and each test then waits for its release and checks it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.integration.conftest import Cluster
from tests.integration.e2e.conftest import (
    Process,
    Release,
    install_podinfo,
    start_processes,
    stop_all,
)

pytestmark = pytest.mark.integration
ROUTERS = ["HTTPRoute", "TrafficSplit"]
ROUTES = [
    pytest.param("HTTPRoute", "gateway.networking.k8s.io/v1", id="httproute-gateway-v1"),
    pytest.param("HTTPRoute", "gateway.networking.k8s.io/v1beta1", id="httproute-gateway-v1beta1"),
    pytest.param("HTTPRoute", "policy.linkerd.io/v1beta3", id="httproute-linkerd-v1beta3"),
    pytest.param("TrafficSplit", "split.smi-spec.io/v1alpha2", id="trafficsplit-v1alpha2"),
    pytest.param("TrafficSplit", "split.smi-spec.io/v1alpha1", id="trafficsplit-v1alpha1"),
]
HEALTHY, FAULTY, SLOW = "6.1.0", "6.2.0", "6.3.0"
RELEASES: dict[str, dict[str, str] | None] = {
    HEALTHY: None,
    FAULTY: {"sim.canary.dev/error-rate": "0.2"},
    SLOW: {"sim.canary.dev/latency-p50-ms": "300", "sim.canary.dev/latency-p99-ms": "2000"},
}
Key = tuple[str, str, str]  # (router, api version, release)


@pytest.fixture(scope="module")
def matrix(
    cluster: Cluster,
    kube: client.ApiClient,
    controller_kubeconfig: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[Key, Release]]:
    """Every release of the matrix started at once, by (router, api version, release)."""
    groups: list[tuple[str, str, list[str]]] = [
        (str(p.values[0]), str(p.values[1]), [HEALTHY, FAULTY]) for p in ROUTES
    ]
    groups += [(router, "", [SLOW]) for router in ROUTERS]
    core = client.CoreV1Api(kube)
    namespaces: list[str] = []
    started: list[Process] = []
    releases: dict[Key, Release] = {}
    try:
        for router, api_version, names in groups:
            group = [f"test-{uuid.uuid4().hex[:8]}" for _ in names]
            for namespace in group:
                core.create_namespace(
                    client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
                )
                namespaces.append(namespace)
                install_podinfo(kube, namespace, router, 100, api_version)
            emulator, controller = start_processes(
                cluster, controller_kubeconfig, group, tmp_path_factory.mktemp("matrix")
            )
            started += [emulator, controller]
            for name, namespace in zip(names, group, strict=True):
                env = Release(namespace, kube, controller, emulator, router, api_version)
                env.create(name, RELEASES[name])
                releases[router, api_version, name] = env
        yield releases
    finally:
        stop_all(started)
        for namespace in namespaces:
            core.delete_namespace(namespace)


def assert_all_on_stable(env: Release) -> None:
    """The route sends nothing to the canary; for a TrafficSplit, so does the ServiceProfile
    the smi adaptor derived from it (what Linkerd's proxies follow)."""
    assert env.canary_weight() == 0
    if env.router == "TrafficSplit":
        # The adaptor follows the split's watch event; give it a moment.
        deadline = time.monotonic() + 10
        overrides = env.profile_overrides()
        while overrides.get("podinfo-canary") != 0 and time.monotonic() < deadline:
            time.sleep(0.5)
            overrides = env.profile_overrides()
        assert overrides["podinfo-canary"] == 0, overrides
        assert overrides["podinfo-stable"] > 0, overrides


@pytest.mark.parametrize(("router", "api_version"), ROUTES)
def test_healthy_release_is_promoted(
    matrix: dict[Key, Release], router: str, api_version: str
) -> None:
    """Succeeded; the stable Deployment carries the new image; 100% stable; canary at zero."""
    env = matrix[router, api_version, HEALTHY]
    done = env.wait(HEALTHY, {"Succeeded", "RolledBack", "Failed"})
    assert done["status"]["phase"] == "Succeeded", done["status"]
    stable = env.deployment("podinfo")
    assert stable.spec.template.spec.containers[0].image == "ghcr.io/stefanprodan/podinfo:6.1.0"
    assert_all_on_stable(env)
    assert env.deployment("podinfo-canary").spec.replicas == 0
    steps = done["status"]["steps"]
    assert [s["verdict"] for s in steps] == ["Passed", "Passed", "Passed"]
    assert all(s["canary"]["requests"] >= 60 for s in steps)
    metrics = env.controller_metrics()
    promoted = frozenset({"result": "promoted", "reason": "analysis_passed"}.items())
    assert metrics["canary_rollout_outcomes_total", promoted] == 1
    assert (
        metrics["canary_release_duration_seconds_count", frozenset({("result", "promoted")})] == 1
    )
    # The controller also serves the faulty release of the pair: only this namespace counts.
    assert not any(
        name == "canary_rollout_canary_weight_ratio" and ("namespace", env.namespace) in labels
        for name, labels in metrics
    )


@pytest.mark.parametrize(("router", "api_version"), ROUTES)
def test_error_regression_is_rolled_back(
    matrix: dict[Key, Release], router: str, api_version: str
) -> None:
    """A canary failing 20% of requests: RolledBack, stable unchanged, 100% stable."""
    env = matrix[router, api_version, FAULTY]
    done = env.wait(FAULTY, {"Succeeded", "RolledBack", "Failed"})
    assert done["status"]["phase"] == "RolledBack", done["status"]
    stable = env.deployment("podinfo")
    assert stable.spec.template.spec.containers[0].image == "ghcr.io/stefanprodan/podinfo:6.0.0"
    assert stable.metadata.generation == 1
    assert_all_on_stable(env)
    assert env.deployment("podinfo-canary").spec.replicas == 0
    failed = done["status"]["steps"][-1]
    assert failed["verdict"] == "Failed"
    assert failed["canary"]["failures"] > 0
    rolled_back = frozenset({"result": "rolled_back", "reason": "analysis"}.items())
    assert env.controller_metrics()["canary_rollout_outcomes_total", rolled_back] == 1


@pytest.mark.parametrize("router", ROUTERS)
def test_latency_regression_is_rolled_back(matrix: dict[Key, Release], router: str) -> None:
    """A canary whose p99 is far above the policy's 400 ms ceiling is rolled back."""
    env = matrix[router, "", SLOW]
    done = env.wait(SLOW, {"Succeeded", "RolledBack", "Failed"})
    assert done["status"]["phase"] == "RolledBack", done["status"]
    assert env.deployment("podinfo").metadata.generation == 1
    assert env.canary_weight() == 0
