"""The HTTP API against a real kube-apiserver: callers are two ServiceAccounts with tokens from
the TokenRequest API, one allowed to read Rollouts in a namespace and one also to approve;
TokenReview says who they are and SubjectAccessReview what they may do. The access-review
contract runs against both ``KubeAccessReview`` and the fake the API unit tests use."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from canary.adapters.kube.access import KubeAccessReview
from canary.adapters.kube.rollouts import KubeRolloutStore
from canary.api import app, server
from canary.api.metrics import ControllerMetrics
from canary.core import access, commands, links
from canary.model.rollout import API_VERSION
from canary.ports import AccessReview, Identity, Ref
from tests.api.fake_access import FakeAccessReview
from tests.fake_store import make

pytestmark = pytest.mark.integration

GROUP, VERSION = API_VERSION.split("/")


@dataclass
class People:
    namespace: str
    viewer: str
    approver: str
    kube: client.ApiClient

    def user(self, account: str) -> str:
        return f"system:serviceaccount:{self.namespace}:{account}"


def _token(core: client.CoreV1Api, namespace: str, account: str) -> str:
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
    )
    made = core.create_namespaced_service_account_token(account, namespace, request)
    assert made.status is not None
    return str(made.status.token)


def _role(rbac: client.RbacAuthorizationV1Api, namespace: str, name: str, rule: Any) -> None:
    rbac.create_namespaced_role(
        namespace, client.V1Role(metadata=client.V1ObjectMeta(name=name), rules=[rule])
    )


def _bind(rbac: client.RbacAuthorizationV1Api, namespace: str, role: str, account: str) -> None:
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=f"{role}-{account}"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name=role
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name=account, namespace=namespace)
            ],
        ),
    )


@pytest.fixture
def people(kube: client.ApiClient, namespace: str) -> People:
    """ServiceAccounts 'viewer' (get/list rollouts) and 'approver' (also create
    rollouts/approve) in the test namespace, with their tokens; and Rollout web-2 waiting for
    approval there."""
    core, rbac = client.CoreV1Api(kube), client.RbacAuthorizationV1Api(kube)
    for account in ("viewer", "approver"):
        core.create_namespaced_service_account(
            namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=account))
        )
    read = client.V1PolicyRule(
        api_groups=[access.GROUP], resources=["rollouts"], verbs=["get", "list"]
    )
    approve = access.command_permission("approve")
    command = client.V1PolicyRule(
        api_groups=[approve.group],
        resources=[f"{approve.resource}/{approve.subresource}"],
        verbs=[approve.verb],
    )
    _role(rbac, namespace, "rollout-reader", read)
    _role(rbac, namespace, "rollout-approver", command)
    _bind(rbac, namespace, "rollout-reader", "viewer")
    _bind(rbac, namespace, "rollout-reader", "approver")
    _bind(rbac, namespace, "rollout-approver", "approver")
    store = KubeRolloutStore(kube)
    made = make("web-2", namespace=namespace)
    fresh = made.metadata.model_copy(update={"resource_version": None})
    store.create(made.model_copy(update={"metadata": fresh}))
    body: dict[str, Any] = client.CustomObjectsApi(kube).get_namespaced_custom_object(  # type: ignore[assignment]
        GROUP, VERSION, namespace, "rollouts", "web-2"
    )
    body["status"] = {"phase": "WaitingApproval", "canaryWeight": 20}
    client.CustomObjectsApi(kube).replace_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "rollouts", "web-2", body
    )
    return People(
        namespace, _token(core, namespace, "viewer"), _token(core, namespace, "approver"), kube
    )


@pytest.fixture
def url(people: People) -> Iterator[str]:
    """The API app served by uvicorn, reviewing callers with the real API server."""
    store = KubeRolloutStore(people.kube)
    api = app.Api(
        store=store,
        annotator=store,
        access=KubeAccessReview(people.kube),
        ready=lambda: True,
        metrics=ControllerMetrics(store),
    )
    running = server.start(app.build(api), host="127.0.0.1", port=0)
    try:
        yield running.url
    finally:
        running.stop()


def _call(url: str, token: str | None, method: str = "GET", body: bytes | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def _annotations(people: People) -> dict[str, str]:
    rollout = KubeRolloutStore(people.kube).get(Ref(people.namespace, "web-2"))
    assert rollout is not None
    return dict(rollout.metadata.annotations)


def test_nobody_gets_in_without_a_token_the_api_server_accepts(url: str, people: People) -> None:
    """No token, or a made-up one, is 401 on every /api/ endpoint."""
    one = f"{url}/api/v1/namespaces/{people.namespace}/rollouts/web-2"
    for token in (None, "not-a-real-token"):
        assert _call(f"{url}/api/v1/rollouts", token)[0] == 401
        assert _call(one, token)[0] == 401
        assert _call(one + "/approve", token, "POST", b"{}")[0] == 401
    assert _annotations(people) == {}


def test_a_viewer_reads_its_namespace_only_and_cannot_approve(url: str, people: People) -> None:
    """The viewer lists and reads web-2, sees no other namespace, and is refused approve."""
    status, listed = _call(f"{url}/api/v1/rollouts", people.viewer)
    assert status == 200
    assert {(i["namespace"], i["name"]) for i in listed["items"]} == {(people.namespace, "web-2")}
    status, one = _call(f"{url}/api/v1/namespaces/{people.namespace}/rollouts/web-2", people.viewer)
    assert (status, one["status"]["phase"]) == (200, "WaitingApproval")
    assert _call(f"{url}/api/v1/rollouts?namespace=default", people.viewer)[0] == 403
    path = links.path(people.namespace, "web-2", "approve")
    status, problem = _call(url + path, people.viewer, "POST", b'{"comment": "me too"}')
    assert status == 403
    assert people.user("viewer") in problem["detail"]
    assert _annotations(people) == {}


def test_an_approver_approves_as_their_reviewed_identity(url: str, people: People) -> None:
    """The approver's command is written on the real Rollout naming their ServiceAccount."""
    path = links.path(people.namespace, "web-2", "approve")
    status, done = _call(url + path, people.approver, "POST", b'{"comment": "looks good"}')
    assert status == 202
    assert done["actor"] == people.user("approver")
    (command,) = commands.decode(_annotations(people))
    assert (command.kind, command.actor, command.comment) == (
        "approve",
        people.user("approver"),
        "looks good",
    )
    abort = links.path(people.namespace, "web-2", "abort")
    assert _call(url + abort, people.approver, "POST", b"{}")[0] == 403


