"""The policy notifier delivers outbox entries (webhook document, Slack message, Teams card) to a
real HTTP receiver on this machine's non-loopback address (allowed the way an operator allows a
private receiver), and reports (never raises) a receiver that fails, refuses, or is too slow,
saying whether another attempt can help."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from canary.adapters.notifiers import slack, webhook
from canary.adapters.notifiers.policy import PolicyNotifier
from canary.core import chat, links, notice, outbound, outbox
from canary.core.vocabulary import Event
from canary.errors import ApiUnavailable
from canary.model.policy import Notification, SecretKeyRef
from canary.model.status import OutboxEntry
from tests.fake_store import make
from tests.local_http import LocalServer, QuietHandler, local_address

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
ROLLOUT = make("web-2", phase="WaitingApproval", canaryWeight=20, currentStepIndex=2)
WAITING = Event("Normal", "AwaitingApproval", "step 3: waiting for approval")
FAILED = Event("Warning", "AnalysisFailed", "step 2 failed analysis: success rate 91%")


LOCAL = local_address()
ALLOW_LOCAL = outbound.Policy.parse([f"{LOCAL}/32"])


class Receiver:
    """An HTTP server that records each POST (path, JSON body) and answers ``status``."""

    def __init__(self) -> None:
        self.received: list[tuple[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.status = 200
        self.delay = 0.0
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay)
                receiver.received.append((self.path, json.loads(body)))
                receiver.headers.append({**self.headers, "body": body.decode()})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = LocalServer(Handler, LOCAL)
        self.url = self.server.url

    def stop(self) -> None:
        self.server.stop()


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


def entries(notifications: list[Notification], event: Event) -> list[OutboxEntry]:
    """What the reconcile records for ``event``: one entry per notification that wants it."""
    status = outbox.record(
        ROLLOUT.status, [event], notifications, uid="uid-7", now=NOW, step_count=5
    )
    return status.outbox.pending


def notifier(notifications: list[Notification], **secrets: str) -> PolicyNotifier:
    def secret(namespace: str, ref: SecretKeyRef) -> str | None:
        assert namespace == "test"
        return secrets.get(ref.name)

    return PolicyNotifier(
        lambda _: notifications,
        secret,
        api_url="https://canary.example",
        link_secret="s3cret",
        policy=ALLOW_LOCAL,
        clock=lambda: NOW,
    )


def test_webhook_gets_the_versioned_document_signed_with_its_idempotency_key(
    receiver: Receiver,
) -> None:
    """The webhook receives canary.dev/notification/v1, the event's key, and a valid signature."""
    hook = Notification.model_validate(
        {
            "type": "webhook",
            "url": receiver.url + "/hooks/canary",
            "signingSecretFrom": {"name": "signing", "key": "key"},
        }
    )
    (entry,) = entries([hook], FAILED)
    assert notifier([hook], signing="k3y").deliver(ROLLOUT, entry) == outbox.Attempt(True)
    ((path, document),) = receiver.received
    assert path == "/hooks/canary"
    assert document["schema"] == notice.SCHEMA
    assert document["id"] == "uid-7:1"
    assert (document["phase"], document["weights"]["canary"]) == ("WaitingApproval", 20)
    assert document["event"]["reason"] == "AnalysisFailed"
    assert document["links"]["dashboard"] == (
        "https://canary.example/ui/namespaces/test/rollouts/web-2"
    )
    headers = receiver.headers[0]
    assert headers["Idempotency-Key"] == "uid-7:1"
    timestamp = int(headers["X-Canary-Timestamp"])
    assert timestamp == int(NOW.timestamp())
    body = headers["body"].encode()
    assert headers["X-Canary-Signature"] == notice.signature(b"k3y", timestamp, body)


def test_an_unsigned_webhook_carries_no_signature(receiver: Receiver) -> None:
    """Without a signing Secret there is no signature header (and nothing to fake one from)."""
    hook = Notification(type="webhook", url=receiver.url)
    (entry,) = entries([hook], FAILED)
    assert notifier([hook]).deliver(ROLLOUT, entry).ok
    assert "X-Canary-Signature" not in receiver.headers[0]


def test_failed_deliveries_say_whether_to_try_again(receiver: Receiver) -> None:
    """5xx, 429, refused connections, timeouts and DNS are retried; 4xx and refused URLs are not."""
    receiver.status = 500
    assert webhook.post(receiver.url, b"{}", policy=ALLOW_LOCAL) == outbox.Attempt(
        False, f"{LOCAL} answered 500"
    )
    receiver.status = 429
    assert not webhook.post(receiver.url, b"{}", policy=ALLOW_LOCAL).permanent
    receiver.status = 404
    assert webhook.post(receiver.url, b"{}", policy=ALLOW_LOCAL).permanent
    assert len(receiver.received) == 3
    closed = webhook.post(_closed_port(), b"{}", policy=ALLOW_LOCAL)
    assert (closed.ok, closed.permanent) == (False, False)
    receiver.status, receiver.delay = 200, 0.5
    slow = webhook.post(receiver.url, b"{}", timeout=0.1, policy=ALLOW_LOCAL)
    assert (slow.ok, slow.permanent) == (False, False)
    unresolved = webhook.post("http://unresolvable.invalid/x", b"{}", policy=ALLOW_LOCAL)
    assert (unresolved.ok, unresolved.permanent) == (False, False)
    malformed = webhook.post("not a url", b"{}", policy=ALLOW_LOCAL)
    assert (malformed.ok, malformed.permanent) == (False, True)
    receiver.delay = 0.0
    assert webhook.post_json(receiver.url, {"a": 1}, policy=ALLOW_LOCAL)
    assert not webhook.post_json(_closed_port(), {"a": 1}, policy=ALLOW_LOCAL)


