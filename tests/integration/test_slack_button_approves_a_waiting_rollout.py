"""On the real API server: a Rollout waits at its beforeStart gate; the controller posts the
Slack message with interactive buttons to a local server playing Slack's Web API
(chat.postMessage with the bot token) and keeps its ts in status; Slack (the stand-in, signing
like Slack) sends the press of Approve to canary's HTTP API, which maps the Slack user to a
Kubernetes user, asks the real API server's RBAC (SubjectAccessReview), and writes the command;
the controller passes the gate, records the approval naming both identities, and updates the
same message (chat.update). A replayed press, a forged one and a second press give nothing
more; a Slack user RBAC refuses is told which permission is missing."""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from canary.adapters.kube.access import KubeAccessReview
from canary.adapters.kube.events import KubeEventRecorder
from canary.adapters.kube.objects import CustomObjects
from canary.adapters.kube.rollouts import KubeRolloutStore
from canary.adapters.kube.workloads import KubeWorkloads
from canary.adapters.metrics.prometheus import PrometheusMetrics
from canary.adapters.notifiers.policy import PolicyNotifier
from canary.adapters.notifiers.slack import SlackWebApi
from canary.adapters.routers.httproute import HTTPRouteRouter
from canary.api import app, server
from canary.api.metrics import ControllerMetrics
from canary.api.slack import Slack
from canary.core import chat
from canary.model.rollout import Rollout
from canary.ports import Ref
from canary.runtime.clock import SystemClock
from canary.runtime.controller import Controller, start_thread
from canary.runtime.guard import GuardedReconciler
from canary.runtime.messages import MessageLedger
from canary.runtime.outbox import OutboxWorker
from tests.integration.conftest import Cluster
from tests.slack import SIGNING_SECRET, TEAM, FakeSlack, button_press, signed

pytestmark = pytest.mark.integration

CHAT_KEY = "a-chat-key-of-its-own"
IDENTITIES = chat.SlackIdentities.model_validate(
    {
        "workspace": TEAM,
        "users": {
            "U0ALICE": {"username": "alice@corp.example"},
            "U0BOB": {"username": "bob@corp.example"},
        },
    }
)
ALICE = "slack:U0ALICE (alice) as alice@corp.example"


def _app(kube: client.ApiClient, namespace: str) -> None:
    labels = {"app": "web"}
    apps: Any = client.AppsV1Api(kube)
    core: Any = client.CoreV1Api(kube)
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "web:1"}]},
                },
            },
        },
    )
    core.create_namespaced_service(
        namespace,
        {"metadata": {"name": "web"}, "spec": {"selector": labels, "ports": [{"port": 80}]}},
    )


def _approvers(kube: client.ApiClient, namespace: str) -> None:
    """alice may approve Rollouts in the namespace (as the chart's canary-approver role
    allows); bob may only read them."""
    rbac: Any = client.RbacAuthorizationV1Api(kube)
    rules = {
        "approver": [
            {"apiGroups": ["canary.dev"], "resources": ["rollouts"], "verbs": ["get", "list"]},
            {"apiGroups": ["canary.dev"], "resources": ["rollouts/approve"], "verbs": ["create"]},
        ],
        "reader": [{"apiGroups": ["canary.dev"], "resources": ["rollouts"], "verbs": ["get"]}],
    }
    for role, user in (("approver", "alice@corp.example"), ("reader", "bob@corp.example")):
        rbac.create_namespaced_role(namespace, {"metadata": {"name": role}, "rules": rules[role]})
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": role},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}
                ],
            },
        )


