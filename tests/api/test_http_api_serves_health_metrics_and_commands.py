"""The HTTP API, served by a real uvicorn on 127.0.0.1, over an in-memory Rollout store and an
in-memory access review (tokens → identities, RBAC-like grants)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from canary.api import app
from canary.core import chat, commands, links
from canary.errors import ApiUnavailable, TerminalError
from canary.ports import Ref
from tests.api.conftest import (
    ADMIN,
    APPROVER,
    LINK_SECRET,
    NOW,
    VIEWER,
    Reply,
    Served,
    call,
    serve,
)
from tests.fake_store import MemoryRolloutStore

JSON = {"Content-Type": "application/json"}


def is_problem(reply: Reply, status: int) -> bool:
    """Whether ``reply`` is a JSON problem document of ``status``."""
    document = reply.json()
    return (
        reply.status == status
        and reply.content_type == "application/problem+json"
        and document["status"] == status
        and isinstance(document["detail"], str)
        and bool(document["detail"])
    )


def test_healthz_is_always_ok_and_readyz_follows_the_callable(served: Served) -> None:
    """/healthz answers 200; /readyz is 503 until ready() turns true."""
    assert call(served.url + "/healthz").status == 200
    assert call(served.url + "/readyz").status == 503
    served.ready[0] = True
    assert call(served.url + "/readyz").body == "ok\n"


def test_api_needs_a_reviewed_token(served: Served) -> None:
    """Without a token, with an unknown one, or with another scheme, /api/ answers 401."""
    for token in (None, "nope"):
        reply = call(served.url + "/api/v1/rollouts", token=token)
        assert is_problem(reply, 401)
        assert reply.headers["www-authenticate"].startswith("Bearer")
    basic = call(served.url + "/api/v1/rollouts", headers={"Authorization": "Basic YTpi"})
    assert is_problem(basic, 401)
    post = call(served.url + links.path("test", "web-2", "approve"), "POST", b"{}")
    assert is_problem(post, 401)
    rollout = served.store.get(Ref("test", "web-2"))
    assert rollout is not None
    assert rollout.metadata.annotations == {}


def test_a_token_forwarded_by_an_oauth2_proxy_is_reviewed_too(served: Served) -> None:
    """X-Forwarded-Access-Token (oauth2-proxy) identifies the caller like Authorization."""
    reply = call(served.url + "/api/v1/rollouts", headers={"X-Forwarded-Access-Token": VIEWER})
    assert reply.status == 200


def test_rollout_list_shows_only_namespaces_the_caller_may_list(served: Served) -> None:
    """An admin sees every namespace; a viewer of namespace test only test's Rollouts."""
    every = call(served.url + "/api/v1/rollouts", token=ADMIN).json()["items"]
    assert [(i["namespace"], i["name"]) for i in every] == [
        ("other", "api-7"),
        ("test", "web-1"),
        ("test", "web-2"),
    ]
    mine = call(served.url + "/api/v1/rollouts", token=VIEWER).json()["items"]
    assert [(i["namespace"], i["name"]) for i in mine] == [("test", "web-1"), ("test", "web-2")]
    test = call(served.url + "/api/v1/rollouts?namespace=test", token=VIEWER).json()["items"]
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
    other = call(served.url + "/api/v1/rollouts?namespace=other", token=VIEWER)
    assert is_problem(other, 403)
    assert "system:serviceaccount:test:viewer may not list" in other.json()["detail"]


def test_one_rollout_is_served_to_readers_only(served: Served) -> None:
    """GET a Rollout returns it as stored to a reader; 403 to others; 404 when missing."""
    found = call(served.url + "/api/v1/namespaces/test/rollouts/web-2", token=VIEWER)
    assert found.json()["status"]["phase"] == "WaitingApproval"
    hidden = call(served.url + "/api/v1/namespaces/other/rollouts/api-7", token=VIEWER)
    assert is_problem(hidden, 403)
    missing = call(served.url + "/api/v1/namespaces/test/rollouts/nope", token=VIEWER)
    assert is_problem(missing, 404)
    assert is_problem(call(served.url + "/api/v2/things", token=VIEWER), 404)


