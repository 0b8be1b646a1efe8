"""People's commands to a Rollout, as annotations: the contract between the CLI, the HTTP API
and chat (which write them) and the reconciler (which reads them).

A command of kind K (approve, promote, abort, retry) is the annotation ``canary.dev/K`` on the
Rollout, whose value is JSON::

    {"at": "2026-11-21T07:40:00.123456Z", "actor": "alice@laptop", "comment": "looks good"}

``at`` (RFC 3339, UTC, microseconds) identifies the command: the machine applies a command once
and records it in ``status.approvals`` with the same ``at``, so a newer command of the same kind
simply overwrites the annotation with a newer ``at``. Pure: no clock, no I/O; callers pass
``now`` and do the writing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import get_args

from canary.core.vocabulary import Command, CommandKind
from canary.errors import Problem
from canary.model.status import TERMINAL_PHASES

PREFIX = "canary.dev/"
HOLDABLE_PHASES = ("Initializing", "Progressing", "Paused", "WaitingApproval")
"""Where `canary pause` holds a release (and `canary resume` lets it go on)."""
KINDS: tuple[CommandKind, ...] = get_args(CommandKind)

PAST_TENSE: Mapping[CommandKind, str] = {
    "approve": "approved",
    "promote": "promoted",
    "abort": "aborted",
    "retry": "retried",
    "pause": "paused",
    "resume": "resumed",
}
"""How the CLI reports a command it wrote: ``rollout.canary.dev/x approved``."""


def key(kind: CommandKind) -> str:
    """The annotation that carries commands of ``kind``."""
    return f"{PREFIX}{kind}"


def timestamp(at: datetime) -> str:
    """``at`` in UTC as RFC 3339 with microseconds, the only form written."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def encode(command: Command) -> dict[str, str]:
    """The annotation (one key) that gives ``command``."""
    value: dict[str, str] = {"at": timestamp(command.at), "actor": command.actor}
    if command.comment:
        value["comment"] = command.comment
    return {key(command.kind): json.dumps(value, separators=(",", ":"), ensure_ascii=False)}


def _parse(kind: CommandKind, text: str) -> Command | Problem:
    where = f"metadata.annotations[{key(kind)}]"
    try:
        value = json.loads(text)
    except ValueError as error:
        return Problem(where, f"not JSON: {error}", 'write {"at": "<RFC 3339>", "actor": "..."}')
    if not isinstance(value, dict):
        return Problem(where, "not a JSON object", 'write {"at": "<RFC 3339>", "actor": "..."}')
    at, actor, comment = value.get("at"), value.get("actor", ""), value.get("comment", "")
    if not isinstance(actor, str) or not isinstance(comment, str):
        return Problem(where, "actor and comment must be strings")
    if not isinstance(at, str):
        return Problem(
            where, "no 'at' timestamp", "add an RFC 3339 time such as 2026-01-01T00:00:00Z"
        )
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        return Problem(where, f"'at' is not an RFC 3339 time: {at[:64]!r}")
    if when.tzinfo is None:
        return Problem(where, f"'at' has no time zone: {at[:64]!r}", "end it with Z")
    try:
        # 0001-01-01T00:00:00+01:00 is valid ISO 8601 but has no UTC equivalent.
        when = when.astimezone(UTC)
    except OverflowError:
        return Problem(where, f"'at' is out of range: {at[:64]!r}")
    return Command(kind=kind, at=when, actor=actor, comment=comment)


def _parsed(annotations: Mapping[str, str]) -> list[Command | Problem]:
    return [_parse(kind, annotations[key(kind)]) for kind in KINDS if key(kind) in annotations]


def decode(annotations: Mapping[str, str]) -> tuple[Command, ...]:
    """The commands a Rollout's annotations give; malformed ones are left out (``ignored``
    says why, for the reconciler's Warning Event), and other annotations are not looked at."""
    return tuple(c for c in _parsed(annotations) if isinstance(c, Command))


def ignored(annotations: Mapping[str, str]) -> tuple[Problem, ...]:
    """Why each malformed command annotation is left out: the reconciler records each as a
    ``CommandRejected`` Warning Event on the Rollout (once per distinct problem)."""
    return tuple(p for p in _parsed(annotations) if isinstance(p, Problem))


def refusal(kind: CommandKind, phase: str) -> str | None:
    """Why giving ``kind`` to a rollout in ``phase`` makes no sense, or None when it does.
    Checked by the CLI and the HTTP API before writing; the machine stays the final judge."""
    if kind == "approve" and phase != "WaitingApproval":
        return f"it is {phase}, not WaitingApproval"
    if kind in ("pause", "resume") and phase not in HOLDABLE_PHASES:
        return f"it is {phase}; only a release on its way can be paused or resumed"
    if kind == "retry" and phase not in ("RolledBack", "Aborted", "Failed"):
        return f"it is {phase}; only a RolledBack, Aborted or Failed rollout can be retried"
    if kind in ("abort", "promote"):
        if kind == "abort" and phase == "Failed":
            return None  # a promotion that missed its deadline can still be routed back
        if phase in TERMINAL_PHASES:
            return f"it has already finished ({phase})"
        if phase in ("RollingBack", "Promoting"):
            return f"it is already {phase}"
    return None
