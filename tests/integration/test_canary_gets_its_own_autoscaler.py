"""HPA-aware sizing on the real control plane: a target Deployment with a real autoscaling/v2
HorizontalPodAutoscaler (min 4, max 10), the machine's decisions carried out by the real
adapter, and kube-controller-manager's real HPA controller acting on what canary creates. No
metrics server runs here; the HPA controller still keeps a Deployment within its autoscaler's
bounds, which is what the test watches it do, and the stable's scaling by load is played by
writing its scale subresource as the HPA controller would."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from canary.adapters.kube.rollouts import KubeRolloutStore
from canary.adapters.kube.workloads import KubeWorkloads
from canary.core import machine
from canary.core import plan as plan_mod
from canary.core.vocabulary import (
    Action,
    Autoscaler,
    EnsureCanary,
    Observation,
    RouteState,
    ScaleCanaryToZero,
    SetWeight,
)
from canary.model.rollout import Rollout
from canary.model.status import RolloutStatus
from tests.unit.fake_cluster import FakeCluster

pytestmark = pytest.mark.integration

ROLLOUT = "podinfo-2"
BEHAVIOR = {"scaleDown": {"stabilizationWindowSeconds": 60}}


def _until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds}s: {what}"
        time.sleep(0.5)


def _setup(kube: client.ApiClient, namespace: str) -> None:
    apps: Any = client.AppsV1Api(kube)
    core: Any = client.CoreV1Api(kube)
    autoscaling: Any = client.AutoscalingV2Api(kube)
    labels = {"app": "podinfo"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "podinfo"},
            "spec": {
                "replicas": 4,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "podinfo", "image": "podinfo:6.0.0"}]},
                },
            },
        },
    )
    core.create_namespaced_service(
        namespace,
        {"metadata": {"name": "podinfo"}, "spec": {"selector": labels, "ports": [{"port": 9898}]}},
    )
    autoscaling.create_namespaced_horizontal_pod_autoscaler(
        namespace,
        {
            "metadata": {"name": "podinfo"},
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "podinfo",
                },
                "minReplicas": 4,
                "maxReplicas": 10,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 70},
                        },
                    }
                ],
                "behavior": BEHAVIOR,
            },
        },
        field_manager="argocd-controller",
    )


class Release:
    """One release driven tick by tick: the machine decides, the real adapter acts, the route
    is a number (no mesh is needed to size workloads)."""

    def __init__(self, kube: client.ApiClient, namespace: str, plan: plan_mod.Plan) -> None:
        self.namespace, self.plan = namespace, plan
        self.workloads = KubeWorkloads(kube)
        self.status = RolloutStatus()
        self.weight = 0
        self.actions: list[Action] = []

    def tick(self, measured: bool = False) -> None:
        world = self.workloads.observe(self.namespace, ROLLOUT, self.plan)
        traffic = FakeCluster(route_exists=True, weight=self.weight)
        obs = Observation(
            target=world.target,
            apex_service=world.apex_service,
            canary=world.canary,
            services_ready=world.services_ready,
            route=RouteState(self.weight, accepted=True),
            evidence=traffic.evidence(15) if measured else None,
        )
        decision = machine.decide(self.plan, self.status, obs, datetime.now(UTC))
        for action in decision.actions:
            if isinstance(action, SetWeight):
                self.weight = action.canary
            else:
                self.workloads.apply(self.namespace, ROLLOUT, self.plan, action)
        self.actions = list(decision.actions)
        self.status = decision.status

    def until(self, check: Callable[[], bool], what: str, measured: bool = False) -> None:
        def ticked() -> bool:
            self.tick(measured)
            return check()

        _until(ticked, 60, what)


def _hpa(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    autoscaling: Any = client.AutoscalingV2Api(kube)
    api: Any = kube
    result: dict[str, Any] = api.sanitize_for_serialization(
        autoscaling.read_namespaced_horizontal_pod_autoscaler(name, namespace)
    )
    return result


def _written_by_canary(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    """When and how canary last wrote ``obj`` (its managedFields entries)."""
    return [
        (m["operation"], m.get("subresource", ""), m["time"])
        for m in obj["metadata"]["managedFields"]
        if m["manager"] == "canary"
    ]


def _deployment(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    apps: Any = client.AppsV1Api(kube)
    api: Any = kube
    result: dict[str, Any] = api.sanitize_for_serialization(
        apps.read_namespaced_deployment(name, namespace)
    )
    return result


def _replicas(kube: client.ApiClient, namespace: str, name: str) -> int:
    apps: Any = client.AppsV1Api(kube)
    scale = apps.read_namespaced_deployment_scale(name, namespace)
    return int(scale.spec.replicas or 0)


def _scale(kube: client.ApiClient, namespace: str, name: str, replicas: int) -> None:
    client.AppsV1Api(kube).patch_namespaced_deployment_scale(
        name, namespace, {"spec": {"replicas": replicas}}, field_manager="test-autoscaler"
    )


def test_canary_gets_a_derived_autoscaler_that_kube_controller_manager_enforces(
    kube: client.ApiClient, namespace: str
) -> None:
    """Stable HPA 4..10 → canary HPA 2..5 at 50% (the HPA controller keeps the canary in it,
    canary never fights it), 4..8 at 80% starting from the stable's current 8 pods, gone when
    the canary is scaled to zero; the stable's HPA is never written by canary."""
    _setup(kube, namespace)
    rollout = KubeRolloutStore(kube).create(
        Rollout.model_validate(
            {
                "metadata": {"name": ROLLOUT, "namespace": namespace},
                "spec": {
                    "targetRef": {"name": "podinfo"},
                    "release": {"images": {"podinfo": "podinfo:6.1.0"}},
                    "service": {"name": "podinfo", "port": 9898},
                    "steps": [{"setWeight": 50}, {"setWeight": 80}],
                    "analysis": {"minRequestsPerStep": 50, "successRate": {"min": 99}},
                },
            }
        )
    )
    stable_hpa = _hpa(kube, namespace, "podinfo")
    apps: Any = client.AppsV1Api(kube)
    _until(
        lambda: apps.read_namespaced_deployment("podinfo", namespace).status.ready_replicas == 4,
        60,
        "4 ready stable pods",
    )
    release = Release(kube, namespace, plan_mod.build(rollout, None))

    # 50%: canary created from the stable's 4 current pods, with its own HPA 2..5.
    release.until(lambda: release.weight == 50, "the canary ready at 50%")
    canary_hpa = _hpa(kube, namespace, "podinfo-canary")
    assert {k: canary_hpa["spec"][k] for k in ("minReplicas", "maxReplicas")} == {
        "minReplicas": 2,
        "maxReplicas": 5,
    }
    assert canary_hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "podinfo-canary",
    }
    assert canary_hpa["spec"]["metrics"] == stable_hpa["spec"]["metrics"]
    assert canary_hpa["spec"]["behavior"] == stable_hpa["spec"]["behavior"]
    assert canary_hpa["metadata"]["labels"]["canary.dev/rollout"] == ROLLOUT
    (owner,) = canary_hpa["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "Rollout",
        ROLLOUT,
        rollout.metadata.uid,
    )
    assert {m["manager"] for m in canary_hpa["metadata"]["managedFields"]} >= {"canary"}
    assert _replicas(kube, namespace, "podinfo-canary") == 2

    # kube-controller-manager's HPA controller acts on the canary's autoscaler.
    _scale(kube, namespace, "podinfo-canary", 1)
    _until(
        lambda: _replicas(kube, namespace, "podinfo-canary") == 2,
        45,
        "the HPA controller raising the canary to its minimum 2",
    )

    # Scaled up by its autoscaler (played here): canary's ticks leave the number alone and
    # rewrite neither the Deployment nor the autoscaler.
    _scale(kube, namespace, "podinfo-canary", 4)
    canary_before = _written_by_canary(_deployment(kube, namespace, "podinfo-canary"))
    hpa_before = _written_by_canary(_hpa(kube, namespace, "podinfo-canary"))
    for _ in range(3):
        release.tick()
    assert release.weight == 50
    assert EnsureCanary(2, Autoscaler(2, 5)) in release.actions
    assert _replicas(kube, namespace, "podinfo-canary") == 4
    assert _written_by_canary(_deployment(kube, namespace, "podinfo-canary")) == canary_before
    assert _written_by_canary(_hpa(kube, namespace, "podinfo-canary")) == hpa_before

    # The stable's HPA scales it to 8 (played); at the next weight the canary starts from
    # the 8: ceil(8 × 80%) = 7 pods, its HPA 4..8.
    _scale(kube, namespace, "podinfo", 8)
    _until(
        lambda: apps.read_namespaced_deployment("podinfo", namespace).status.replicas == 8,
        60,
        "8 stable pods running",
    )
    release.until(lambda: release.weight == 80, "the canary ready at 80%", measured=True)
    canary_hpa = _hpa(kube, namespace, "podinfo-canary")
    assert (canary_hpa["spec"]["minReplicas"], canary_hpa["spec"]["maxReplicas"]) == (4, 8)
    assert _replicas(kube, namespace, "podinfo-canary") == 7
    assert release.status.stable_ready_at_start == 4

    # The end of a release (rollback and promotion alike): the autoscaler first, then zero.
    release.workloads.apply(namespace, ROLLOUT, release.plan, ScaleCanaryToZero())
    with pytest.raises(ApiException) as gone:
        _hpa(kube, namespace, "podinfo-canary")
    assert gone.value.status == 404
    assert _replicas(kube, namespace, "podinfo-canary") == 0

    # The user's autoscaler: the same spec, and canary never wrote it.
    now = _hpa(kube, namespace, "podinfo")
    assert now["spec"] == stable_hpa["spec"]
    assert _written_by_canary(now) == []