def test_approve_records_the_reviewed_identity_as_actor(served: Served) -> None:
    """POST approve by the approver writes canary.dev/approve naming them, and answers 202."""
    body = json.dumps({"comment": "ship it"}).encode()
    url = served.url + links.path("test", "web-2", "approve")
    reply = call(url, "POST", body, JSON, token=APPROVER)
    assert reply.status == 202
    assert reply.json()["at"] == "2026-11-21T08:00:00.123456Z"
    rollout = served.store.get(Ref("test", "web-2"))
    assert rollout is not None
    (command,) = commands.decode(rollout.metadata.annotations)
    assert (command.kind, command.actor, command.comment, command.at) == (
        "approve",
        "system:serviceaccount:test:approver",
        "ship it",
        NOW,
    )
    registry = served.api.metrics.registry
    assert registry.get_sample_value("canary_api_commands_total", {"kind": "approve"}) == 1


def test_a_viewer_cannot_give_commands(served: Served) -> None:
    """A caller who may read but not approve gets 403 and nothing is written."""
    url = served.url + links.path("test", "web-2", "approve")
    reply = call(url, "POST", b"{}", JSON, token=VIEWER)
    assert is_problem(reply, 403)
    assert "create rollouts/approve.canary.dev" in reply.json()["detail"]
    rollout = served.store.get(Ref("test", "web-2"))
    assert rollout is not None
    assert rollout.metadata.annotations == {}


def test_the_actor_cannot_be_chosen_by_the_caller(served: Served) -> None:
    """A body naming an actor is refused: the actor is whoever the token belongs to."""
    body = json.dumps({"actor": "someone-else"}).encode()
    reply = call(served.url + links.path("test", "web-2", "approve"), "POST", body, JSON, ADMIN)
    assert is_problem(reply, 400)
    assert reply.json()["errors"][0]["field"] == "actor"


def test_commands_that_make_no_sense_are_refused(served: Served) -> None:
    """approve on a finished rollout is 409; a missing rollout 404; an unknown kind 404."""
    refused = call(served.url + links.path("test", "web-1", "approve"), "POST", b"{}", JSON, ADMIN)
    assert is_problem(refused, 409)
    assert "Succeeded" in refused.json()["detail"]
    missing = call(served.url + links.path("test", "x", "abort"), "POST", b"{}", JSON, ADMIN)
    assert is_problem(missing, 404)
    unknown = call(served.url + links.path("test", "web-2", "explode"), "POST", b"{}", JSON, ADMIN)
    assert is_problem(unknown, 404)
    rollout = served.store.get(Ref("test", "web-1"))
    assert rollout is not None
    assert rollout.metadata.annotations == {}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"[1, 2]", 400),
        (b'{"comment": 5}', 400),
        (b'{"comment": "' + b"x" * 2000 + b'"}', 400),
        (b"x" * (app.Limits().max_body + 1), 413),
    ],
)
def test_malformed_bodies_are_problems(served: Served, body: bytes, status: int) -> None:
    """A body that is not a JSON object with a short string comment, or too big, is refused."""
    reply = call(served.url + links.path("test", "web-2", "abort"), "POST", body, JSON, ADMIN)
    assert is_problem(reply, status)
    rollout = served.store.get(Ref("test", "web-2"))
    assert rollout is not None
    assert rollout.metadata.annotations == {}


def test_an_empty_body_is_a_command_without_comment(served: Served) -> None:
    """Without a body the command is given, by the caller, with no comment."""
    reply = call(served.url + links.path("other", "api-7", "abort"), "POST", None, token=ADMIN)
    assert reply.status == 202
    assert reply.json()["actor"] == "admin"


def _signed(served: Served, kind: str, expires: datetime) -> str:
    rollout = served.store.get(Ref("test", "web-2"))
    assert rollout is not None
    return links.link(served.url, LINK_SECRET, chat.ticket_for(rollout, kind, expires))  # type: ignore[arg-type]


