"""The notification document (``canary.dev/notification/v1``) describes the rollout as it stood
right after the event; its Teams card and its signature are made from it."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from canary.core import notice
from canary.core.vocabulary import Event
from canary.model.status import RolloutStatus
from tests.fake_store import make

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BEFORE = make("web-2", phase="Promoting", canaryWeight=50, currentStepIndex=3)
PROMOTED = Event("Normal", "Promoted", "the release is now stable")
AFTER = RolloutStatus.model_validate(
    {
        "phase": "Succeeded",
        "canaryWeight": 0,
        "currentStepIndex": 3,
        "message": "promoted",
        "steps": [
            {"index": 2, "weight": 20, "startedAt": NOW, "verdict": "Passed"},
            {
                "index": 3,
                "weight": 50,
                "startedAt": NOW,
                "finishedAt": NOW,
                "verdict": "Passed",
                "canary": {"requests": 400, "failures": 1, "successRate": 99.75},
                "stable": {"requests": 1600, "failures": 3},
                "checks": [{"name": "successRate", "verdict": "Pass", "value": 99.75}],
            },
        ],
        "approvals": [
            {"gate": "beforePromotion", "decision": "Approved", "actor": "alice", "at": NOW}
        ],
    }
)


def test_the_document_carries_the_phase_and_weights_after_the_event() -> None:
    """A Promoted event says Succeeded (not the Promoting it came from), with the step's counts."""
    document = notice.build(
        BEFORE,
        AFTER,
        PROMOTED,
        key="uid-1:7",
        at=NOW,
        step_count=5,
        links={"dashboard": "https://canary.example/ui/namespaces/test/rollouts/web-2"},
    )
    assert document["schema"] == "canary.dev/notification/v1"
    assert document["id"] == "uid-1:7"
    assert document["time"] == "2026-11-30T12:00:00Z"
    assert document["phase"] == "Succeeded"
    assert document["weights"] == {"canary": 0, "stable": 100}
    assert document["event"] == {
        "type": "Normal",
        "reason": "Promoted",
        "message": PROMOTED.message,
    }
    assert document["target"] == {"kind": "Deployment", "name": "podinfo"}
    assert document["release"]["images"] == [
        {"container": "podinfo", "image": "podinfo:6.1.0", "tag": "6.1.0"}
    ]
    step = document["step"]
    assert (step["index"], step["count"], step["weight"], step["verdict"]) == (3, 5, 50, "Passed")
    assert step["canary"]["requests"] == 400
    assert step["stable"]["failures"] == 3
    assert step["checks"][0]["name"] == "successRate"
    assert document["approvals"][0]["actor"] == "alice"
    assert document["links"]["dashboard"].endswith("/rollouts/web-2")


def test_a_step_not_started_yet_has_only_its_place() -> None:
    """Before any step record exists the step says where it is and nothing more."""
    document = notice.build(BEFORE, RolloutStatus(), PROMOTED, key="k", at=NOW, step_count=4)
    assert document["step"] == {"index": 0, "count": 4}
    assert document["links"] == {}


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("ghcr.io/stefanprodan/podinfo:6.1.0", "6.1.0"),
        ("localhost:5000/podinfo", None),
        ("podinfo", None),
        ("podinfo@sha256:abc", "sha256:abc"),
        ("localhost:5000/podinfo:1.2", "1.2"),
    ],
)
def test_the_tag_is_read_from_the_reference(image: str, tag: str | None) -> None:
    """A registry port is not a tag; a digest is given as the tag."""
    assert notice.tag(image) == tag


def test_the_signature_is_an_hmac_of_timestamp_and_body() -> None:
    """Receivers recompute HMAC-SHA256(secret, "<timestamp>.<body>") and compare."""
    body = b'{"schema": "canary.dev/notification/v1"}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert notice.signature(b"s3cret", 1700000000, body) == f"sha256={expected}"
    assert notice.signature(b"other", 1700000000, body) != f"sha256={expected}"


def test_the_teams_card_shows_the_facts_and_the_links() -> None:
    """An Adaptive Card in a Teams message, with the counts and a button per link."""
    document = notice.build(BEFORE, AFTER, PROMOTED, key="k", at=NOW, step_count=5)
    message = notice.adaptive_card(document, {"Open": "https://canary.example/ui"})
    assert message["type"] == "message"
    attachment = message["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert "Promoted" in card["body"][0]["text"]
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Phase"] == "Succeeded"
    assert facts["Step"] == "4 of 5"
    assert facts["podinfo"] == "podinfo:6.1.0"
    assert facts["Canary"] == "400 requests, 1 failed"
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open", "url": "https://canary.example/ui"}
    ]


def test_a_warning_card_is_coloured_for_attention() -> None:
    """Warnings stand out."""
    document = notice.build(
        BEFORE, RolloutStatus(), Event("Warning", "RolledBack", "x"), key="k", at=NOW, step_count=1
    )
    card = notice.adaptive_card(document, {})["attachments"][0]["content"]
    assert card["body"][0]["color"] == "Attention"
    assert card["actions"] == []


def test_card_text_cannot_make_links_or_formatting() -> None:
    """Tenant text in a Teams card has Markdown escaped: no forged link, no bold."""
    event = Event("Warning", "AnalysisFailed", "see [logs](https://evil.example) **now**")
    document = notice.build(BEFORE, RolloutStatus(), event, key="k", at=NOW, step_count=1)
    text = notice.adaptive_card(document, {})["attachments"][0]["content"]["body"][0]["text"]
    assert "\\[logs\\](https://evil.example) \\*\\*now\\*\\*" in text
    assert notice.plain("a_b") == "a\\_b"