def _fake(people: People) -> FakeAccessReview:
    """The fake, told what the real cluster was told in ``people``."""
    viewer, approver = people.user("viewer"), people.user("approver")
    grants: set[tuple[str, access.Permission, str | None]] = {
        (who, perm, people.namespace)
        for who in (viewer, approver)
        for perm in (access.READ, access.LIST)
    }
    grants.add((approver, access.command_permission("approve"), people.namespace))
    return FakeAccessReview(
        {people.viewer: Identity(viewer), people.approver: Identity(approver)}, grants
    )


@pytest.mark.parametrize("kind", ["kube", "fake"])
def test_access_review_contract(people: People, kind: str) -> None:
    """Both reviews: tokens name their ServiceAccount or nobody; grants hold only where given."""
    review: AccessReview = KubeAccessReview(people.kube) if kind == "kube" else _fake(people)
    assert review.authenticate("not-a-real-token") is None
    viewer = review.authenticate(people.viewer)
    approver = review.authenticate(people.approver)
    assert viewer is not None
    assert approver is not None
    assert (viewer.username, approver.username) == (
        people.user("viewer"),
        people.user("approver"),
    )
    ns = people.namespace
    approve = access.command_permission("approve")
    assert review.allowed(viewer, access.LIST, ns)
    assert review.allowed(viewer, access.READ, ns)
    assert not review.allowed(viewer, approve, ns)
    assert review.allowed(approver, approve, ns)
    assert not review.allowed(approver, access.command_permission("abort"), ns)
    assert not review.allowed(viewer, access.LIST, None)
    assert not review.allowed(viewer, access.LIST, f"other-{uuid.uuid4().hex[:6]}")
