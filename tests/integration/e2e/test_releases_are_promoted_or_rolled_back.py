"""A real canary release on the local cluster with Linkerd's real policy controller and smi
adaptor: healthy releases are promoted, error and latency regressions rolled back without
touching stable. The healthy/faulty pair runs once per router and API version (HTTPRoute gateway
v1, v1beta1 and policy.linkerd.io v1beta3; TrafficSplit v1alpha2 and v1alpha1, whose weights are
quantities such as 950m/50m); the latency release once per router; a healthy release failed by
its custom metric alone on HTTPRoute. emojivoto (examples/emojivoto): a `web` release that fails
the doughnut vote as often as stable (~8% of its HTTP requests) is promoted, and a `voting`
release that also fails a second emoji's votes (gRPC UNKNOWN: ~30% of its calls, stable ~16%) is
rolled back.

Every release of the matrix runs at the same time, each in its own namespace: the module's
fixture installs podinfo and creates all the Rollouts before the first test, with one emulator
and one controller per router and version (the pair shares them, so each outcome counter of that
controller counts its own release), and each test then waits for its release and checks it.

False failure of the web promotion, computed: the example's web policy sets
``falseRollbackRate: 0.0005``, the bound (Ville's inequality, docs/analysis.md) on rolling back a
canary that fails no more often than stable and meets its floor; the canary's and stable's pods
behave the same and their true success rate (92%) is far above the 85% floor, so the chance that
this test fails by a false rollback is at most 0.05% (its count of failed canary requests
adds less than 1e-10, below).

False failure of the voting rollback (a promotion of the 1.9× canary), computed: the example's
voting policy asks for ``detect: {errorRatio: 1.8, power: 0.999}``, so its 50% step holds until
a canary failing 1.8 times as often as stable would be caught with probability 0.999 (the
normal approximation of docs/analysis.md, "Power on request"): a miss rate of at most 0.1% for
this canary, which fails 1.9 times as often. The twin, running the real controller on this
release's traffic (stable 16%, canary 30% failed, 50 req/s, steps 20/50/100) for seeds 0–9,999,
rolled back all 10,000 (at most 0.03% missed, 95% confidence). Without ``detect`` it promoted 15
of the first 300 (5%): what CI met once, on 2026-12-01.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.integration.conftest import Cluster
from tests.integration.e2e.conftest import (
    REPO,
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
HEALTHY, FAULTY, SLOW, CUSTOM = "6.1.0", "6.2.0", "6.3.0", "6.4.0"
RELEASES: dict[str, dict[str, str] | None] = {
    HEALTHY: None,
    FAULTY: {"sim.canary.dev/error-rate": "0.2"},
    SLOW: {"sim.canary.dev/latency-p50-ms": "300", "sim.canary.dev/latency-p99-ms": "2000"},
    CUSTOM: None,
}
CUSTOM_METRIC = {
    "name": "canary-requests",
    "query": 'sum(response_total{namespace="{{namespace}}", deployment="{{canary}}", '
    'direction="inbound"})',
    "max": 5,
}
"""A healthy canary's own request count, bounded at 5: out of bounds by the time its first
step has its minimum requests, so only the custom metric can roll it back."""
SPECS: dict[str, dict[str, object]] = {CUSTOM: {"analysis": {"metrics": [CUSTOM_METRIC]}}}
Key = tuple[str, str, str]  # (router, api version, release)
EMOJIVOTO: Key = ("HTTPRoute", "", "emojivoto")
EXAMPLE = REPO / "examples" / "emojivoto"
DONE = {"Succeeded", "RolledBack", "Failed"}


def kubectl_apply(cluster: Cluster, namespace: str, path: Path) -> None:
    """`kubectl apply -n` as the dev admin, failing with kubectl's own words."""
    done = subprocess.run(
        [str(cluster.kubectl), "apply", "-n", namespace, "-f", str(path)],
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def meshed_namespace(name: str) -> client.V1Namespace:
    """A namespace whose pods Linkerd's proxy injector meshes (on kind; the emulator meshes
    every pod anyway)."""
    meta = client.V1ObjectMeta(name=name, annotations={"linkerd.io/inject": "enabled"})
    return client.V1Namespace(metadata=meta)


@pytest.fixture(scope="module")
def matrix(
    cluster: Cluster,
    kube: client.ApiClient,
    controller_kubeconfig: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[Key, Release]]:
    """Every release of the matrix started at once, by (router, api version, release), and
    emojivoto's two releases in a namespace of their own (under :data:`EMOJIVOTO`)."""
    groups: list[tuple[str, str, list[str]]] = [
        (str(p.values[0]), str(p.values[1]), [HEALTHY, FAULTY]) for p in ROUTES
    ]
    groups += [
        (router, "", [SLOW, CUSTOM] if router == "HTTPRoute" else [SLOW]) for router in ROUTERS
    ]
    core = client.CoreV1Api(kube)
    namespaces: list[str] = []
    started: list[Process] = []
    releases: dict[Key, Release] = {}
    try:
        namespace = f"emojivoto-{uuid.uuid4().hex[:8]}"
        core.create_namespace(meshed_namespace(namespace))
        namespaces.append(namespace)
        for manifest in ("emojivoto.yaml", "policies.yaml"):
            kubectl_apply(cluster, namespace, EXAMPLE / manifest)
        emulator, controller = start_processes(
            cluster, controller_kubeconfig, [namespace], tmp_path_factory.mktemp("emojivoto")
        )
        started += [emulator, controller]
        for manifest in ("release-web.yaml", "release-voting-faulty.yaml"):
            kubectl_apply(cluster, namespace, EXAMPLE / manifest)
        releases[EMOJIVOTO] = Release(namespace, kube, controller, emulator, "HTTPRoute")
        for router, api_version, names in groups:
            group = [f"test-{uuid.uuid4().hex[:8]}" for _ in names]
            for namespace in group:
                core.create_namespace(meshed_namespace(namespace))
                namespaces.append(namespace)
                install_podinfo(kube, namespace, router, 100, api_version, traffic=cluster.traffic)
            emulator, controller = start_processes(
                cluster, controller_kubeconfig, group, tmp_path_factory.mktemp("matrix")
            )
            started += [emulator, controller]
            for name, namespace in zip(names, group, strict=True):
                env = Release(namespace, kube, controller, emulator, router, api_version)
                env.create(name, RELEASES[name], **SPECS.get(name, {}))
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
    # Its status writes, as the API server labels them, and how long they took.
    status_write = {"verb": "PUT", "resource": "rollouts", "subresource": "status"}
    assert metrics["canary_kube_requests_total", frozenset({**status_write, "code": "200"}.items())]
    assert metrics["canary_kube_request_duration_seconds_count", frozenset(status_write.items())]
    # The controller also serves the faulty release of the pair: only this namespace counts.
    assert not any(
        name == "canary_rollout_canary_weight_ratio" and ("namespace", env.namespace) in labels
        for name, labels in metrics
    )


@pytest.mark.emulated
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


@pytest.mark.emulated
@pytest.mark.parametrize("router", ROUTERS)
def test_latency_regression_is_rolled_back(matrix: dict[Key, Release], router: str) -> None:
    """A canary whose p99 is far above the policy's 400 ms ceiling is rolled back."""
    env = matrix[router, "", SLOW]
    done = env.wait(SLOW, {"Succeeded", "RolledBack", "Failed"})
    assert done["status"]["phase"] == "RolledBack", done["status"]
    assert env.deployment("podinfo").metadata.generation == 1
    assert env.canary_weight() == 0


def test_a_custom_metric_out_of_bounds_rolls_a_healthy_canary_back(
    matrix: dict[Key, Release],
) -> None:
    """The canary serves as well as stable, but its custom metric (its own request count,
    asked from the real Prometheus by the controller's askers, not its tick) is above its max:
    RolledBack on that metric alone, stable untouched, 100% stable."""
    env = matrix["HTTPRoute", "", CUSTOM]
    done = env.wait(CUSTOM, DONE)
    assert done["status"]["phase"] == "RolledBack", done["status"]
    healthy = {c["type"]: c for c in done["status"]["conditions"]}["Healthy"]
    assert (healthy["status"], healthy["message"]) == ("False", "failed: canary-requests")
    failed = done["status"]["steps"][-1]
    assert failed["verdict"] == "Failed"
    assert failed["canary"]["requests"] > 5
    stable = env.deployment("podinfo")
    assert stable.spec.template.spec.containers[0].image == "ghcr.io/stefanprodan/podinfo:6.0.0"
    assert stable.metadata.generation == 1
    assert_all_on_stable(env)


def test_web_release_as_good_as_stable_is_promoted(matrix: dict[Key, Release]) -> None:
    """web-2 fails its doughnut votes like stable: Succeeded through every step, with the
    failures counted on both arms, and web back at 100% on its stable Deployment."""
    emojivoto = matrix[EMOJIVOTO]
    done = emojivoto.wait("web-2", DONE)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    steps = done["status"]["steps"]
    assert [s["verdict"] for s in steps] == ["Passed", "Passed", "Passed"]
    assert all(s["canary"]["requests"] >= 100 for s in steps)
    # The doughnut votes' HTTP 500s are counted (web is not 100% successful) on both arms. Over
    # the three steps (300 canary requests or more, ~8% failing) none failing has probability
    # 0.92^300 < 1e-10; each step alone, 0.92^100 = 2.4e-4, which a per-step check would add
    # three times to the 0.05% false-rollback bound.
    assert sum(s["canary"]["failures"] for s in steps) > 0
    assert steps[0]["stable"]["failures"] > 0
    template = emojivoto.deployment("web").spec.template
    assert template.metadata.annotations["emojivoto.example/release"] == "2"
    assert emojivoto.deployment("web-canary").spec.replicas == 0


@pytest.mark.emulated
def test_voting_release_failing_more_votes_is_rolled_back(matrix: dict[Key, Release]) -> None:
    """voting-2 also fails the poop votes (gRPC UNKNOWN, HTTP 200): the controller counts those
    gRPC failures, finds the canary worse than stable, and rolls back without touching stable."""
    emojivoto = matrix[EMOJIVOTO]
    done = emojivoto.wait("voting-2", DONE)
    assert done["status"]["phase"] == "RolledBack", done["status"]
    failed = done["status"]["steps"][-1]
    assert failed["verdict"] == "Failed"
    # Failures that exist only as grpc_status were counted, on the canary and on stable.
    assert failed["canary"]["failures"] > 0
    assert failed["stable"]["failures"] > 0
    stable = emojivoto.deployment("voting")
    assert stable.metadata.generation == 1
    assert "sim.canary.dev/path-error-rates" in stable.spec.template.metadata.annotations
    assert (
        "VotePoop"
        not in stable.spec.template.metadata.annotations["sim.canary.dev/path-error-rates"]
    )
    assert emojivoto.deployment("voting-canary").spec.replicas == 0
