"""``canary undo`` on the real control plane: two releases promoted through the real workloads
adapter record their templates in status (the CRD's schema accepts them); `canary undo
deploy/podinfo` creates, as the person running it, a Rollout back to the first release's
template that the API server admits, that plans with the policy's undo steps and that, promoted,
puts the first release's image and env back. Someone who may not create Rollouts cannot undo."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes import client

from bench.accounts import token_kubeconfig
from canary import cli
from canary.adapters.kube.rollouts import KubeRolloutStore
from canary.adapters.kube.workloads import KubeWorkloads
from canary.core import machine, undo
from canary.core import plan as plan_mod
from canary.core.vocabulary import Observation, PromoteStable
from canary.model.rollout import Rollout, RolloutPolicy
from canary.model.status import RolloutStatus
from canary.ports import Ref
from tests.integration.conftest import Cluster

pytestmark = pytest.mark.integration

IMAGES = ("podinfo:6.0.0", "podinfo:6.1.0", "podinfo:6.2.0")


def _deployment() -> client.V1Deployment:
    labels = {"app": "podinfo"}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name="podinfo"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="podinfo", image=IMAGES[0])]
                ),
            ),
        ),
    )


def _release(namespace: str, name: str, image: str, level: str) -> Rollout:
    env = [{"name": "LEVEL", "value": level}]
    return Rollout.model_validate(
        {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "targetRef": {"name": "podinfo"},
                "policyRef": {"name": "podinfo"},
                "release": {
                    "images": {"podinfo": image},
                    "templatePatch": {"spec": {"containers": [{"name": "podinfo", "env": env}]}},
                },
            },
        }
    )


def _promote(
    store: KubeRolloutStore, workloads: KubeWorkloads, policy: RolloutPolicy, ref: Ref
) -> Rollout:
    """Promote the release with the real adapter and write the status the machine decides
    once the stable Deployment has rolled it out."""
    rollout = store.get(ref)
    assert rollout is not None
    plan = plan_mod.build(rollout, policy)
    workloads.apply(ref.namespace, ref.name, plan, PromoteStable())
    deadline = time.monotonic() + 60
    while True:
        target = workloads.observe(ref.namespace, ref.name, plan).target
        if target is not None and target.has_release and target.ready:
            break
        assert time.monotonic() < deadline, f"{ref} did not roll out"
        time.sleep(0.5)
    now = datetime.now(UTC)
    obs = Observation(target=target, apex_service=True, services_ready=True)
    decision = machine.decide(plan, RolloutStatus(phase="Promoting", phase_since=now), obs, now)
    assert decision.status.phase == "Succeeded"
    store.write_status(rollout, decision.status)
    written = store.get(ref)
    assert written is not None
    return written


def _stable(apps: client.AppsV1Api, namespace: str) -> tuple[str, list[dict[str, str]]]:
    found = apps.api_client.sanitize_for_serialization(
        apps.read_namespaced_deployment("podinfo", namespace)
    )
    container = found["spec"]["template"]["spec"]["containers"][0]
    return container["image"], container.get("env", [])


def test_undo_releases_the_previous_template_as_the_person_asking(
    cluster: Cluster, kube: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """Release 6.1.0 then 6.2.0; undo creates a Rollout back to 6.1.0 with the undo steps,
    and promoting it puts 6.1.0 and its env back; a reader's undo is forbidden."""
    apps, core = client.AppsV1Api(kube), client.CoreV1Api(kube)
    apps.create_namespaced_deployment(namespace, _deployment())
    store, workloads = KubeRolloutStore(kube), KubeWorkloads(kube)
    policy = RolloutPolicy.model_validate(
        {
            "metadata": {"name": "podinfo", "namespace": namespace},
            "spec": {
                "service": {"name": "podinfo", "port": 9898},
                "stepWeight": 10,
                "undo": {"steps": [{"setWeight": 50}, {"setWeight": 100}]},
            },
        }
    )
    client.CustomObjectsApi(kube).create_namespaced_custom_object(
        "canary.dev", "v1alpha1", namespace, "rolloutpolicies", policy.wire()
    )
    for name, image, level in (("podinfo-1", IMAGES[1], "info"), ("podinfo-2", IMAGES[2], "debug")):
        store.create(_release(namespace, name, image, level))
        done = _promote(store, workloads, policy, Ref(namespace, name))
        assert done.status.promoted is not None
        assert done.status.promoted.spec is not None
        (recorded,) = done.status.promoted.spec.containers or []
        assert recorded.wire() == {
            "name": "podinfo",
            "image": image,
            "env": [{"name": "LEVEL", "value": level}],
        }
    assert _stable(apps, namespace) == (IMAGES[2], [{"name": "LEVEL", "value": "debug"}])

    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    client.RbacAuthorizationV1Api(kube).create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="reader"),
            rules=[
                client.V1PolicyRule(
                    api_groups=["canary.dev"], resources=["rollouts"], verbs=["get", "list"]
                )
            ],
        ),
    )
    client.RbacAuthorizationV1Api(kube).create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="reader"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="reader"
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)
            ],
        ),
    )
    reader = token_kubeconfig(kube, namespace, "reader", tmp_path / "reader.kubeconfig")
    argv = ["undo", "deploy/podinfo", "-n", namespace, "--comment", "errors up"]
    assert cli.main([*argv, "--kubeconfig", str(reader)]) == 1
    assert sorted(r.metadata.name for r in store.list(namespace)) == ["podinfo-1", "podinfo-2"]

    assert cli.main([*argv, "--kubeconfig", str(cluster.kubeconfig)]) == 0
    (made,) = [r for r in store.list(namespace) if r.spec.release.undo_of is not None]
    assert made.spec.release.undo_of == "podinfo-1"
    assert made.metadata.annotations[undo.CHANGE_CAUSE].startswith("canary undo to podinfo-1 by ")
    assert [s.set_weight for s in plan_mod.build(made, policy).steps] == [50, 100]

    _promote(store, workloads, policy, Ref(namespace, made.metadata.name))
    assert _stable(apps, namespace) == (IMAGES[1], [{"name": "LEVEL", "value": "info"}])
