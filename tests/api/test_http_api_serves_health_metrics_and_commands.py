"""The HTTP API, served on 127.0.0.1 by a real server, over an in-memory Rollout store."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from canary.api import server
from canary.api.metrics import Registry
from canary.core import commands, links
from canary.errors import ApiUnavailable, TerminalError
from canary.ports import Ref
from tests.fake_store import MemoryRolloutStore, make

NOW = datetime(2026, 11, 21, 8, 0, 0, 123456, tzinfo=UTC)
TOKEN = "s3cret"


@dataclass
class Reply:
    status: int
    body: str
    content_type: str

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> Reply:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return Reply(
                response.status, response.read().decode(), response.headers["Content-Type"]
            )
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, error.read().decode(), error.headers["Content-Type"])


AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@dataclass
class Served:
    url: str
    store: MemoryRolloutStore
    api: server.Api
    ready: list[bool]


@pytest.fixture
def served() -> Iterator[Served]:
    store = MemoryRolloutStore(
        make(
            "web-2",
            phase="WaitingApproval",
            canaryWeight=20,
            message="waiting at step-2",
            startedAt="2026-11-21T09:00:00+01:00",
        ),
        make("web-1", phase="Succeeded"),
        make("api-7", namespace="other", phase="Progressing"),
    )
    ready = [False]
    api = server.Api(
        store=store,
        annotator=store,
        ready=lambda: ready[0],
        registry=Registry(),
        token=TOKEN,
        clock=lambda: NOW,
    )
    running = server.start(api, host="127.0.0.1", port=0)
    try:
        yield Served(running.url, store, api, ready)
    finally:
        running.stop()


def test_healthz_is_always_ok_and_readyz_follows_the_callable(served: Served) -> None:
    """/healthz answers 200; /readyz is 503 until ready() turns true."""
    assert call(served.url + "/healthz").status == 200
    assert call(served.url + "/readyz").status == 503
    served.ready[0] = True
    assert call(served.url + "/readyz").body == "ok\n"


def test_metrics_expose_rollouts_by_phase_and_counters(served: Served) -> None:
    """/metrics is Prometheus text with canary_rollouts{namespace,phase} and the counters."""
    served.api.registry.reconciles.inc()
    served.api.registry.reconcile_errors.inc(error="Conflict")
    reply = call(served.url + "/metrics")
    assert reply.content_type.startswith("text/plain; version=0.0.4")
    lines = reply.body.splitlines()
    assert "# TYPE canary_rollouts gauge" in lines
    assert 'canary_rollouts{namespace="test",phase="WaitingApproval"} 1' in lines
    assert 'canary_rollouts{namespace="other",phase="Progressing"} 1' in lines
    assert "canary_reconcile_total 1" in lines
    assert 'canary_reconcile_errors_total{error="Conflict"} 1' in lines
    assert "canary_api_commands_total 0" in lines


def test_api_needs_the_bearer_token(served: Served) -> None:
    """Without the token, or with another, /api/ answers 401."""
    assert call(served.url + "/api/v1/rollouts").status == 401
    wrong = {"Authorization": "Bearer nope"}
    assert call(served.url + "/api/v1/rollouts", headers=wrong).status == 401
    post = call(served.url + links.path("test", "web-2", "approve"), "POST", b"{}")
    assert post.status == 401


def test_rollout_list_summarises_each_rollout(served: Served) -> None:
    """GET /api/v1/rollouts lists every Rollout (or one namespace's) for a dashboard."""
    every = call(served.url + "/api/v1/rollouts", headers=AUTH).json()["items"]
    assert [(i["namespace"], i["name"]) for i in every] == [
        ("other", "api-7"),
        ("test", "web-1"),
        ("test", "web-2"),
    ]
    test = call(served.url + "/api/v1/rollouts?namespace=test", headers=AUTH).json()["items"]
    assert test[1] == {
        "namespace": "test",
        "name": "web-2",
        "target": "podinfo",
        "phase": "WaitingApproval",
        "canaryWeight": 20,
        "currentStepIndex": 0,
        "message": "waiting at step-2",
        "createdAt": None,
        "startedAt": "2026-11-21T08:00:00Z",
        "finishedAt": None,
    }


def test_one_rollout_is_served_whole_or_404(served: Served) -> None:
    """GET a Rollout returns it as stored; a missing one or an unknown path is 404."""
    found = call(served.url + "/api/v1/namespaces/test/rollouts/web-2", headers=AUTH)
    assert found.json()["status"]["phase"] == "WaitingApproval"
    missing = call(served.url + "/api/v1/namespaces/test/rollouts/nope", headers=AUTH)
    assert missing.status == 404
    assert call(served.url + "/api/v2/things", headers=AUTH).status == 404


def test_approve_writes_the_command_annotation(served: Served) -> None:
    """POST approve with actor and comment writes canary.dev/approve and answers 202."""
    body = json.dumps({"actor": "alice", "comment": "ship it"}).encode()
    reply = call(served.url + links.path("test", "web-2", "approve"), "POST", body, AUTH)
    assert reply.status == 202
    assert reply.json()["at"] == "2026-11-21T08:00:00.123456Z"
    rollout = served.store.get(Ref("test", "web-2"))
    assert rollout is not None
    (command,) = commands.decode(rollout.metadata.annotations)
    assert (command.kind, command.actor, command.comment, command.at) == (
        "approve",
        "alice",
        "ship it",
        NOW,
    )
    assert served.api.registry.commands.value(kind="approve") == 1


def test_commands_that_make_no_sense_are_refused(served: Served) -> None:
    """approve on a finished rollout is 409; a missing rollout 404; an unknown kind 404."""
    refused = call(served.url + links.path("test", "web-1", "approve"), "POST", b"{}", AUTH)
    assert refused.status == 409
    assert "Succeeded" in refused.json()["error"]
    assert call(served.url + links.path("test", "x", "abort"), "POST", b"{}", AUTH).status == 404
    unknown = call(served.url + links.path("test", "web-2", "explode"), "POST", b"{}", AUTH)
    assert unknown.status == 404
    rollout = served.store.get(Ref("test", "web-1"))
    assert rollout is not None
    assert rollout.metadata.annotations == {}


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'{"actor": 5}', b"x" * (server.MAX_BODY + 1)]
)
def test_malformed_bodies_are_400(served: Served, body: bytes) -> None:
    """A body that is not a JSON object with string fields, or too big, is refused."""
    reply = call(served.url + links.path("test", "web-2", "abort"), "POST", body, AUTH)
    assert reply.status == 400


