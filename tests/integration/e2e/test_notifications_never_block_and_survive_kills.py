"""Notifications go to real receivers on this machine while a release runs on the local control
plane: a Teams-like receiver gets Adaptive Cards, a webhook receiver checks every HMAC signature,
a receiver that hangs and one that fails at first do not hold the release up, failed deliveries
are retried, and across ten SIGKILLs of the controller every event reaches every receiver that
answers (at least once: duplicates carry the same idempotency key)."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.integration.e2e.conftest import GROUP, VERSION, Release
from tests.local_http import LocalServer, QuietHandler, local_address

pytestmark = pytest.mark.integration

LOCAL = local_address()
SIGNING_KEY = "a-receivers-shared-secret"
KILLS = 10


class Receiver:
    """A real HTTP receiver: records (idempotency key, headers, JSON body) of each POST it
    answers; ``behaviour`` decides the answer ("ok", "hang", "fail-first-3")."""

    def __init__(self, behaviour: str = "ok") -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.requests = 0
        self.released = threading.Event()
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests += 1
                if behaviour == "hang":
                    receiver.released.wait(120)
                    return
                if behaviour == "fail-first-3" and receiver.requests <= 3:
                    self.send_response(503)
                else:
                    receiver.received.append(
                        (self.headers["Idempotency-Key"], dict(self.headers), body)
                    )
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = LocalServer(Handler, LOCAL)
        self.url = f"{self.server.url}/hook"

    def keys(self) -> set[str]:
        """The idempotency keys of what was acknowledged."""
        return {key for key, _, _ in self.received}

    def stop(self) -> None:
        self.released.set()
        self.server.stop()


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    made = {
        "teams": Receiver(),
        "webhook": Receiver(),
        "hanging": Receiver("hang"),
        "failing": Receiver("fail-first-3"),
        "endings": Receiver(),
    }
    try:
        yield made
    finally:
        for receiver in made.values():
            receiver.stop()


def _notify(env: Release, receivers: dict[str, Receiver]) -> None:
    """The policy's notifications, the webhook's URL and signing key in the Secret the
    controller may read."""
    core: Any = client.CoreV1Api(env.api)
    core.create_namespaced_secret(
        env.namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="canary-notifications"),
            string_data={"url": receivers["webhook"].url, "signing": SIGNING_KEY},
        ),
    )
    secret = {"name": "canary-notifications"}
    notifications = [
        {"type": "msteams", "url": receivers["teams"].url},
        {
            "type": "webhook",
            "urlFrom": {**secret, "key": "url"},
            "signingSecretFrom": {**secret, "key": "signing"},
        },
        {"type": "webhook", "url": receivers["hanging"].url},
        {"type": "webhook", "url": receivers["failing"].url},
        {"type": "webhook", "url": receivers["endings"].url, "events": ["Promoted", "RolledBack"]},
    ]
    env.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        env.namespace,
        "rolloutpolicies",
        "podinfo",
        {"spec": {"notifications": notifications}},
    )


def _verified(headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does (docs/notifications.md): HMAC-SHA256 of "<timestamp>.<body>"."""
    timestamp = headers["X-Canary-Timestamp"]
    expected = hmac.new(
        SIGNING_KEY.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(f"sha256={expected}", headers["X-Canary-Signature"])


def test_notifications_arrive_despite_hanging_receivers_and_controller_kills(
    release_env: Callable[..., Release], receivers: dict[str, Receiver]
) -> None:
    """The release is promoted while one receiver hangs and ten SIGKILLs hit the controller;
    afterwards every event of the outbox reached every answering receiver, signed and carded."""
    env = release_env(controller_args=["--outbound-allow", f"{LOCAL}/32"])
    _notify(env, receivers)
    env.create("6.1.0")
    env.wait("6.1.0", {"Progressing"})
    for _ in range(KILLS):
        time.sleep(1.5)
        env.controller.kill(signal.SIGKILL)
        env.controller.start()
    done = env.wait("6.1.0", {"Succeeded", "RolledBack", "Failed"})
    assert done["status"]["phase"] == "Succeeded"

    uid = done["metadata"]["uid"]
    deadline = time.monotonic() + 90
    while True:
        status = env.rollout("6.1.0")["status"]
        events = status["outbox"]["sequence"]
        every = {f"{uid}:{n}" for n in range(1, events + 1)}
        answering = ("teams", "webhook", "failing")
        # The acknowledgements are written after a delivery round ends, and a round waits for
        # the hanging receiver's timeout: the status may trail what the receivers already hold.
        recorded = {e["receiver"] for e in status["outbox"]["pending"]} <= {2}
        delivered = all(receivers[r].keys() >= every for r in answering)
        if (delivered and recorded) or time.monotonic() > deadline:
            break
        time.sleep(1)
    for name in answering:
        assert receivers[name].keys() == every, (name, status["outbox"], env.controller.tail())

    documents = {key: json.loads(body) for key, _, body in receivers["webhook"].received}
    assert all(_verified(headers, body) for _, headers, body in receivers["webhook"].received)
    assert {d["schema"] for d in documents.values()} == {"canary.dev/notification/v1"}
    promoted = [d for d in documents.values() if d["event"]["reason"] == "Promoted"]
    assert [(d["phase"], d["weights"]["canary"]) for d in promoted] == [("Succeeded", 0)]
    assert promoted[0]["step"]["count"] == 3
    assert promoted[0]["release"]["images"][0]["tag"] == "6.1.0"

    for _, _, body in receivers["teams"].received:
        card = json.loads(body)["attachments"][0]
        assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
        assert card["content"]["type"] == "AdaptiveCard"
    assert {json.loads(b)["event"]["reason"] for _, _, b in receivers["endings"].received} == {
        "Promoted"
    }
    assert receivers["failing"].requests > len(every)  # its first answers were retried
    # The hanging receiver was tried (and timed out), and its notifications wait for it.
    hanging = [e for e in status["outbox"]["pending"] if e["receiver"] == 2]
    assert receivers["hanging"].requests >= 1
    assert hanging
    assert {e["receiver"] for e in status["outbox"]["pending"]} == {2}
    duplicates = sum(len(r.received) for r in receivers.values()) - sum(
        len(r.keys()) for r in receivers.values()
    )
    print(f"{events} events, {KILLS} kills, {duplicates} duplicate deliveries")
