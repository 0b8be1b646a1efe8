"""On the real API server with the commands policy the chart ships (deploy/canary.yaml): who
may approve is RBAC's decision and the recorded actor is the authenticated user. Two
ServiceAccounts: alice (canary-approver) and bob (may patch Rollouts, but not approve)."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from canary import cli
from canary.adapters.kube import client as kube_client
from canary.core import commands
from canary.core.vocabulary import Command

pytestmark = pytest.mark.integration

POLICY = Path(__file__).resolve().parents[2] / "deploy" / "canary.yaml"  # the chart, rendered
GROUP, VERSION = "canary.dev", "v1alpha1"
ROLLOUT: dict[str, Any] = {
    "apiVersion": "canary.dev/v1alpha1",
    "kind": "Rollout",
    "metadata": {"name": "web-2"},
    "spec": {
        "targetRef": {"name": "web"},
        "service": {"name": "web", "port": 80},
        "release": {"images": {"web": "web:2"}},
        "steps": [{"setWeight": 50}],
    },
}


def _shipped() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (d["kind"], d["metadata"]["name"]): d
        for d in yaml.safe_load_all(POLICY.read_text())
        if (d and d["kind"].startswith("ValidatingAdmissionPolicy"))
        or (d and d["metadata"]["name"] in ("canary-approver", "canary-operator"))
    }


@pytest.fixture
def policy(kube: client.ApiClient, namespace: str) -> Iterator[None]:
    """The shipped policy and roles, bound (for this test's namespace only, so that other tests
    sharing the cluster are not affected) exactly as the shipped binding binds it."""
    shipped = _shipped()
    admission: Any = client.AdmissionregistrationV1Api(kube)
    rbac: Any = client.RbacAuthorizationV1Api(kube)
    binding = copy.deepcopy(shipped[("ValidatingAdmissionPolicyBinding", "canary-commands")])
    binding["metadata"]["name"] = f"canary-commands-{namespace}"
    binding["spec"]["matchResources"] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    }
    made: list[tuple[Any, str]] = []
    for (kind, name), body in shipped.items():
        if kind == "ValidatingAdmissionPolicy":
            _replace(admission.create_validating_admission_policy, body)
            made.append((admission.delete_validating_admission_policy, name))
        elif kind == "ClusterRole":
            _replace(rbac.create_cluster_role, body)
    admission.create_validating_admission_policy_binding(binding)
    made.append((admission.delete_validating_admission_policy_binding, binding["metadata"]["name"]))
    try:
        yield
    finally:
        for delete, name in reversed(made):
            delete(name)


def _replace(create: Any, body: dict[str, Any]) -> None:
    try:
        create(body)
    except client.ApiException as error:
        if error.status != 409:
            raise


def _user(kube: client.ApiClient, namespace: str, name: str, role: dict[str, Any]) -> str:
    """A ServiceAccount bound to ``role`` (a roleRef); its token."""
    core: Any = client.CoreV1Api(kube)
    rbac: Any = client.RbacAuthorizationV1Api(kube)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", **role},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    )
    issued = core.create_namespaced_service_account_token(
        name, namespace, {"spec": {"audiences": []}}
    )
    return str(issued.status.token)


def _kubeconfig(kube: client.ApiClient, token: str, path: Path) -> Path:
    admin = kube.configuration
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "dev",
                        "cluster": {
                            "server": admin.host,
                            "certificate-authority": admin.ssl_ca_cert,
                        },
                    }
                ],
                "users": [{"name": "u", "user": {"token": token}}],
                "contexts": [{"name": "c", "context": {"cluster": "dev", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    return path


def _annotate(api: client.ApiClient, namespace: str, value: dict[str, str]) -> None:
    custom: Any = client.CustomObjectsApi(api)
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "rollouts", "web-2", {"metadata": {"annotations": value}}
    )


def _refusal(api: client.ApiClient, namespace: str, value: dict[str, str]) -> str:
    with pytest.raises(client.ApiException) as refused:
        _annotate(api, namespace, value)
    assert refused.value.status in (403, 422)
    return str(json.loads(str(refused.value.body))["message"])


def _until_active(kube: client.ApiClient, namespace: str) -> None:
    """The policy applies once the API server has loaded it (well under 10 s)."""
    custom: Any = client.CustomObjectsApi(kube)
    probe = copy.deepcopy(ROLLOUT)
    probe["metadata"] = {"name": "probe", "annotations": _approval("x")}
    deadline = time.monotonic() + 20
    while True:
        try:
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "rollouts", probe)
        except client.ApiException as error:
            status = error.status
        else:
            custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "rollouts", "probe")
            assert time.monotonic() < deadline, "the admission policy never applied"
            time.sleep(0.5)
            continue
        assert status in (403, 422)
        return


def _approval(actor: str, comment: str = "") -> dict[str, str]:
    at = datetime.now(UTC)
    return commands.encode(Command(kind="approve", at=at, actor=actor, comment=comment))


def test_rbac_decides_who_approves_and_the_actor_is_the_requester(
    kube: client.ApiClient,
    namespace: str,
    policy: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A pre-approval in the manifest is refused; bob (no approve permission) is refused with
    the missing permission named; alice's `canary approve` passes under her own name, and a
    forged actor does not."""
    _until_active(kube, namespace)
    custom: Any = client.CustomObjectsApi(kube)
    preapproved = copy.deepcopy(ROLLOUT)
    preapproved["metadata"]["annotations"] = _approval("admin")
    with pytest.raises(client.ApiException) as refused:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "rollouts", preapproved)
    assert "cannot be created with a command" in str(refused.value.body)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "rollouts", ROLLOUT)

    patcher = {"kind": "Role", "name": "rollout-patcher"}
    client.RbacAuthorizationV1Api(kube).create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="rollout-patcher"),
            rules=[
                client.V1PolicyRule(
                    api_groups=[GROUP], resources=["rollouts"], verbs=["get", "list", "patch"]
                )
            ],
        ),
    )
    alice = _kubeconfig(
        kube,
        _user(kube, namespace, "alice", {"kind": "ClusterRole", "name": "canary-approver"}),
        tmp_path / "alice",
    )
    bob = _kubeconfig(kube, _user(kube, namespace, "bob", patcher), tmp_path / "bob")
    bob_name = f"system:serviceaccount:{namespace}:bob"
    alice_name = f"system:serviceaccount:{namespace}:alice"

    with kube_client.connect(str(bob)) as as_bob:
        deadline = time.monotonic() + 10
        while True:  # the RoleBinding reaches the authorizer's cache within moments
            try:
                message = _refusal(as_bob, namespace, _approval(bob_name))
                break
            except AssertionError:
                assert time.monotonic() < deadline
                time.sleep(0.3)
    assert f"user {bob_name} may not give approve" in message
    assert "needs create on rollouts/approve in canary.dev" in message

    with kube_client.connect(str(alice)) as as_alice:
        assert kube_client.whoami(as_alice) == alice_name
        forged = _refusal(as_alice, namespace, _approval(bob_name))
        assert f"the actor of a command must be the user who gives it ({alice_name})" in forged
        hand_written = {commands.key("approve"): json.dumps({"actor": alice_name, "at": "now"})}
        assert "actor of a command" in _refusal(as_alice, namespace, hand_written)

    client.CustomObjectsApi(kube).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "rollouts", "web-2", {"status": {"phase": "WaitingApproval"}}
    )
    argv = ["--kubeconfig", str(alice), "-n", namespace, "approve", "web-2", "--comment", "ok"]
    assert cli.main(argv) == 0
    assert "approved" in capsys.readouterr().out
    stored = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "rollouts", "web-2")
    (command,) = commands.decode(stored["metadata"]["annotations"])
    assert (command.kind, command.actor, command.comment) == ("approve", alice_name, "ok")
