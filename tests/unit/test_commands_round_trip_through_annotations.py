"""The command annotation contract: encode, decode, what is ignored and why, what is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.core import commands
from canary.core.vocabulary import Command, CommandKind

AT = datetime(2026, 11, 21, 7, 40, 0, 123456, tzinfo=UTC)


def test_encode_writes_one_annotation_with_rfc3339_microseconds() -> None:
    """A command becomes canary.dev/<kind> with at (UTC, microseconds), actor and comment."""
    encoded = commands.encode(Command("approve", AT, "alice@laptop", "looks good"))
    assert list(encoded) == ["canary.dev/approve"]
    assert json.loads(encoded["canary.dev/approve"]) == {
        "at": "2026-11-21T07:40:00.123456Z",
        "actor": "alice@laptop",
        "comment": "looks good",
    }


def test_encode_leaves_out_an_empty_comment_and_converts_to_utc() -> None:
    """No comment key when there is none; a non-UTC time is written in UTC."""
    local = AT.astimezone(timezone(timedelta(hours=2)))
    value = commands.encode(Command("abort", local, "bob"))["canary.dev/abort"]
    assert json.loads(value) == {"at": "2026-11-21T07:40:00.123456Z", "actor": "bob"}


@given(
    kind=st.sampled_from(commands.KINDS),
    at=st.datetimes(timezones=st.just(UTC)),
    actor=st.text(),
    comment=st.text(),
)
def test_decode_inverts_encode(kind: CommandKind, at: datetime, actor: str, comment: str) -> None:
    """Whatever is encoded decodes to the same command, so the machine's `at` match holds."""
    command = Command(kind, at, actor, comment)
    assert commands.decode(commands.encode(command)) == (command,)


def test_decode_reads_every_kind_and_skips_other_annotations() -> None:
    """All four kinds are read; unrelated annotations (even canary.dev/ ones) are not."""
    annotations = {
        "canary.dev/release": "x",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
    }
    for kind in commands.KINDS:
        annotations.update(commands.encode(Command(kind, AT, kind)))
    assert [(c.kind, c.actor) for c in commands.decode(annotations)] == [
        (k, k) for k in commands.KINDS
    ]
    assert commands.ignored(annotations) == ()


def test_decode_accepts_offsets_and_defaults_actor_and_comment() -> None:
    """A hand-written value with an offset and only `at` is a valid command in UTC."""
    found = commands.decode({"canary.dev/retry": '{"at": "2026-11-21T09:40:00.123456+02:00"}'})
    assert found == (Command("retry", AT, "", ""),)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("yes", "not JSON"),
        ("[1]", "not a JSON object"),
        ('{"actor": "a"}', "no 'at' timestamp"),
        ('{"at": 5}', "no 'at' timestamp"),
        ('{"at": "yesterday"}', "not an RFC 3339 time"),
        ('{"at": "2026-11-21T07:40:00"}', "no time zone"),
        ('{"at": "2026-11-21T07:40:00Z", "actor": 7}', "must be strings"),
        ('{"at": "2026-11-21T07:40:00Z", "comment": null}', "must be strings"),
    ],
)
def test_malformed_values_are_ignored_with_a_reason(value: str, reason: str) -> None:
    """A malformed command is not applied, and `ignored` says which annotation and why."""
    annotations = {"canary.dev/approve": value}
    assert commands.decode(annotations) == ()
    (problem,) = commands.ignored(annotations)
    assert problem.path == "metadata.annotations[canary.dev/approve]"
    assert reason in problem.message


@pytest.mark.parametrize(
    ("kind", "phase", "refused"),
    [
        ("approve", "WaitingApproval", False),
        ("approve", "Progressing", True),
        ("retry", "RolledBack", False),
        ("retry", "Aborted", False),
        ("retry", "Failed", False),
        ("retry", "Succeeded", True),
        ("retry", "Progressing", True),
        ("abort", "Progressing", False),
        ("abort", "WaitingApproval", False),
        ("abort", "Succeeded", True),
        ("abort", "Failed", False),
        ("abort", "RolledBack", True),
        ("abort", "RollingBack", True),
        ("promote", "Paused", False),
        ("promote", "Promoting", True),
        ("promote", "RolledBack", True),
    ],
)
def test_refusal_names_commands_that_make_no_sense(
    kind: CommandKind, phase: str, refused: bool
) -> None:
    """approve only while waiting, retry only after a failure, abort/promote only while active
    (and abort after a Failed promotion, to route back once stable is reverted)."""
    reason = commands.refusal(kind, phase)
    assert (reason is not None) == refused
    if reason is not None:
        assert phase in reason


def test_past_tense_covers_every_kind() -> None:
    """The CLI can report every command it writes."""
    assert set(commands.PAST_TENSE) == set(commands.KINDS)
