"""A local HTTP server playing Slack, for the tests: it records what canary sends to Slack (answers
to ``response_url``, Web API calls such as ``chat.postMessage`` and ``chat.update``), and sends
interactivity requests and slash commands to canary signed the way Slack signs them (v0
HMAC-SHA256 over ``v0:<timestamp>:<body>`` with the app's signing secret)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

from tests.local_http import LocalServer, QuietHandler

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM = "T0CANARY"


@dataclass
class Answer:
    """canary's HTTP answer to a request from Slack."""

    status: int
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


class FakeSlack:
    """Slack's side: records what it receives, signs what it sends."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.received: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        self.next_ts = 1795248000
        fake = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    body: Any = json.loads(raw or "{}")
                else:
                    body = {k: v[0] for k, v in parse_qs(raw).items()}
                body = {**body, "_auth": self.headers.get("Authorization", "")}
                with fake.lock:
                    fake.received.append((self.path, body))
                    fake.next_ts += 1
                    ts = f"{fake.next_ts}.000100"
                answer = {"ok": True, "channel": body.get("channel", ""), "ts": body.get("ts", ts)}
                if self.path.endswith("usergroups.users.list"):
                    answer = {"ok": True, "users": fake.groups.get(body.get("usergroup"), [])}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.groups: dict[str, list[str]] = {}
        self.server = LocalServer(Handler, host)
        self.url = self.server.url

    def stop(self) -> None:
        self.server.stop()

    @property
    def response_url(self) -> str:
        return f"{self.url}/actions/T0CANARY/1/respond"

    def answers(self) -> list[str]:
        """The texts canary posted to response_url, in order."""
        with self.lock:
            return [b["text"] for p, b in self.received if p == "/actions/T0CANARY/1/respond"]

    def calls(self, method: str) -> list[Any]:
        """The Web API calls of ``method`` (``chat.update``) canary made, in order."""
        with self.lock:
            return [b for p, b in self.received if p == f"/api/{method}"]


def signature(body: str, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    """The X-Slack-Signature Slack sends with ``body`` at ``timestamp``."""
    message = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Signed:
    """One request as Slack would send it; ``send`` may be called again to replay it."""

    url: str
    body: str
    headers: dict[str, str]

    def send(self) -> Answer:
        request = urllib.request.Request(
            self.url, data=self.body.encode(), method="POST", headers=self.headers
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return Answer(response.status, response.read().decode())
        except urllib.error.HTTPError as error:
            with error:
                return Answer(error.code, error.read().decode())


def signed(
    url: str,
    form: dict[str, str],
    *,
    timestamp: int | None = None,
    secret: str = SIGNING_SECRET,
) -> Signed:
    """``form`` URL-encoded and signed like Slack signs it (now, unless ``timestamp``)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    body = urlencode(form)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(stamp),
        "X-Slack-Signature": signature(body, stamp, secret),
    }
    return Signed(url, body, headers)


def button_press(
    value: str, user: str, username: str, response_url: str, *, team: str = TEAM
) -> dict[str, str]:
    """The form of a block_actions request for a press of the button whose value is ``value``."""
    payload = {
        "type": "block_actions",
        "team": {"id": team, "domain": "canary"},
        "user": {"id": user, "username": username, "name": username, "team_id": team},
        "api_app_id": "A0CANARY",
        "container": {"type": "message", "channel_id": "C0RELEASES", "message_ts": "1.2"},
        "channel": {"id": "C0RELEASES", "name": "releases"},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": "canary-approve",
                "block_id": "b1",
                "value": value,
                "action_ts": f"{time.time_ns() // 1000 / 1e6:.6f}",  # each press differs
            }
        ],
    }
    return {"payload": json.dumps(payload)}


def slash(
    text: str, user: str, username: str, response_url: str, *, team: str = TEAM
) -> dict[str, str]:
    """The form of a ``/canary`` slash command."""
    return {
        "token": "deprecated",
        "team_id": team,
        "channel_id": "C0RELEASES",
        "user_id": user,
        "user_name": username,
        "command": "/canary",
        "text": text,
        "response_url": response_url,
        "trigger_id": str(time.time_ns()),  # each command differs
    }
