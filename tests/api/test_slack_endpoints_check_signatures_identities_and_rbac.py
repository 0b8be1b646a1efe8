"""Slack's interactivity and slash-command endpoints, driven by a local server playing Slack
against the real uvicorn-served API: only requests signed with the app's signing secret within
5 minutes and never seen before are heard; the Slack user must be mapped to a Kubernetes identity
that RBAC lets act; a button acts at most once for the stage it was posted for, and the command
is recorded naming both identities."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from canary.adapters.notifiers.slack import SlackWebApi
from canary.api import server
from canary.api.slack import Slack
from canary.core import chat, commands
from canary.model.rollout import Rollout
from canary.ports import Ref
from tests.api.conftest import LINK_SECRET, NOW, sample_store, serve
from tests.fake_store import MemoryRolloutStore
from tests.slack import TEAM, FakeSlack, button_press, signed, slash

APPROVER = "system:serviceaccount:test:approver"
IDENTITIES = chat.SlackIdentities.model_validate(
    {
        "workspace": TEAM,
        "users": {
            "U0ALICE": {"username": APPROVER},
            "U0VIEWER": {"username": "system:serviceaccount:test:viewer"},
        },
    }
)
WEB_2 = Ref("test", "web-2")


@dataclass
class Setup:
    url: str
    slack: FakeSlack
    store: MemoryRolloutStore

    def press(self, value: str, user: str = "U0ALICE") -> tuple[int, str]:
        """Press a button as ``user``; canary's status code and its answer to response_url."""
        before = len(self.slack.answers())
        form = button_press(value, user, user.lower()[2:], self.slack.response_url)
        answer = signed(self.url + "/slack/actions", form).send()
        answers = self.slack.answers()
        return answer.status, answers[-1] if len(answers) > before else ""

    def rollout(self) -> Rollout:
        found = self.store.get(WEB_2)
        assert found is not None
        return found

    def ticket(self, kind: str = "approve") -> str:
        when = NOW + timedelta(hours=1)
        return chat.sign(LINK_SECRET, chat.ticket_for(self.rollout(), kind, when))  # type: ignore[arg-type]

    def approval(self) -> dict[str, str] | None:
        value = self.rollout().metadata.annotations.get(commands.key("approve"))
        return json.loads(value) if value else None


@pytest.fixture
def setup() -> Iterator[Setup]:
    store = sample_store()
    rollout = store.rollouts[WEB_2]
    store.rollouts[WEB_2] = rollout.model_copy(
        update={"metadata": rollout.metadata.model_copy(update={"uid": "uid-web-2"})}
    )
    fake = FakeSlack()
    web = SlackWebApi(None, base_url=fake.url + "/api/", response_origins=(fake.url,))
    settings = Slack("8f742231b10e8888abcd99yyyzzz85a5", lambda: IDENTITIES, respond=web.respond)
    _, running = serve(store, server_limits=server.ServerLimits(header_timeout=2), slack=settings)
    try:
        yield Setup(running.url, fake, store)
    finally:
        running.stop()
        fake.stop()


def test_a_button_press_gives_the_command_once_naming_both_identities(setup: Setup) -> None:
    """Approve from a mapped approver is written with actor ``slack:U… (name) as <k8s user>``,
    its nonce recorded in status; a second press answers who approved and when."""
    value = setup.ticket()
    status, answer = setup.press(value)
    assert status == 200
    actor = f"slack:U0ALICE (alice) as {APPROVER}"
    assert answer == f"approve given to test/web-2 by {actor}"
    approval = setup.approval()
    assert approval is not None
    assert approval["actor"] == actor
    (used,) = setup.rollout().status.chat.used
    assert (used.kind, used.actor) == ("approve", actor)

    status, again = setup.press(value)
    assert status == 200
    assert again == f"already approved by {actor} at 2026-11-21 08:00:00 UTC"
    _, abort = setup.press(setup.ticket("abort"))
    assert abort.startswith("already approved by")
    assert commands.key("abort") not in setup.rollout().metadata.annotations
    assert setup.approval() == approval


