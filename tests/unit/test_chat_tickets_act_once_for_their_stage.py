"""Chat tickets (the value of a Slack button, the token of a signed link) name one Rollout by UID
and one stage of its release, cannot be forged or altered, and act at most once; the Slack
identity mapping and the slash command's grammar."""

from __future__ import annotations

import base64
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from canary.core import chat
from canary.model.rollout import Rollout
from tests.fake_store import make

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
KEY = "chat-key"


def waiting(uid: str = "uid-1", **status: Any) -> Rollout:
    fields: dict[str, Any] = {
        "phase": "WaitingApproval",
        "phaseSince": "2026-11-21T07:55:00Z",
        "currentStepIndex": 1,
        "steps": [
            {"index": 0, "weight": 10, "startedAt": "2026-11-21T07:50:00Z", "verdict": "Passed"},
            {"index": 1, "weight": 20, "startedAt": "2026-11-21T07:54:00Z"},
        ],
    }
    rollout = make("web-2", **{**fields, **status})
    meta = rollout.metadata.model_copy(update={"uid": uid})
    return rollout.model_copy(update={"metadata": meta})


def ticket(rollout: Rollout, kind: str = "approve") -> chat.Ticket:
    return chat.ticket_for(rollout, kind, NOW + timedelta(hours=1))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"phase": "WaitingApproval"}, "beforeStart#0"),
        (
            {
                "phase": "WaitingApproval",
                "phaseSince": "2026-11-21T08:00:00Z",
                "currentStepIndex": 1,
                "steps": [{"index": 0, "weight": 10, "startedAt": "2026-11-21T07:50:00Z"}],
            },
            "beforePromotion#0",
        ),
        (
            {"phase": "Progressing", "currentStepIndex": 2, "phaseSince": "2026-11-21T08:00:00Z"},
            "Progressing/step-2#0",
        ),
    ],
)
def test_stage_names_the_gate_or_phase_and_the_decisions_before_it(
    status: dict[str, Any], expected: str
) -> None:
    """The stage is the gate waited at (or the phase and step) and the decisions so far."""
    assert chat.stage(make("r", **status).status) == expected
    assert chat.stage(waiting().status) == "step-1#0"
    retried = [{"gate": "step-1", "decision": "Retried", "actor": "bob", "at": NOW.isoformat()}]
    assert chat.stage(waiting(approvals=retried).status) == "step-1#1"  # the same gate again


def test_a_signed_ticket_reads_back_and_any_change_is_refused() -> None:
    """A ticket round-trips under its key; another key, an edit or junk read as None."""
    signed = chat.sign(KEY, ticket(waiting()))
    assert chat.read(KEY, signed) == ticket(waiting())
    assert chat.read("other-key", signed) is None
    assert chat.read("", signed) is None
    body, mac = signed.split(".")
    forged = chat.sign(KEY, ticket(waiting(), "abort")).split(".")[0]
    assert chat.read(KEY, f"{forged}.{mac}") is None
    assert chat.read(KEY, f"{body}.{'0' * 64}") is None
    for junk in ("", "x", "a.b", signed + "0", "é." + mac, "A" * 2000):
        assert chat.read(KEY, junk) is None


def test_a_fresh_ticket_for_the_current_stage_may_act() -> None:
    """Approve on a Rollout waiting at the ticket's gate, with the same UID, is allowed."""
    rollout = waiting()
    assert chat.refusal(ticket(rollout), rollout, NOW) is None


def test_a_used_ticket_says_who_used_it_and_when() -> None:
    """Once recorded as used, every ticket of that posting answers with the first user."""
    rollout = waiting()
    status = chat.with_used(rollout.status, ticket(rollout), "slack:U1 (al) as alice", NOW)
    used = rollout.model_copy(update={"status": status})
    expected = "already approved by slack:U1 (al) as alice at 2026-11-21 08:00:00 UTC"
    assert chat.refusal(ticket(rollout), used, NOW) == expected
    assert chat.refusal(ticket(rollout, "abort"), used, NOW) == expected


