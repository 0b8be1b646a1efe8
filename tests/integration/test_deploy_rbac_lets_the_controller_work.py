"""deploy/canary.yaml's ClusterRole against a real API server: it allows exactly what it lists
(and not, say, listing Secrets, reading a Secret it does not name, or deleting Deployments), and
a ServiceAccount bound to it can do what the Rollout store does."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from canary.adapters.kube.rollouts import KubeRolloutStore
from canary.errors import TerminalError
from canary.model.rollout import Rollout
from canary.model.status import RolloutStatus
from canary.ports import Ref

pytestmark = pytest.mark.integration

RBAC = Path(__file__).resolve().parents[2] / "deploy" / "canary.yaml"


def _role() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]
    (role,) = [d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "canary"]
    found: dict[str, Any] = role
    return found


@pytest.fixture
def bound(kube: client.ApiClient, namespace: str) -> Iterator[str]:
    """The ClusterRole of deploy/canary.yaml (under a unique name) bound to a ServiceAccount
    'canary' of the test namespace; yields the account's user name."""
    name = f"canary-test-{uuid.uuid4().hex[:8]}"
    rbac = client.RbacAuthorizationV1Api(kube)
    core = client.CoreV1Api(kube)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="canary"))
    )
    role = _role()
    rules = [
        client.V1PolicyRule(
            api_groups=r["apiGroups"],
            resources=r["resources"],
            resource_names=r.get("resourceNames"),
            verbs=r["verbs"],
        )
        for r in role["rules"]
    ]
    rbac.create_cluster_role(
        client.V1ClusterRole(metadata=client.V1ObjectMeta(name=name), rules=rules)
    )
    rbac.create_cluster_role_binding(
        client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name=name),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=name
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name="canary", namespace=namespace)
            ],
        )
    )
    try:
        yield f"system:serviceaccount:{namespace}:canary"
    finally:
        rbac.delete_cluster_role_binding(name)
        rbac.delete_cluster_role(name)


def _allowed(
    kube: client.ApiClient,
    user: str,
    namespace: str,
    rule: tuple[str, str, str],
    name: str | None = None,
) -> bool:
    group, resource, verb = rule
    plural, _, subresource = resource.partition("/")
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=user,
            groups=["system:serviceaccounts", "system:authenticated"],
            resource_attributes=client.V1ResourceAttributes(
                group=group,
                resource=plural,
                subresource=subresource or None,
                verb=verb,
                namespace=namespace,
                name=name,
            ),
        )
    )
    answer = client.AuthorizationV1Api(kube).create_subject_access_review(review)
    return bool(answer.status and answer.status.allowed)


def test_the_role_allows_what_it_lists_and_nothing_more(
    kube: client.ApiClient, namespace: str, bound: str
) -> None:
    """Every listed verb is allowed (on the listed names); listing secrets, reading an unnamed
    Secret, pods, and deletes are not."""
    for rule in _role()["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    for name in rule.get("resourceNames") or [None]:
                        assert _allowed(kube, bound, namespace, (group, resource, verb), name), (
                            group,
                            resource,
                            verb,
                            name,
                        )
    assert not _allowed(kube, bound, namespace, ("", "secrets", "get"), "database-password")
    assert not _allowed(kube, bound, namespace, ("", "secrets", "get"))
    for group, resource, verb in [
        ("", "secrets", "list"),
        ("", "pods", "list"),
        ("apps", "deployments", "delete"),
        ("canary.dev", "rolloutpolicies", "delete"),  # Rollouts: retention deletes old ones
        ("canary.dev", "rollouts", "update"),
        ("coordination.k8s.io", "leases", "delete"),
    ]:
        assert not _allowed(kube, bound, namespace, (group, resource, verb)), (
            group,
            resource,
            verb,
        )


def _token_client(kube: client.ApiClient, namespace: str) -> client.ApiClient:
    issued = client.CoreV1Api(kube).create_namespaced_service_account_token(
        "canary",
        namespace,
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[])),
    )
    token = issued.status.token if issued.status else None
    assert token, "the API server issued no ServiceAccount token"
    admin = kube.configuration
    configuration = client.Configuration()
    configuration.host = admin.host
    configuration.ssl_ca_cert = admin.ssl_ca_cert
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(configuration)


def test_the_controller_account_can_run_the_rollout_store(
    kube: client.ApiClient, namespace: str, bound: str
) -> None:
    """As the bound account: list, get, write status and annotate a Rollout."""
    rollout = Rollout.model_validate(
        {
            "metadata": {"name": "web-2", "namespace": namespace},
            "spec": {"targetRef": {"name": "web"}, "release": {"images": {"web": "web:2"}}},
        }
    )
    KubeRolloutStore(kube).create(rollout)
    ref = Ref(namespace, "web-2")
    with _token_client(kube, namespace) as api:
        store = KubeRolloutStore(api)
        deadline = time.monotonic() + 5
        while True:  # the new binding reaches the authorizer's cache within moments
            try:
                assert [r.metadata.name for r in store.list(namespace)] == ["web-2"]
                break
            except TerminalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        read = store.get(ref)
        assert read is not None
        store.write_status(read, RolloutStatus(phase="Initializing"))
        store.annotate(ref, "canary.dev/abort", "{}")
        after = store.get(ref)
    assert after is not None
    assert after.status.phase == "Initializing"
    assert after.metadata.annotations == {"canary.dev/abort": "{}"}
