"""A promotion whose stable rollout cannot finish, on the real control plane: the release asks
for more CPU than any node has, so the stable Deployment's new pods stay Pending while its old
ones keep serving. Past promotionDeadline the machine, fed what the real adapter observes, ends
Failed and leaves the Deployment (and traffic) exactly as they are."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client

from canary.adapters.kube.workloads import KubeWorkloads
from canary.core import machine
from canary.core.vocabulary import Observation, PromoteStable, RouteState
from canary.model.status import RolloutStatus
from tests.unit.fake_cluster import make_plan

pytestmark = pytest.mark.integration

ROLLOUT = "podinfo-6-1-0"
OLD, NEW = "ghcr.io/stefanprodan/podinfo:6.0.0", "ghcr.io/stefanprodan/podinfo:6.1.0"


def _deployment() -> client.V1Deployment:
    labels = {"app": "podinfo"}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name="podinfo"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="podinfo", image=OLD)]),
            ),
        ),
    )


def _until(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return False


def test_stuck_stable_rollout_fails_the_promotion_and_reverts_nothing(
    kube: client.ApiClient, namespace: str
) -> None:
    """New stable pods that cannot be scheduled: Failed at the deadline, no action, the stable
    Deployment keeps the release and its two old pods stay ready."""
    apps, core = client.AppsV1Api(kube), client.CoreV1Api(kube)
    apps.create_namespaced_deployment(namespace, _deployment())
    core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="podinfo"),
            spec=client.V1ServiceSpec(
                selector={"app": "podinfo"}, ports=[client.V1ServicePort(port=9898)]
            ),
        ),
    )
    workloads = KubeWorkloads(kube)
    container = {"name": "podinfo", "resources": {"requests": {"cpu": "1000"}}}
    plan = make_plan(
        release={"images": {"podinfo": NEW}, "templatePatch": {"spec": {"containers": [container]}}}
    )

    def target_ready() -> bool:
        target = workloads.observe(namespace, ROLLOUT, plan).target
        return target is not None and target.ready

    assert _until(target_ready, 60)
    workloads.apply(namespace, ROLLOUT, plan, PromoteStable())
    route = RouteState(canary_weight=50, accepted=True)
    promoting_since = datetime.now(UTC)
    status = RolloutStatus(phase="Promoting", phase_since=promoting_since)

    def stuck() -> bool:
        obs = workloads.observe(namespace, ROLLOUT, plan).target
        pending = core.list_namespaced_pod(namespace, label_selector="app=podinfo").items
        return (
            obs is not None
            and obs.has_release
            and any(p.status.phase == "Pending" for p in pending if p.status is not None)
        )

    assert _until(stuck, 60)
    world = workloads.observe(namespace, ROLLOUT, plan)
    obs = Observation(
        target=world.target, apex_service=world.apex_service, services_ready=True, route=route
    )
    assert world.target is not None
    assert not world.target.ready

    before = machine.decide(plan, status, obs, promoting_since + timedelta(minutes=29))
    assert (before.status.phase, before.actions) == ("Promoting", ())

    after = machine.decide(plan, status, obs, promoting_since + plan.promotion.timeout)
    assert after.status.phase == "Failed"
    assert after.actions == ()
    assert "50% canary" in after.status.message
    assert [(e.type, e.reason) for e in after.events] == [("Warning", "PromotionDeadlineExceeded")]

    stable = apps.api_client.sanitize_for_serialization(
        apps.read_namespaced_deployment("podinfo", namespace)
    )
    assert stable["spec"]["template"]["spec"]["containers"][0]["image"] == NEW
    assert stable["status"]["readyReplicas"] == 2