def test_a_ticket_for_a_passed_gate_or_another_rollout_never_acts() -> None:
    """A recreated Rollout of the same name, a gate already decided, a release that moved on,
    an expired link, and a deleted Rollout are all refused with the reason."""
    old = waiting()
    assert "deleted" in (chat.refusal(ticket(old), waiting(uid="uid-2"), NOW) or "")
    assert "deleted" in (chat.refusal(ticket(old), None, NOW) or "")
    approved = waiting(
        phase="Progressing",
        phaseSince="2026-11-21T07:58:00Z",
        currentStepIndex=2,
        approvals=[
            {"gate": "step-1", "decision": "Approved", "actor": "bob", "at": "2026-11-21T07:57:00Z"}
        ],
    )
    assert chat.refusal(ticket(old), approved, NOW) == (
        "already approved by bob at 2026-11-21 07:57:00 UTC"
    )
    moved = waiting(phase="Progressing", phaseSince="2026-11-21T07:58:00Z", currentStepIndex=2)
    assert chat.refusal(ticket(old), moved, NOW) == (
        "this was for step-1; rollout test/web-2 has moved on: Progressing"
    )
    expired = chat.ticket_for(old, "approve", NOW - timedelta(seconds=1))
    assert chat.refusal(expired, old, NOW) == "this link has expired"
    assert chat.refusal(ticket(old, "retry"), old, NOW) is not None  # not retryable now


def test_used_records_are_bounded() -> None:
    """status.chat.used keeps the newest 16 records."""
    status = waiting().status
    for index in range(40):
        stale = chat.Ticket("test", "web-2", f"uid-{index}", "s#0", "approve", 0)
        status = chat.with_used(status, stale, "someone", NOW)
    assert len(status.chat.used) == 16
    assert (
        status.chat.used[-1].nonce
        == chat.Ticket("test", "web-2", "uid-39", "s#0", "approve", 0).nonce
    )


IDENTITIES = chat.SlackIdentities.model_validate(
    {
        "workspace": "T0",
        "users": {"U1": {"username": "alice@corp.example", "groups": ["payments"]}},
        "userGroups": {"S1": {"groups": ["release-approvers"]}},
    }
)


def members(group: str) -> list[str]:
    return {"S1": ["U1", "U2"]}.get(group, [])


def test_slack_users_map_to_kubernetes_identities() -> None:
    """A mapped user gets their username and groups; a member of a mapped user group gets
    slack:<ID> and the group's groups; anyone else, or another workspace, is nobody."""
    alice = chat.person(IDENTITIES, "T0", "U1", "alice", members)
    assert alice == chat.Person(
        "U1", "alice", "alice@corp.example", ("payments", "release-approvers")
    )
    assert alice.actor == "slack:U1 (alice) as alice@corp.example"
    bob = chat.person(IDENTITIES, "T0", "U2", "bob", members)
    assert bob == chat.Person("U2", "bob", "slack:U2", ("release-approvers",))
    assert chat.person(IDENTITIES, "T0", "U3", "eve", members) is None
    assert chat.person(IDENTITIES, "T9", "U1", "alice", members) is None


def test_the_mapping_refuses_what_is_not_a_slack_id() -> None:
    """Keys that are not Slack IDs, and unknown fields, are refused with a message."""
    with pytest.raises(ValueError, match="not Slack IDs"):
        chat.SlackIdentities.model_validate({"users": {"alice": {"username": "alice"}}})
    with pytest.raises(ValueError, match="Extra inputs"):
        chat.SlackIdentities.model_validate({"admins": []})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("approve test/web-2 looks good", chat.Slash("approve", "test", "web-2", "looks good")),
        ("STATUS test/web-2", chat.Slash("status", "test", "web-2", "")),
        ("pause prod/api-7", chat.Slash("pause", "prod", "api-7", "")),
    ],
)
def test_slash_commands_parse(text: str, expected: chat.Slash) -> None:
    """``/canary <verb> <ns>/<rollout> [comment]`` parses."""
    assert chat.parse_slash(text) == expected


