"""`canary dashboard` against a real kube-apiserver: it serves the dashboard on this machine as
the kubeconfig's user (a SelfSubjectReview says who, SelfSubjectAccessReviews what they may
do), only to a browser that holds the secret in the URL it prints."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from canary.adapters.kube.rollouts import KubeRolloutStore
from canary.core import commands
from canary.model.rollout import API_VERSION
from canary.ports import Ref
from tests.fake_store import make
from tests.integration.conftest import Cluster

pytestmark = pytest.mark.integration

GROUP, VERSION = API_VERSION.split("/")
URL = re.compile(r"(http://\S+)/#token=(\S+)")


def _get(url: str, token: str | None, method: str = "GET", body: bytes | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


@pytest.fixture
def waiting(kube: client.ApiClient, namespace: str) -> str:
    """Rollout web-2, waiting for approval, in the test namespace."""
    store = KubeRolloutStore(kube)
    made = make("web-2", namespace=namespace)
    store.create(made.model_copy(update={"metadata": made.metadata.model_copy(
        update={"resource_version": None})}))  # fmt: skip
    custom = client.CustomObjectsApi(kube)
    body: Any = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "rollouts", "web-2")
    body["status"] = {"phase": "WaitingApproval", "canaryWeight": 20}
    custom.replace_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "rollouts", "web-2", body
    )
    return namespace


@pytest.fixture
def dashboard(cluster: Cluster) -> Iterator[tuple[str, str]]:
    """`canary dashboard --port 0` as a process: (its URL, its secret)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "canary", "dashboard", "--kubeconfig", str(cluster.kubeconfig),
         "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = URL.search(line)
        assert found, line
        yield found[1], found[2]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
        if process.stdout is not None:
            process.stdout.close()


def test_local_dashboard_acts_as_the_kubeconfig_user_for_the_secret_holder(
    dashboard: tuple[str, str], waiting: str, kube: client.ApiClient
) -> None:
    """Without the secret every fragment is 401; with it the history lists web-2, its page
    offers the admin's buttons, and Approve is recorded as the kubeconfig's user."""
    url, secret = dashboard
    namespace = waiting
    me = client.AuthenticationV1Api(kube).create_self_subject_review(client.V1SelfSubjectReview())
    assert me.status is not None
    assert me.status.user_info is not None
    username = me.status.user_info.username
    assert _get(url + "/", None)[0] == 200
    assert _get(url + "/ui/history", None)[0] == 401
    assert _get(url + "/ui/history", "not-the-secret")[0] == 401
    status, history = _get(url + f"/ui/history?namespace={namespace}", secret)
    assert status == 200
    assert 'data-rollout="web-2"' in history
    assert f"Signed in as <strong>{username}</strong>" in history
    status, page = _get(url + f"/ui/namespaces/{namespace}/rollouts/web-2", secret)
    assert status == 200
    assert re.findall(r'data-command="([a-z]+)"', page) == ["approve", "promote", "abort"]
    path = f"/api/v1/namespaces/{namespace}/rollouts/web-2/approve"
    status, done = _get(url + path, secret, "POST", b'{"comment": "from my laptop"}')
    assert status == 202, done
    assert json.loads(done)["actor"] == username
    rollout = KubeRolloutStore(kube).get(Ref(namespace, "web-2"))
    assert rollout is not None
    (command,) = commands.decode(dict(rollout.metadata.annotations))
    assert (command.kind, command.actor, command.comment) == ("approve", username, "from my laptop")
