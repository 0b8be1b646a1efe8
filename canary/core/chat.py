"""Commands from chat: Slack buttons, Slack slash commands and signed links, as pure rules.

A button or link carries a *ticket*: which Rollout (namespace, name **and UID**), which stage of
the release it was posted for (the gate, or the phase and step, with the time that stage began),
the command, and an expiry; the ticket is signed with the controller's chat key (a Secret of its
own), so nobody can make one up or change what it points at. A ticket acts at most once: the
API records its nonce in ``status.chat.used`` before it writes the command, and a ticket whose
nonce is there, or whose stage has passed, answers who used it or where the release is now.

Who may act is the platform team's mapping from Slack users and user groups to Kubernetes
identities (``SlackIdentities``, never the Rollout author's), then the same RBAC check as every
other way of giving a command (``canary.core.access``). The recorded actor names both:
``slack:U123 (alice) as alice@corp.example``.

Used by ``canary.api.slack`` (the interactivity endpoint and the link page) and the Slack
notifier (which makes the tickets). Pure: no clock, no I/O; callers pass ``now``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import get_args

from pydantic import BaseModel, ConfigDict, Field

from canary.core import access, commands
from canary.core.vocabulary import CommandKind
from canary.model.rollout import Rollout
from canary.model.status import ChatActionUsed, RolloutStatus, SlackMessage

MAX_TICKET = 1024
"""Characters a ticket may have (a Slack button value may have 2,000)."""
_KINDS = frozenset(get_args(CommandKind))
_SLACK_ID = r"^[A-Z0-9]{1,32}$"
_TICKET = re.compile(r"^[A-Za-z0-9_-]{1,900}\.[0-9a-f]{64}$")


def escape(value: str) -> str:
    """``value`` with Slack's control characters escaped, so that text a tenant controls
    cannot mention people (<!channel>), forge links (<https://…|…>) or break the message."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def stage(status: RolloutStatus) -> str:
    """Where the release is, as chat tickets name it: the approval gate it waits at
    (``beforeStart``, ``step-2``, ``beforePromotion``), else its phase and step, and how many
    decisions were recorded before it (``Progressing/step-1#2``: a retried release reaching
    the same gate again is another stage). A ticket acts only while its stage lasts. Computed
    from status alone, so a reconcile that is retried names the same stage."""
    if status.phase == "WaitingApproval":
        if not status.steps:
            where = "beforeStart"
        elif status.current_step_index >= len(status.steps):
            where = "beforePromotion"
        else:
            where = f"step-{status.current_step_index}"
    else:
        where = f"{status.phase}/step-{status.current_step_index}"
    return f"{where}#{len(status.approvals)}"


def place(stage_name: str) -> str:
    """The readable part of a stage (``step-2``, ``Progressing/step-1``)."""
    return stage_name.rsplit("#", 1)[0]


@dataclass(frozen=True)
class Ticket:
    """What a button or link allows: ``kind`` on one Rollout at one stage, until ``expires``
    (seconds since the epoch)."""

    namespace: str
    name: str
    uid: str
    stage: str
    kind: CommandKind
    expires: int

    @property
    def nonce(self) -> str:
        """The same for every ticket of one posting (the Rollout's UID and stage): the first
        to act uses them all, so a message's Approve and Abort cannot both act."""
        return hashlib.sha256(f"{self.uid}|{self.stage}".encode()).hexdigest()[:32]


def ticket_for(rollout: Rollout, kind: CommandKind, expires: datetime) -> Ticket:
    """The ticket for ``kind`` on ``rollout`` where it is now."""
    meta = rollout.metadata
    when = int(expires.timestamp())
    return Ticket(meta.namespace, meta.name, meta.uid or "", stage(rollout.status), kind, when)


def _mac(key: str, body: str) -> str:
    return hmac.new(
        key.encode(), b"canary.dev/chat-ticket/v1\n" + body.encode(), "sha256"
    ).hexdigest()


def sign(key: str, ticket: Ticket) -> str:
    """The ticket as text: base64url of its JSON, a dot, and its HMAC-SHA256 under ``key``."""
    document = [
        ticket.namespace,
        ticket.name,
        ticket.uid,
        ticket.stage,
        ticket.kind,
        ticket.expires,
    ]
    body = base64.urlsafe_b64encode(json.dumps(document, separators=(",", ":")).encode())
    text = body.decode().rstrip("=")
    return f"{text}.{_mac(key, text)}"


def read(key: str, text: str) -> Ticket | None:
    """The ticket ``text`` carries when ``key`` signed it; None when it is forged, altered or
    malformed (compared in constant time)."""
    if not key or len(text) > MAX_TICKET or not _TICKET.fullmatch(text):
        return None
    body, mac = text.split(".")
    if not hmac.compare_digest(_mac(key, body), mac):
        return None
    try:
        namespace, name, uid, where, kind, expires = json.loads(
            base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        )
    except ValueError:
        return None
    if (
        not all(isinstance(v, str) for v in (namespace, name, uid, where, kind))
        or kind not in _KINDS
        or not isinstance(expires, int)
    ):
        return None
    return Ticket(namespace, name, uid, where, kind, expires)


def _time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def refusal(ticket: Ticket, rollout: Rollout | None, now: datetime) -> str | None:
    """Why ``ticket`` must not act on ``rollout`` (the Rollout of that name now) at ``now``;
    None when it may. Says who used it, and when, if it was used."""
    where = f"{ticket.namespace}/{ticket.name}"
    if rollout is None or (rollout.metadata.uid or "") != ticket.uid:
        return f"rollout {where} was deleted: this was for an earlier Rollout of that name"
    status = rollout.status
    used = next((u for u in status.chat.used if u.nonce == ticket.nonce), None)
    if used is not None:
        done = commands.PAST_TENSE[used.kind]
        return f"already {done} by {used.actor} at {_time(used.at)}"
    gate = place(ticket.stage)
    if ticket.stage != stage(status):
        decided = [a for a in status.approvals if a.gate == gate]
        if decided:
            last = decided[-1]
            who = f" by {last.actor}" if last.actor else ""
            return f"already {last.decision.lower()}{who} at {_time(last.at)}"
        return f"this was for {gate}; rollout {where} has moved on: {status.phase}"
    if ticket.expires < now.timestamp():
        return "this link has expired"
    return commands.refusal(ticket.kind, status.phase)


# --- who may act from Slack --------------------------------------------------------------


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SlackUser(_Config):
    """The Kubernetes identity of one Slack user."""

    username: str = Field(min_length=1, max_length=253)
    groups: tuple[str, ...] = Field(default=(), max_length=64)


class SlackUserGroup(_Config):
    """The Kubernetes groups every member of a Slack user group holds."""

    groups: tuple[str, ...] = Field(min_length=1, max_length=64)


class SlackIdentities(_Config):
    """The platform team's mapping from Slack to Kubernetes (a ConfigMap in the controller's
    namespace; chart value ``slack.identities``). A Slack user gets the username mapped to
    them (else ``slack:<user ID>``) and the groups of their entry and of every mapped user
    group they belong to; a user with neither is nobody."""

    workspace: str | None = Field(default=None, pattern=_SLACK_ID, description="Team ID.")
    users: dict[str, SlackUser] = Field(default_factory=dict, max_length=10_000)
    user_groups: dict[str, SlackUserGroup] = Field(
        default_factory=dict, alias="userGroups", max_length=1_000
    )

    def model_post_init(self, _: object) -> None:
        bad = [k for k in (*self.users, *self.user_groups) if not re.fullmatch(_SLACK_ID, k)]
        if bad:
            raise ValueError(f"not Slack IDs (like U0123ABCD or S0123ABCD): {', '.join(bad[:5])}")


@dataclass(frozen=True)
class Person:
    """Someone acting from Slack, and who they are to Kubernetes."""

    user_id: str
    name: str
    username: str
    groups: tuple[str, ...]

    @property
    def actor(self) -> str:
        """The recorded actor, naming both: ``slack:U123 (alice) as alice@corp.example``."""
        return f"slack:{self.user_id} ({self.name}) as {self.username}"


def person(
    identities: SlackIdentities,
    team: str,
    user_id: str,
    name: str,
    members: Callable[[str], Iterable[str]],
) -> Person | None:
    """Who the Slack user ``user_id`` of workspace ``team`` is to Kubernetes; None when the
    mapping names them nowhere. ``members`` lists a Slack user group's members."""
    if identities.workspace is not None and team != identities.workspace:
        return None
    entry = identities.users.get(user_id)
    groups = list(entry.groups) if entry else []
    for group_id, group in sorted(identities.user_groups.items()):
        if user_id in set(members(group_id)):
            groups.extend(group.groups)
    if entry is None and not groups:
        return None
    username = entry.username if entry else f"slack:{user_id}"
    return Person(user_id, name[:80], username, tuple(dict.fromkeys(groups)))


# --- the slash command -------------------------------------------------------------------


@dataclass(frozen=True)
class Slash:
    """``/canary <verb> <namespace>/<rollout> [comment]``; verb is a command kind or status."""

    verb: str
    namespace: str
    name: str
    comment: str


USAGE = (
    "usage: /canary approve|promote|abort|retry|pause|resume <namespace>/<rollout> [comment]"
    "  or  /canary status <namespace>/<rollout>"
)


def parse_slash(text: str) -> Slash | str:
    """The slash command's text parsed, or what is wrong with it."""
    parts = text.strip().split(maxsplit=2)
    if len(parts) < 2:
        return USAGE
    verb, target = parts[0].lower(), parts[1]
    if verb != "status" and verb not in _KINDS:
        return f"unknown command {verb[:32]!r}; {USAGE}"
    namespace, _, name = target.partition("/")
    if not access.is_namespace(namespace) or not access.is_name(name):
        return f"{target[:300]!r} is not <namespace>/<rollout>; {USAGE}"
    comment = parts[2] if len(parts) > 2 else ""
    return Slash(verb, namespace, name, comment[:1024])


def kind(verb: str) -> CommandKind:
    """A slash verb that is a command, as its kind."""
    assert verb in _KINDS
    return verb  # type: ignore[return-value]


def status_text(rollout: Rollout) -> str:
    """What ``/canary status`` answers (plain text; the caller escapes it for Slack)."""
    status = rollout.status
    meta = rollout.metadata
    steps = f"step {status.current_step_index + 1}" if status.steps else "not started"
    lines = [
        f"{meta.namespace}/{meta.name} ({rollout.spec.target_ref.name}): {status.phase}, "
        f"{steps}, canary weight {status.canary_weight}%",
    ]
    if status.message:
        lines.append(status.message)
    lines.extend(
        f"{a.gate}: {a.decision.lower()} by {a.actor or 'someone'} at {_time(a.at)}"
        for a in status.approvals[-5:]
    )
    return "\n".join(lines)


def with_used(status: RolloutStatus, ticket: Ticket, actor: str, now: datetime) -> RolloutStatus:
    """``status`` with ``ticket`` recorded as used (the newest 16 are kept)."""
    record = ChatActionUsed(nonce=ticket.nonce, kind=ticket.kind, actor=actor[:512], at=now)
    chat = status.chat.model_copy(update={"used": [*status.chat.used[-15:], record]})
    return status.model_copy(update={"chat": chat})


def with_message(status: RolloutStatus, channel: str, ts: str) -> RolloutStatus:
    """``status`` remembering the Slack message ``ts`` in ``channel`` (one per channel)."""
    kept = [m for m in status.chat.slack if m.channel != channel][-7:]
    chat = status.chat.model_copy(update={"slack": [*kept, SlackMessage(channel=channel, ts=ts)]})
    return status.model_copy(update={"chat": chat})


def progress(rollout: Rollout) -> str:
    """One line on where the release is: phase, step, weight, and the latest step's checks."""
    status = rollout.status
    parts: list[str] = [status.phase]
    if status.steps:
        parts.append(f"step {min(status.current_step_index, len(status.steps) - 1) + 1}")
    parts.append(f"canary {status.canary_weight}%")
    if status.steps:
        step = status.steps[-1]
        parts.append(f"{step.canary.requests} canary requests, {step.canary.failures} failed")
        parts.extend(
            f"{c.name} {c.verdict}"
            + (
                f" ({c.value:.4g} vs {c.limit:.4g})"
                if c.value is not None and c.limit is not None
                else ""
            )
            for c in step.checks
        )
    approvals = [a for a in status.approvals if a.actor]
    if approvals:
        last = approvals[-1]
        parts.append(f"{last.gate} {last.decision.lower()} by {last.actor}")
    return " · ".join(parts)
