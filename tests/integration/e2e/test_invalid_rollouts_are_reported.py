"""Invalid Rollouts get a status condition a person can act on; nothing in the cluster moves."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from tests.integration.e2e.conftest import Release

pytestmark = pytest.mark.integration


def _condition(status: dict[str, object], kind: str) -> dict[str, str]:
    conditions = status.get("conditions") or []
    assert isinstance(conditions, list)
    return next(c for c in conditions if c["type"] == kind)


def _wait_condition(env: Release, name: str, reason: str) -> dict[str, str]:
    for _ in range(60):
        status = env.rollout(name).get("status") or {}
        found = [c for c in status.get("conditions") or [] if c["type"] == "Valid"]
        if found and found[0]["reason"] == reason:
            return _condition(status, "Valid")
        time.sleep(1)
    pytest.fail(f"no Valid={reason} condition; controller log:\n{env.controller.tail()}")


def test_missing_target_is_reported(release_env: Callable[..., Release]) -> None:
    """A Rollout for a Deployment that does not exist: Valid=False TargetNotFound, no objects."""
    env = release_env()
    env.create("6.1.0", targetRef={"kind": "Deployment", "name": "nothere"})
    valid = _wait_condition(env, "6.1.0", "TargetNotFound")
    assert "nothere" in valid["message"]
    assert env.rollout("6.1.0")["status"]["phase"] == "Pending"
    apps: Any = client.AppsV1Api(env.api)
    core: Any = client.CoreV1Api(env.api)
    names = [d.metadata.name for d in apps.list_namespaced_deployment(env.namespace).items]
    assert names == ["podinfo"]
    services = core.list_namespaced_service(env.namespace).items
    assert [s.metadata.name for s in services] == ["podinfo"]


def test_unknown_service_is_reported(release_env: Callable[..., Release]) -> None:
    """A Rollout whose apex Service does not exist: Valid=False ServiceNotFound, no route."""
    env = release_env()
    env.create("6.1.0", service={"name": "nosuch", "port": 80})
    valid = _wait_condition(env, "6.1.0", "ServiceNotFound")
    assert "nosuch" in valid["message"]
    routes = env.custom.list_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", env.namespace, "httproutes"
    )
    assert routes["items"] == []


def test_semantic_error_fails_with_the_field_path(release_env: Callable[..., Release]) -> None:
    """Weights that go down: Failed with Valid=False InvalidSpec naming the step."""
    env = release_env()
    env.create("6.1.0", steps=[{"setWeight": 50}, {"setWeight": 20}])
    valid = _wait_condition(env, "6.1.0", "InvalidSpec")
    assert "spec.steps[1].setWeight" in valid["message"]
    assert env.rollout("6.1.0")["status"]["phase"] == "Failed"


def test_a_route_linkerd_refuses_is_reported_with_its_reason(
    release_env: Callable[..., Release],
) -> None:
    """A headless apex Service (no ClusterIP) cannot parent a route: Linkerd's real policy
    controller answers NoMatchingParent, and the Rollout waits with RouteAccepted=False naming
    that reason and the fix."""
    env = release_env()
    core: Any = client.CoreV1Api(env.api)
    core.delete_namespaced_service("podinfo", env.namespace)
    headless = {
        "metadata": {"name": "podinfo"},
        "spec": {
            "clusterIP": "None",
            "selector": {"app": "podinfo"},
            "ports": [{"name": "http", "port": 9898}],
        },
    }
    core.create_namespaced_service(env.namespace, headless)
    env.create("6.1.0")
    status: dict[str, Any] = {}
    for _ in range(60):
        status = env.rollout("6.1.0").get("status") or {}
        found = [c for c in status.get("conditions") or [] if c["type"] == "RouteAccepted"]
        if found and found[0]["reason"] == "NoMatchingParent":
            assert found[0]["status"] == "False"
            assert "parent service must have a ClusterIP" in found[0]["message"]
            assert "the parent Service podinfo must exist" in found[0]["message"]
            assert status["phase"] == "Initializing"
            assert env.canary_weight() == 0
            return
        time.sleep(1)
    pytest.fail(f"no RouteAccepted=False NoMatchingParent; status: {status}")
