"""Webhook, Slack and per-policy notifiers deliver to a real HTTP receiver on this machine's
non-loopback address (allowed the way an operator allows a private receiver), and drop (never
raise) when the receiver fails, refuses, or is too slow."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from canary.adapters.notifiers import slack, webhook
from canary.adapters.notifiers.policy import PolicyNotifier
from canary.core import chat, links, outbound
from canary.core.vocabulary import Event
from canary.errors import ApiUnavailable
from canary.model.policy import Notification, SecretKeyRef
from tests.fake_store import make

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
ROLLOUT = make("web-2", phase="WaitingApproval", canaryWeight=20, currentStepIndex=2)
WAITING = Event("Normal", "AwaitingApproval", "step 3: waiting for approval")
FAILED = Event("Warning", "AnalysisFailed", "step 2 failed analysis: success rate 91%")


def local_address() -> str:
    """This machine's address on its default route (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("192.0.2.123", 9))
        address: str = sock.getsockname()[0]
    assert not address.startswith("127."), "the tests need a non-loopback address"
    return address


LOCAL = local_address()
ALLOW_LOCAL = outbound.Policy.parse([f"{LOCAL}/32"])


class Receiver:
    """An HTTP server that records each POST (path, JSON body) and answers ``status``."""

    def __init__(self) -> None:
        self.received: list[tuple[str, Any]] = []
        self.status = 200
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay)
                receiver.received.append((self.path, json.loads(body)))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer((LOCAL, 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{LOCAL}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}
        )
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    served = Receiver()
    try:
        yield served
    finally:
        served.stop()


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind((LOCAL, 0))
        return f"http://{LOCAL}:{sock.getsockname()[1]}/hook"


def test_webhook_posts_rollout_phase_reason_and_message(receiver: Receiver) -> None:
    """The generic webhook receives the rollout's identity, phase, weight and the event."""
    webhook.WebhookNotifier(receiver.url + "/hooks/canary", policy=ALLOW_LOCAL).record(
        ROLLOUT, FAILED
    )
    assert receiver.received == [
        (
            "/hooks/canary",
            {
                "rollout": {"namespace": "test", "name": "web-2", "target": "podinfo"},
                "phase": "WaitingApproval",
                "canaryWeight": 20,
                "currentStepIndex": 2,
                "type": "Warning",
                "reason": "AnalysisFailed",
                "message": "step 2 failed analysis: success rate 91%",
            },
        )
    ]


def test_failed_deliveries_are_dropped_not_raised(receiver: Receiver) -> None:
    """A 500, a refused connection, a timeout and a malformed URL all return False quietly."""
    receiver.status = 500
    assert not webhook.post_json(receiver.url, {"a": 1}, policy=ALLOW_LOCAL)
    assert len(receiver.received) == 1
    assert not webhook.post_json(_closed_port(), {"a": 1}, policy=ALLOW_LOCAL)
    receiver.status, receiver.delay = 200, 0.5
    assert not webhook.post_json(receiver.url, {"a": 1}, timeout=0.1, policy=ALLOW_LOCAL)
    assert not webhook.post_json("not a url", {"a": 1}, policy=ALLOW_LOCAL)
    receiver.delay = 0.0
    assert webhook.post_json(receiver.url, {"a": 1}, policy=ALLOW_LOCAL)


def test_slack_message_has_text_and_signed_approve_and_abort_buttons(receiver: Receiver) -> None:
    """A rollout waiting for approval gets Approve and Abort buttons that are valid API links."""
    notifier = slack.SlackNotifier(
        receiver.url + "/services/T0/B0/xyz",
        api_url="https://canary.example",
        link_secret="s3cret",
        clock=lambda: NOW,
        policy=ALLOW_LOCAL,
    )
    notifier.record(ROLLOUT, WAITING)
    ((path, message),) = receiver.received
    assert path == "/services/T0/B0/xyz"
    assert message["text"] == (
        ":large_green_circle: canary test/web-2 (podinfo): AwaitingApproval: "
        "step 3: waiting for approval"
    )
    section, actions = message["blocks"]
    assert section["text"]["text"] == message["text"]
    approve, abort = actions["elements"]
    assert (approve["text"]["text"], approve["style"]) == ("Approve", "primary")
    assert (abort["text"]["text"], abort["style"]) == ("Abort", "danger")
    for button, kind in ((approve, "approve"), (abort, "abort")):
        url = urlsplit(button["url"])
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        assert url.path == links.path("test", "web-2", kind)
        ticket = links.ticket("s3cret", query["t"], namespace="test", name="web-2", kind=kind)
        assert ticket is not None
        assert (ticket.stage, ticket.expires) == ("beforeStart#0", int(NOW.timestamp()) + 86400)