def test_a_signed_link_opens_a_page_that_asks_the_person_to_authenticate(served: Served) -> None:
    """A chat link shows a confirmation page and does nothing; its POST needs a token; it
    gives the command once, and then says who used it."""
    url = _signed(served, "approve", NOW + timedelta(hours=1))
    page = call(url)
    assert page.status == 200
    assert page.content_type.startswith("text/html")
    assert "approve rollout test/web-2?" in page.body
    assert 'type="password"' in page.body
    assert is_problem(call(url, "POST", b"{}", JSON), 401)
    rollout = served.store.get(Ref("test", "web-2"))
    assert rollout is not None
    assert rollout.metadata.annotations == {}
    done = call(url, "POST", b'{"comment": "<ok>"}', JSON, token=APPROVER)
    assert done.status == 202
    rollout = served.store.get(Ref("test", "web-2"))
    assert rollout is not None
    assert commands.decode(rollout.metadata.annotations)[0].comment == "<ok>"
    again = call(url, "POST", b"{}", JSON, token=ADMIN)
    assert is_problem(again, 409)
    assert again.json()["detail"] == (
        "this link cannot be used: already approved by "
        "system:serviceaccount:test:approver at 2026-11-21 08:00:00 UTC"
    )
    assert is_problem(call(url), 403)


def test_expired_or_forged_links_open_nothing(served: Served) -> None:
    """An expired link, one for another command or Rollout, or one of a deleted Rollout of the
    same name, is 403; without a ticket 405."""
    expired = _signed(served, "approve", NOW - timedelta(seconds=1))
    assert is_problem(call(expired), 403)
    assert is_problem(call(expired, "POST", b"{}", JSON, token=APPROVER), 409)
    forged = _signed(served, "approve", NOW + timedelta(hours=1)).replace("/approve?", "/abort?")
    assert is_problem(call(forged), 403)
    assert is_problem(call(forged, "POST", b"{}", JSON, token=ADMIN), 403)
    elsewhere = _signed(served, "approve", NOW + timedelta(hours=1)).replace("/web-2/", "/web-1/")
    assert is_problem(call(elsewhere), 403)
    assert is_problem(call(served.url + links.path("test", "web-2", "abort")), 405)
    before = _signed(served, "approve", NOW + timedelta(hours=1))
    assert is_problem(call(before.replace("t=", "t=x")), 403)
    rollout = served.store.rollouts[Ref("test", "web-2")]
    meta = rollout.metadata.model_copy(update={"uid": "a-recreated-rollout"})
    served.store.rollouts[Ref("test", "web-2")] = rollout.model_copy(update={"metadata": meta})
    recreated = call(before)
    assert is_problem(recreated, 403)
    assert "was deleted" in recreated.json()["detail"]
    assert is_problem(call(before, "POST", b"{}", JSON, token=ADMIN), 409)
    assert served.store.rollouts[Ref("test", "web-2")].metadata.annotations == {}


class BrokenStore(MemoryRolloutStore):
    """A store whose cluster is unreachable (transient) or misconfigured (terminal)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def list(self, namespace: str | None = None, target: str | None = None) -> list[Any]:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status"), [(ApiUnavailable("down"), 503), (TerminalError("rbac"), 500)]
)
def test_store_errors_become_503_or_500_problems(error: Exception, status: int) -> None:
    """A transient store error is 503 (retry), any other canary error 500, both as problems."""
    _, running = serve(BrokenStore(error))
    try:
        reply = call(running.url + "/api/v1/rollouts", token=ADMIN)
    finally:
        running.stop()
    assert is_problem(reply, status)
    assert reply.json()["detail"] in ("down", "rbac")


def test_healthz_fails_once_the_worker_is_gone() -> None:
    """/healthz is a 503 "worker stopped" problem when alive() turns false: the pod restarts."""
    alive = [True]
    api, running = serve(MemoryRolloutStore())
    api.alive = lambda: alive[0]
    try:
        assert call(running.url + "/healthz").status == 200
        alive[0] = False
        reply = call(running.url + "/healthz")
        assert is_problem(reply, 503)
        assert "worker stopped" in reply.json()["detail"]
    finally:
        running.stop()