def test_slack_message_has_text_and_signed_approve_and_abort_buttons() -> None:
    """A rollout waiting for approval gets Approve and Abort buttons that are valid API links."""
    message = slack.SlackNotifier(
        "https://hooks.slack.com/services/T0/B0/xyz",
        api_url="https://canary.example",
        link_secret="s3cret",
        clock=lambda: NOW,
    ).message(ROLLOUT, WAITING)
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


def test_interactive_slack_buttons_carry_signed_tickets_for_the_current_stage() -> None:
    """With the Slack app's interactivity, the buttons are Slack buttons whose values are
    tickets for the Rollout's stage, under the chat key; the message says where the release is."""
    message = slack.SlackNotifier(
        "https://hooks.slack.com/services/T0/B0/xyz",
        link_secret="s3cret",
        interactive=True,
        clock=lambda: NOW,
    ).message(ROLLOUT, WAITING)
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


def test_slack_offers_no_buttons_without_the_api_or_for_final_events() -> None:
    """Without the API's URL and token, or after the end, the message is text only."""
    plain = slack.SlackNotifier("https://hooks.slack.com/x").message(ROLLOUT, WAITING)
    done = Event("Warning", "RolledBack", "all traffic on stable")
    final = slack.SlackNotifier("https://hooks.slack.com/x", api_url="http://x", link_secret="s")
    message = final.message(ROLLOUT, done)
    assert [list(plain), list(message)] == [["text"], ["text"]]
    assert message["text"].startswith(":warning:")


def test_policy_notifier_sends_each_listed_notification_its_format(receiver: Receiver) -> None:
    """slack, msteams and webhook entries each get their format; a Secret URL is resolved."""
    notifications = [
        Notification(type="slack", url=receiver.url + "/slack"),
        Notification(type="msteams", url=receiver.url + "/teams"),
        Notification.model_validate({"type": "webhook", "urlFrom": {"name": "hook", "key": "url"}}),
    ]
    sender = notifier(notifications, hook=receiver.url + "/hook")
    for entry in entries(notifications, WAITING):
        assert sender.deliver(ROLLOUT, entry).ok
    paths = [p for p, _ in receiver.received]
    assert paths == ["/slack", "/teams", "/hook"]
    assert receiver.received[0][1]["text"].endswith(
        "AwaitingApproval: step 3: waiting for approval"
    )
    card = receiver.received[1][1]["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard"
    assert [a["title"] for a in card["actions"]] == ["Open", "Approve", "Abort"]
    assert receiver.received[2][1]["event"]["reason"] == "AwaitingApproval"
    assert {h["Idempotency-Key"] for h in receiver.headers} == {"uid-7:1"}


def test_policy_notifier_reports_what_it_cannot_resolve(receiver: Receiver) -> None:
    """A missing or unreadable Secret or policy fails for now; a receiver gone from the policy
    fails for good; nothing raises and nothing is sent."""
    from_secret = Notification.model_validate(
        {"type": "webhook", "urlFrom": {"name": "gone", "key": "url"}}
    )
    (entry,) = entries([from_secret], FAILED)

    def broken(namespace: str, ref: SecretKeyRef) -> str | None:
        raise ApiUnavailable("down")

    def no_policy(rollout: object) -> list[Notification]:
        raise ApiUnavailable("down")

    missing = notifier([from_secret]).deliver(ROLLOUT, entry)
    unreadable = PolicyNotifier(lambda _: [from_secret], broken).deliver(ROLLOUT, entry)
    no_read = PolicyNotifier(no_policy, broken).deliver(ROLLOUT, entry)
    removed = notifier([]).deliver(ROLLOUT, entry)
    retyped = notifier([Notification(type="slack", url=receiver.url)]).deliver(ROLLOUT, entry)
    assert [(a.ok, a.permanent) for a in (missing, unreadable, no_read)] == [(False, False)] * 3
    assert [(a.ok, a.permanent) for a in (removed, retyped)] == [(False, True)] * 2
    assert receiver.received == []


def test_a_signing_secret_that_cannot_be_read_sends_nothing_unsigned(receiver: Receiver) -> None:
    """A webhook that must be signed is not sent without its key."""
    hook = Notification.model_validate(
        {"type": "webhook", "url": receiver.url, "signingSecretFrom": {"name": "x", "key": "k"}}
    )
    (entry,) = entries([hook], FAILED)
    attempt = notifier([hook]).deliver(ROLLOUT, entry)
    assert (attempt.ok, attempt.permanent) == (False, False)
    assert receiver.received == []
