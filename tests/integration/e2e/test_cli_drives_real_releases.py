"""The `canary` command against a running controller: a release made with `canary release` is
followed to the end by `canary watch` (exit 0 promoted, 1 rolled back), and `canary approve`
lets a paused release go on, recorded with its actor and comment."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from canary import cli
from tests.integration.conftest import Cluster
from tests.integration.e2e.conftest import Release

pytestmark = pytest.mark.integration


def _canary(cluster: Cluster, env: Release, *args: str) -> int:
    return cli.main(["--kubeconfig", str(cluster.kubeconfig), "-n", env.namespace, *args])


def test_released_with_the_cli_and_watched_to_success(
    release_env: Callable[..., Release], cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """`canary release` then `canary watch` exits 0 once the stable Deployment is promoted."""
    env = release_env()
    image = "podinfo=ghcr.io/stefanprodan/podinfo:6.1.0"
    assert _canary(cluster, env, "release", "deploy/podinfo", "--image", image) == 0
    assert _canary(cluster, env, "watch", "podinfo-6-1-0", "--timeout", "4m") == 0
    out = capsys.readouterr().out
    assert "rollout.canary.dev/podinfo-6-1-0 created" in out
    assert out.splitlines()[-1].split()[1] == "Succeeded"
    stable = env.deployment("podinfo")
    assert stable.spec.template.spec.containers[0].image.endswith(":6.1.0")


def test_watch_exits_1_when_the_release_is_rolled_back(
    release_env: Callable[..., Release], cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """A canary failing 20% of requests is rolled back, and `canary watch` exits 1."""
    env = release_env()
    env.create("6.2.0", {"sim.canary.dev/error-rate": "0.2"})
    assert _canary(cluster, env, "watch", "6.2.0", "--timeout", "4m") == 1
    assert capsys.readouterr().out.splitlines()[-1].split()[1] == "RolledBack"


def test_approve_lets_a_paused_release_go_on(
    release_env: Callable[..., Release], cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """At a pause step `canary approve` is accepted, the release succeeds, the status names
    who approved and why."""
    env = release_env()
    env.create("6.1.0", steps=[{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}])
    env.wait("6.1.0", {"WaitingApproval"})
    assert _canary(cluster, env, "approve", "6.1.0", "--as-actor", "ana", "--comment", "ok") == 0
    assert _canary(cluster, env, "watch", "6.1.0", "--timeout", "4m") == 0
    approvals = env.rollout("6.1.0")["status"]["approvals"]
    assert [(a["decision"], a["actor"], a["comment"]) for a in approvals] == [
        ("Approved", "ana", "ok")
    ]
    assert "rollout.canary.dev/6.1.0 approved" in capsys.readouterr().out
