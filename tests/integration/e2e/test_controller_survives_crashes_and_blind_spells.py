"""The controller killed mid-rollout resumes correctly; with Prometheus down it holds."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from tests.integration.conftest import Cluster
from tests.integration.e2e.conftest import Release

pytestmark = pytest.mark.integration


def test_sigkill_mid_rollout_then_restart_completes(release_env: Callable[..., Release]) -> None:
    """SIGKILL while Progressing; a new controller process finishes the release correctly."""
    env = release_env()
    env.create("6.1.0")
    env.wait("6.1.0", {"Progressing"})
    env.controller.kill(signal.SIGKILL)
    env.controller.start()
    done = env.wait("6.1.0", {"Succeeded", "RolledBack", "Failed"})
    assert done["status"]["phase"] == "Succeeded"
    assert env.canary_weight() == 0
    assert env.deployment("podinfo").spec.template.spec.containers[0].image.endswith(":6.1.0")


def test_no_advance_while_prometheus_is_down(
    release_env: Callable[..., Release], cluster: Cluster
) -> None:
    """With Prometheus stopped the step holds; once it is back the rollout goes on."""
    env = release_env()
    env.create("6.1.0")
    env.wait("6.1.0", {"Progressing"})
    cluster.stop_prometheus()
    try:
        time.sleep(3)
        held = env.rollout("6.1.0")["status"]
        index = held["currentStepIndex"]
        time.sleep(20)
        blind = env.rollout("6.1.0")["status"]
        assert blind["phase"] == "Progressing"
        assert blind["currentStepIndex"] == index
        healthy = {c["type"]: c for c in blind["conditions"]}["Healthy"]
        assert (healthy["status"], healthy["reason"]) == ("Unknown", "MetricsUnavailable")
    finally:
        cluster.start_prometheus()
    done = env.wait("6.1.0", {"Succeeded", "RolledBack", "Failed"})
    assert done["status"]["phase"] == "Succeeded"