def _until(check: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def test_an_approval_from_a_slack_button_moves_a_waiting_rollout(
    cluster: Cluster, kube: client.ApiClient, namespace: str
) -> None:
    """The button's press passes the gate and the approval names the Slack user and the
    Kubernetes user; replayed, forged and repeated presses and an unauthorised user do not."""
    _app(kube, namespace)
    _approvers(kube, namespace)
    slack = FakeSlack()
    rollout = {
        "apiVersion": "canary.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web-2"},
        "spec": {
            "targetRef": {"name": "web"},
            "service": {"name": "web", "port": 80},
            "release": {"images": {"web": "web:2"}},
            "steps": [{"setWeight": 50}],
            "approvals": {"beforeStart": True},
            "notifications": [{"type": "slack", "channel": "C0RELEASES"}],
        },
    }
    client.CustomObjectsApi(kube).create_namespaced_custom_object(
        "canary.dev", "v1alpha1", namespace, "rollouts", rollout
    )
    store = KubeRolloutStore(kube)
    clock = SystemClock()
    ref = Ref(namespace, "web-2")

    web = SlackWebApi("xoxb-bot-token", base_url=slack.url + "/api/", response_origins=(slack.url,))
    courier = PolicyNotifier(
        lambda found: tuple(found.spec.notifications or ()),
        lambda _ns, _ref: None,
        link_secret=CHAT_KEY,
        interactive=True,
        web=web,
        remember=MessageLedger(store).remember,
    )
    deliveries = OutboxWorker(store, courier, clock)
    reconciler = GuardedReconciler(
        store,
        KubeWorkloads(kube),
        {"HTTPRoute": HTTPRouteRouter(functools.partial(CustomObjects, kube))},
        KubeEventRecorder(kube),
        clock,
    )
    metrics = PrometheusMetrics(cluster.prometheus_url)
    controller = Controller(
        reconciler, store, metrics, clock, namespace=namespace, on_notify=deliveries.wake
    )
    api = app.Api(
        store=store,
        annotator=store,
        access=KubeAccessReview(kube),
        ready=lambda: True,
        metrics=ControllerMetrics(store),
        link_secret=CHAT_KEY,
        slack=Slack(SIGNING_SECRET, lambda: IDENTITIES, respond=web.respond),
    )
    running = server.start(app.build(api), host="127.0.0.1", port=0)
    stop = threading.Event()
    worker = start_thread(lambda: controller.run_worker(stop), "worker")
    delivering = start_thread(lambda: deliveries.run(stop, idle=0.2), "outbox")

    def current() -> Rollout:
        found = store.get(ref)
        assert found is not None
        return found

    def press(user: str, value: str) -> tuple[int, str]:
        before = len(slack.answers())
        form = button_press(value, user, user[2:].lower(), slack.response_url)
        status = signed(running.url + "/slack/actions", form).send().status
        answers = slack.answers()
        return status, answers[-1] if len(answers) > before else ""

    try:
        controller.resync()
        _until(lambda: current().status.phase == "WaitingApproval", "the beforeStart gate")
        _until(lambda: bool(slack.calls("chat.postMessage")), "the Slack message")
        (message,) = slack.calls("chat.postMessage")
        assert (message["channel"], message["_auth"]) == ("C0RELEASES", "Bearer xoxb-bot-token")
        _until(lambda: bool(current().status.chat.slack), "the message's ts in status")
        (posted,) = current().status.chat.slack
        assert posted.channel == "C0RELEASES"
        buttons = {e["action_id"]: e["value"] for e in message["blocks"][2]["elements"]}
        assert set(buttons) == {"canary-approve", "canary-promote", "canary-abort"}
        approve = buttons["canary-approve"]

        status, refused = press("U0BOB", approve)
        assert status == 200
        assert refused == (
            "slack:U0BOB (bob) as bob@corp.example may not create rollouts/approve.canary.dev "
            f"in namespace {namespace}"
        )
        forged = signed(
            running.url + "/slack/actions",
            button_press(approve, "U0ALICE", "alice", slack.response_url),
            secret="not-the-signing-secret",
        )
        assert forged.send().status == 401

        form = button_press(approve, "U0ALICE", "alice", slack.response_url)
        request = signed(running.url + "/slack/actions", form)
        assert request.send().status == 200
        assert slack.answers()[-1] == f"approve given to {namespace}/web-2 by {ALICE}"
        assert request.send().status == 401  # the same signed request again: a replay

        def moved() -> bool:
            controller.resync()  # no watch here: wake the controller as the watch would
            return current().status.phase != "WaitingApproval"

        _until(moved, "the gate to pass")
        (approval,) = current().status.approvals
        assert (approval.gate, approval.decision, approval.actor) == (
            "beforeStart",
            "Approved",
            ALICE,
        )
        status, again = press("U0ALICE", approve)
        assert again.startswith(f"already approved by {ALICE} at ")
        annotation = json.loads(current().metadata.annotations["canary.dev/approve"])
        assert annotation["actor"] == ALICE
        assert len(current().status.approvals) == 1
        _until(lambda: bool(slack.calls("chat.update")), "the message to be updated")
        updates = slack.calls("chat.update")
        assert {(u["channel"], u["ts"]) for u in updates} == {("C0RELEASES", posted.ts)}
        assert any("Approved" in u["text"] for u in updates)
        assert len(slack.calls("chat.postMessage")) == 1
    finally:
        stop.set()
        worker.join(timeout=10)
        delivering.join(timeout=10)
        running.stop()
        metrics.close()
        slack.stop()