def test_interactive_slack_buttons_carry_signed_tickets_for_the_current_stage(
    receiver: Receiver,
) -> None:
    """With the Slack app's interactivity, the buttons are Slack buttons whose values are
    tickets for the Rollout's stage, under the chat key; the message says where the release is."""
    notifier = slack.SlackNotifier(
        receiver.url + "/services/T0/B0/xyz",
        link_secret="s3cret",
        interactive=True,
        clock=lambda: NOW,
        policy=ALLOW_LOCAL,
    )
    notifier.record(ROLLOUT, WAITING)
    ((_, message),) = receiver.received
    section, context, actions = message["blocks"]
    assert section["text"]["text"] == message["text"]
    assert context["elements"][0]["text"] == "WaitingApproval · canary 20%"
    kinds = [e["action_id"] for e in actions["elements"]]
    assert kinds == ["canary-approve", "canary-promote", "canary-abort"]
    for element in actions["elements"]:
        ticket = chat.read("s3cret", element["value"])
        assert ticket is not None
        assert (ticket.namespace, ticket.name, ticket.stage) == ("test", "web-2", "beforeStart#0")
        assert f"canary-{ticket.kind}" == element["action_id"]
    assert "confirm" in actions["elements"][2]
    paused = make("web-2", phase="Paused", currentStepIndex=1)
    assert [e["action_id"] for e in slack.action_buttons(paused, "k", NOW)] == [
        "canary-resume",
        "canary-abort",
    ]
    assert slack.action_buttons(make("web-2", phase="Succeeded"), "k", NOW) == []


def test_slack_offers_no_buttons_without_the_api_or_for_final_events(receiver: Receiver) -> None:
    """Without the API's URL and token, or after the end, the message is text only."""
    slack.SlackNotifier(receiver.url, policy=ALLOW_LOCAL).record(ROLLOUT, WAITING)
    done = Event("Warning", "RolledBack", "all traffic on stable")
    slack.SlackNotifier(
        receiver.url, api_url="http://x", link_secret="s", policy=ALLOW_LOCAL
    ).record(ROLLOUT, done)
    assert [list(m) for _, m in receiver.received] == [["text"], ["text"]]
    assert receiver.received[1][1]["text"].startswith(":warning:")


def test_policy_notifier_sends_each_listed_notification(receiver: Receiver) -> None:
    """slack, msteams and webhook entries each get their format; a Secret URL is resolved."""
    notifications = [
        Notification(type="slack", url=receiver.url + "/slack"),
        Notification(type="msteams", url=receiver.url + "/teams"),
        Notification.model_validate({"type": "webhook", "urlFrom": {"name": "hook", "key": "url"}}),
    ]
    secrets = {("test", "hook", "url"): receiver.url + "/hook"}

    def secret(namespace: str, ref: SecretKeyRef) -> str | None:
        return secrets.get((namespace, ref.name, ref.key))

    PolicyNotifier(lambda _: notifications, secret, policy=ALLOW_LOCAL).record(ROLLOUT, FAILED)
    paths = [p for p, _ in receiver.received]
    assert paths == ["/slack", "/teams", "/hook"]
    assert set(receiver.received[1][1]) == {"text"}
    assert receiver.received[2][1]["reason"] == "AnalysisFailed"


def test_policy_notifier_drops_what_it_cannot_resolve(receiver: Receiver) -> None:
    """A missing Secret, a Secret read error, or an unreadable policy drops quietly."""
    from_secret = Notification.model_validate(
        {"type": "webhook", "urlFrom": {"name": "gone", "key": "url"}}
    )

    def missing(namespace: str, ref: SecretKeyRef) -> str | None:
        return None

    def broken(namespace: str, ref: SecretKeyRef) -> str | None:
        raise ApiUnavailable("down")

    def no_policy(rollout: object) -> list[Notification]:
        raise ApiUnavailable("down")

    PolicyNotifier(lambda _: [from_secret], missing, policy=ALLOW_LOCAL).record(ROLLOUT, FAILED)
    PolicyNotifier(lambda _: [from_secret], broken, policy=ALLOW_LOCAL).record(ROLLOUT, FAILED)
    PolicyNotifier(no_policy, missing, policy=ALLOW_LOCAL).record(ROLLOUT, FAILED)
    assert receiver.received == []
