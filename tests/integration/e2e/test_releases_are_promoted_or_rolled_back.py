"""A real canary release on the local cluster, for HTTPRoute and TrafficSplit: healthy releases
are promoted, error and latency regressions rolled back without touching stable."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.e2e.conftest import Release

pytestmark = pytest.mark.integration
ROUTERS = ["HTTPRoute", "TrafficSplit"]


@pytest.mark.parametrize("router", ROUTERS)
def test_healthy_release_is_promoted(release_env: Callable[..., Release], router: str) -> None:
    """Succeeded; the stable Deployment carries the new image; 100% stable; canary at zero."""
    env = release_env(router=router)
    env.create("6.1.0")
    done = env.wait("6.1.0", {"Succeeded", "RolledBack", "Failed"})
    assert done["status"]["phase"] == "Succeeded", done["status"]
    stable = env.deployment("podinfo")
    assert stable.spec.template.spec.containers[0].image == "ghcr.io/stefanprodan/podinfo:6.1.0"
    assert env.canary_weight() == 0
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
    assert not any(name == "canary_rollout_canary_weight_ratio" for name, _ in metrics)


@pytest.mark.parametrize("router", ROUTERS)
def test_error_regression_is_rolled_back(release_env: Callable[..., Release], router: str) -> None:
    """A canary failing 20% of requests: RolledBack, stable unchanged, 100% stable."""
    env = release_env(router=router)
    env.create("6.2.0", {"sim.canary.dev/error-rate": "0.2"})
    done = env.wait("6.2.0", {"Succeeded", "RolledBack", "Failed"})
    assert done["status"]["phase"] == "RolledBack", done["status"]
    stable = env.deployment("podinfo")
    assert stable.spec.template.spec.containers[0].image == "ghcr.io/stefanprodan/podinfo:6.0.0"
    assert stable.metadata.generation == 1
    assert env.canary_weight() == 0
    assert env.deployment("podinfo-canary").spec.replicas == 0
    failed = done["status"]["steps"][-1]
    assert failed["verdict"] == "Failed"
    assert failed["canary"]["failures"] > 0
    rolled_back = frozenset({"result": "rolled_back", "reason": "analysis"}.items())
    assert env.controller_metrics()["canary_rollout_outcomes_total", rolled_back] == 1


@pytest.mark.parametrize("router", ROUTERS)
def test_latency_regression_is_rolled_back(
    release_env: Callable[..., Release], router: str
) -> None:
    """A canary whose p99 is far above the policy's 400 ms ceiling is rolled back."""
    env = release_env(router=router)
    slow = {"sim.canary.dev/latency-p50-ms": "300", "sim.canary.dev/latency-p99-ms": "2000"}
    env.create("6.3.0", slow)
    done = env.wait("6.3.0", {"Succeeded", "RolledBack", "Failed"})
    assert done["status"]["phase"] == "RolledBack", done["status"]
    assert env.deployment("podinfo").metadata.generation == 1
    assert env.canary_weight() == 0