@pytest.mark.parametrize(
    "text", ["", "approve", "explode test/web-2", "approve web-2", "approve ../x", "approve a/B_C"]
)
def test_bad_slash_commands_answer_with_usage(text: str) -> None:
    """Anything else answers how to use it."""
    answer = chat.parse_slash(text)
    assert isinstance(answer, str)
    assert "usage: /canary" in answer


def test_status_text_names_phase_weight_and_decisions() -> None:
    """``/canary status`` says where the release is and who decided what."""
    rollout = waiting(
        canaryWeight=20,
        message="waiting for approval at step-1",
        approvals=[
            {
                "gate": "beforeStart",
                "decision": "Approved",
                "actor": "bob",
                "at": "2026-11-21T07:49:00Z",
            }
        ],
    )
    assert chat.status_text(rollout) == (
        "test/web-2 (podinfo): WaitingApproval, step 2, canary weight 20%\n"
        "waiting for approval at step-1\n"
        "beforeStart: approved by bob at 2026-11-21 07:49:00 UTC"
    )


def _signed_body(document: object) -> str:
    """A ticket whose body is ``document``, signed as canary signs (the format in chat.sign)."""
    body = base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")
    message = b"canary.dev/chat-ticket/v1\n" + body.encode()
    return f"{body}.{hmac.new(KEY.encode(), message, 'sha256').hexdigest()}"


@pytest.mark.parametrize(
    "document",
    [
        ["test", "web-2", "uid", "s#0", "approve"],
        ["test", "web-2", "uid", "s#0", "explode", 1],
        ["test", "web-2", "uid", "s#0", "approve", "1"],
        ["test", 2, "uid", "s#0", "approve", 1],
        {"namespace": "test"},
    ],
)
def test_a_correctly_signed_ticket_of_the_wrong_shape_is_refused(document: object) -> None:
    """Even under the right key, a body that is not a ticket reads as None."""
    assert chat.read(KEY, _signed_body(document)) is None
    assert chat.read(KEY, _signed_body(["test", "web-2", "uid", "s#0", "approve", 1])) is not None


def test_messages_are_remembered_one_per_channel() -> None:
    """A channel's newer message replaces its older one; at most 8 channels are kept."""
    status = waiting().status
    status = chat.with_message(status, "C1", "1.1")
    status = chat.with_message(status, "C2", "2.1")
    status = chat.with_message(status, "C1", "1.2")
    assert [(m.channel, m.ts) for m in status.chat.slack] == [("C2", "2.1"), ("C1", "1.2")]
    for index in range(20):
        status = chat.with_message(status, f"C{index}X", "3.1")
    assert len(status.chat.slack) == 8


def test_progress_says_phase_step_weight_checks_and_the_last_decision() -> None:
    """The line a message's context shows as the release moves."""
    rollout = waiting(
        canaryWeight=20,
        steps=[
            {
                "index": 0,
                "weight": 20,
                "startedAt": "2026-11-21T07:50:00Z",
                "canary": {"requests": 120, "failures": 1},
                "checks": [
                    {"name": "success-rate", "verdict": "Pass", "value": 99.17, "limit": 99},
                    {"name": "errors-vs-stable", "verdict": "Inconclusive"},
                ],
            }
        ],
        approvals=[
            {"gate": "beforeStart", "decision": "Approved", "actor": "bob", "at": NOW.isoformat()},
            {"gate": "step-0", "decision": "TimedOut", "at": NOW.isoformat()},
        ],
    )
    assert chat.progress(rollout) == (
        "WaitingApproval · step 1 · canary 20% · 120 canary requests, 1 failed · "
        "success-rate Pass (99.17 vs 99) · errors-vs-stable Inconclusive · "
        "beforeStart approved by bob"
    )
    assert chat.progress(make("r")) == "Pending · canary 0%"
    assert chat.kind("resume") == "resume"


def test_status_text_of_a_new_rollout_and_slack_escaping() -> None:
    """A Rollout not started yet says so; text for Slack has &, < and > escaped."""
    assert chat.status_text(make("r")) == "test/r (podinfo): Pending, not started, canary weight 0%"
    assert chat.escape("<!here> & <x|y>") == "&lt;!here&gt; &amp; &lt;x|y&gt;"