def test_replayed_expired_and_forged_requests_are_refused(setup: Setup) -> None:
    """The same signed request twice, a timestamp 6 minutes old, a wrong secret, an altered
    body and missing headers are refused with 401 before anything is looked at."""
    form = button_press(setup.ticket(), "U0ALICE", "alice", setup.slack.response_url)
    url = setup.url + "/slack/actions"
    old = signed(url, form, timestamp=int(time.time()) - 360).send()
    assert (old.status, old.json()["detail"]) == (
        401,
        "the request's timestamp is more than 5 minutes away: refused",
    )
    wrong = signed(url, form, secret="not-the-signing-secret").send()
    assert wrong.status == 401
    assert "signature does not match" in wrong.json()["detail"]
    request = signed(url, form)
    altered = type(request)(url, request.body.replace("U0ALICE", "U0VIEWER"), request.headers)
    assert altered.send().status == 401
    bare = type(request)(url, request.body, {"Content-Type": request.headers["Content-Type"]})
    assert bare.send().status == 401
    assert setup.approval() is None
    assert setup.slack.answers() == []

    assert request.send().status == 200
    replay = request.send()
    assert (replay.status, replay.json()["detail"]) == (
        401,
        "this signed request was already received: a replay, refused",
    )
    assert len(setup.slack.answers()) == 1


def test_a_forged_or_stale_ticket_never_acts(setup: Setup) -> None:
    """A value signed with another key, and a ticket for an earlier Rollout of the same name,
    give nothing."""
    forged = chat.sign("guessed-key", chat.read(LINK_SECRET, setup.ticket()))  # type: ignore[arg-type]
    assert setup.press(forged)[1] == "this button is not canary's, or it was altered: nothing done"
    earlier = chat.ticket_for(setup.rollout(), "approve", NOW + timedelta(hours=1))
    earlier = chat.Ticket(**{**earlier.__dict__, "uid": "uid-of-a-deleted-rollout"})
    answer = setup.press(chat.sign(LINK_SECRET, earlier))[1]
    assert answer == "rollout test/web-2 was deleted: this was for an earlier Rollout of that name"
    assert setup.approval() is None


def test_unmapped_people_and_people_rbac_refuses_cannot_act(setup: Setup) -> None:
    """Someone not in the mapping is told so; a mapped viewer is refused by RBAC, naming the
    missing permission."""
    assert "not mapped to a Kubernetes identity" in setup.press(setup.ticket(), "U0EVE")[1]
    answer = setup.press(setup.ticket(), "U0VIEWER")[1]
    assert answer == (
        "slack:U0VIEWER (viewer) as system:serviceaccount:test:viewer may not create "
        "rollouts/approve.canary.dev in namespace test"
    )
    assert setup.approval() is None
    assert setup.rollout().status.chat.used == []


def test_the_slash_command_approves_and_reports_status(setup: Setup) -> None:
    """``/canary status`` answers a reader; ``/canary approve`` gives the command with the
    comment for an approver, is refused for a viewer and when the phase does not allow it."""

    def run(text: str, user: str) -> str:
        form = slash(text, user, user.lower()[2:], setup.slack.response_url)
        answer = signed(setup.url + "/slack/commands", form).send()
        assert answer.status == 200
        document = answer.json()
        assert document["response_type"] == "ephemeral"
        return str(document["text"])

    status = run("status test/web-2", "U0VIEWER")
    assert status.startswith(
        "test/web-2 (podinfo): WaitingApproval, not started, canary weight 20%"
    )
    refused = run("approve test/web-2", "U0VIEWER")
    assert "may not create rollouts/approve.canary.dev" in refused
    assert run("approve test/web-2 looks good", "U0ALICE") == (
        f"approve given to test/web-2 by slack:U0ALICE (alice) as {APPROVER}"
    )
    approval = setup.approval()
    assert approval is not None
    assert approval["comment"] == "looks good"
    assert run("approve test/web-1", "U0ALICE") == (
        "cannot approve rollout test/web-1: it is Succeeded, not WaitingApproval"
    )
    assert run("approve test/<!channel>", "U0ALICE").startswith("'test/&lt;!channel&gt;'")
    assert run("", "U0ALICE").startswith("usage: /canary")


def test_malformed_signed_requests_are_problems_not_errors(setup: Setup) -> None:
    """A correctly signed form with too many fields, or whose payload is not JSON, is a 400
    problem; an interaction canary does not handle is acknowledged and ignored."""
    url = setup.url + "/slack/actions"
    crowded = signed(url, {f"f{i}": "x" for i in range(100)}).send()
    assert (crowded.status, crowded.json()["detail"]) == (400, "the form has too many fields")
    not_json = signed(url, {"payload": "{"}).send()
    assert (not_json.status, not_json.json()["detail"]) == (
        400,
        "the form field 'payload' must be JSON",
    )
    other = signed(url, {"payload": json.dumps({"type": "view_submission"})}).send()
    assert other.status == 200
    assert setup.slack.answers() == []