def test_json_sent_as_a_form_is_read_as_json(served: Served) -> None:
    """`curl -d '{...}'` labels JSON as a form; the actor in it is still the actor."""
    form = {**AUTH, "Content-Type": "application/x-www-form-urlencoded"}
    body = json.dumps({"actor": "bob"}).encode()
    reply = call(served.url + links.path("test", "web-2", "approve"), "POST", body, form)
    assert reply.json()["actor"] == "bob"


def test_an_empty_body_defaults_the_actor(served: Served) -> None:
    """Without a body the command is given by 'api'."""
    reply = call(served.url + links.path("other", "api-7", "abort"), "POST", None, AUTH)
    assert reply.json()["actor"] == "api"


def _signed(served: Served, kind: str, expires: datetime) -> str:
    return links.link(served.url, TOKEN, namespace="test", name="web-2", kind=kind, expires=expires)


def test_a_signed_link_shows_a_confirmation_page_then_gives_the_command(served: Served) -> None:
    """GET on a chat link only shows a form; POSTing the form gives the command."""
    url = _signed(served, "approve", NOW + timedelta(hours=1))
    page = call(url)
    assert page.status == 200
    assert "approve rollout test/web-2?" in page.body
    rollout = served.store.get(Ref("test", "web-2"))
    assert rollout is not None
    assert rollout.metadata.annotations == {}
    form = urlencode({"actor": "bob", "comment": "<ok>"}).encode()
    done = call(url, "POST", form, {"Content-Type": "application/x-www-form-urlencoded"})
    assert done.status == 202
    assert "approve given to test/web-2 by bob" in done.body
    rollout = served.store.get(Ref("test", "web-2"))
    assert rollout is not None
    assert commands.decode(rollout.metadata.annotations)[0].comment == "<ok>"


def test_expired_or_forged_links_do_nothing(served: Served) -> None:
    """An expired link, or one for another command, is 403 on GET and POST."""
    expired = _signed(served, "approve", NOW - timedelta(seconds=1))
    assert call(expired).status == 403
    assert call(expired, "POST", b"{}").status == 403
    forged = _signed(served, "approve", NOW + timedelta(hours=1)).replace("/approve?", "/abort?")
    assert call(forged).status == 403


def test_a_link_to_a_deleted_rollout_says_so(served: Served) -> None:
    """The confirmation page of a Rollout that no longer exists is 404."""
    url = _signed(served, "abort", NOW + timedelta(hours=1))
    del served.store.rollouts[Ref("test", "web-2")]
    assert call(url).status == 404
    refused = call(url, "POST", b"actor=x", {"Content-Type": "application/x-www-form-urlencoded"})
    assert refused.status == 404
    assert "not found" in refused.body


class BrokenStore(MemoryRolloutStore):
    """A store whose cluster is unreachable (transient) or misconfigured (terminal)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def list(self, namespace: str | None = None) -> list[Any]:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status"), [(ApiUnavailable("down"), 503), (TerminalError("rbac"), 500)]
)
def test_store_errors_become_503_or_500(error: Exception, status: int) -> None:
    """A transient store error is 503 (retry), any other canary error 500, both as JSON."""
    store = BrokenStore(error)
    api = server.Api(store=store, annotator=store, ready=lambda: True, registry=Registry())
    running = server.start(api, host="127.0.0.1", port=0)
    try:
        reply = call(running.url + "/api/v1/rollouts")
    finally:
        running.stop()
    assert reply.status == status
    assert reply.json()["error"] in ("down", "rbac")


def test_healthz_fails_once_the_worker_is_gone() -> None:
    """/healthz is 503 "worker stopped" when alive() turns false, so the kubelet restarts it."""
    alive = [True]
    api = server.Api(
        store=MemoryRolloutStore(),
        annotator=MemoryRolloutStore(),
        ready=lambda: True,
        registry=Registry(),
        alive=lambda: alive[0],
    )
    running = server.start(api, host="127.0.0.1", port=0)
    try:
        assert call(running.url + "/healthz").status == 200
        alive[0] = False
        reply = call(running.url + "/healthz")
        assert (reply.status, reply.body) == (503, "worker stopped\n")
    finally:
        running.stop()
