"""Slack's endpoints: the interactivity URL (the buttons of canary's messages) and the slash
command ``/canary``. Slack signs these requests instead of sending a bearer token:

    POST /slack/actions     block_actions (form field ``payload``, JSON): a button's value is
                            a signed ticket (``canary.core.chat``) → 200, the answer goes to
                            the payload's ``response_url`` as an ephemeral message
    POST /slack/commands    ``/canary approve ns/name [comment]``, ``/canary status ns/name``
                            (and promote, abort, retry, pause, resume) → 200 with the answer

Every request must carry a valid ``X-Slack-Signature`` (v0 HMAC-SHA256 over the timestamp and
the body with the app's signing secret, checked by ``slack_sdk``'s verifier in constant time)
with an ``X-Slack-Request-Timestamp`` within 5 minutes; a request seen before is refused (a
replay), else 401. Then the Slack user must be in the platform team's mapping to Kubernetes
(``chat.SlackIdentities``) and RBAC must grant that identity the same permission as any other
way of giving the command (a SubjectAccessReview); the controller writes the command naming
both (``slack:U123 (alice) as alice``). A button acts at most once, for the stage it was posted
for: its nonce is recorded in ``status.chat.used`` before the command is written.

Built into the app by ``canary.api.app``; blocking work runs on the app's worker pool. Must
not import adapters: answers to ``response_url`` go out through ``Slack.respond``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs

import structlog
from slack_sdk.signature import Clock, SignatureVerifier
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from canary.api.access import Gate
from canary.api.problems import Problem
from canary.core import access, chat
from canary.core.vocabulary import CommandKind
from canary.errors import Conflict
from canary.model.rollout import Rollout
from canary.ports import Identity, Ref, RolloutStore

log = structlog.get_logger("canary.api.slack")

WINDOW = 5 * 60
"""Seconds a signed request stays valid (Slack's own rule)."""
T = TypeVar("T")


@dataclass
class Slack:
    """The Slack app as the API needs it."""

    signing_secret: str
    identities: Callable[[], chat.SlackIdentities]
    """The platform team's mapping (read again as its ConfigMap changes)."""
    members: Callable[[str], Iterable[str]] = lambda _group: ()
    """The members of a Slack user group (the Web API's usergroups.users.list)."""
    respond: Callable[[str, dict[str, Any]], None] = lambda _url, _document: None
    """Posts an answer to a payload's ``response_url``."""
    now: Callable[[], float] = time.time


class _Clock(Clock):
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


class _Replays:
    """Signatures seen within the window: the same signed request is accepted once."""

    def __init__(self, size: int = 100_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._size, self._lock = size, threading.Lock()

    def first(self, signature: str, now: float) -> bool:
        with self._lock:
            while self._seen and next(iter(self._seen.values())) < now - 2 * WINDOW:
                self._seen.popitem(last=False)
            if signature in self._seen:
                return False
            self._seen[signature] = now
            while len(self._seen) > self._size:
                self._seen.popitem(last=False)
            return True


def _ascii_digits(text: str) -> bool:
    return 0 < len(text) <= 12 and text.isascii() and text.isdigit()


@dataclass
class SlackEndpoints:
    """The two endpoints, given what the app's other handlers have."""

    slack: Slack
    store: RolloutStore
    gate: Gate
    key: str | None
    """The chat key that signs tickets (the link secret)."""
    clock: Callable[[], datetime]
    call: Callable[..., Awaitable[Any]]
    """Runs a blocking call on the app's worker pool."""
    body: Callable[[Request], Awaitable[bytes]]
    give: Callable[[Ref, CommandKind, str, str], tuple[int, dict[str, Any]]]
    """Writes a command (404 and 409 as Problems); blocking."""
    replays: _Replays = field(default_factory=_Replays)

    def __post_init__(self) -> None:
        self.verifier = SignatureVerifier(self.slack.signing_secret, _Clock(self.slack.now))

    async def _signed(self, request: Request) -> dict[str, str]:
        """The form Slack sent, once its signature is checked; Problem 401 otherwise."""
        raw = await self.body(request)
        stamp = request.headers.get("x-slack-request-timestamp", "")
        signature = request.headers.get("x-slack-signature", "")
        if not (_ascii_digits(stamp) and signature.isascii() and len(signature) <= 128):
            raise Problem(401, "missing or malformed X-Slack-Signature / X-Slack-Request-Timestamp")
        if abs(self.slack.now() - int(stamp)) > WINDOW:
            raise Problem(401, "the request's timestamp is more than 5 minutes away: refused")
        try:
            text = raw.decode()
        except UnicodeDecodeError as error:
            raise Problem(400, "the body is not UTF-8") from error
        if not self.verifier.is_valid(text, stamp, signature):
            log.warning("slack_request_refused", reason="signature")
            raise Problem(401, "the Slack signature does not match this request: refused")
        if not self.replays.first(signature, self.slack.now()):
            log.warning("slack_request_refused", reason="replay")
            raise Problem(401, "this signed request was already received: a replay, refused")
        try:
            form = parse_qs(text, max_num_fields=64)
        except ValueError as error:
            raise Problem(400, "the form has too many fields") from error
        return {k: v[0] for k, v in form.items()}

    def _person(self, team: str, user_id: str, name: str) -> chat.Person | str:
        who = chat.person(self.slack.identities(), team, user_id, name, self.slack.members)
        if who is None:
            return (
                f"you (slack:{user_id}) are not mapped to a Kubernetes identity; "
                "ask the platform team to add you to canary's Slack identities"
            )
        return who

    def _allowed(self, who: chat.Person, permission: access.Permission, ns: str) -> str | None:
        identity = Identity(who.username, groups=who.groups)
        if self.gate.allowed(identity, permission, ns):
            return None
        what = permission.resource + (
            f"/{permission.subresource}" if permission.subresource else ""
        )
        return f"{who.actor} may not {permission.verb} {what}.{permission.group} in namespace {ns}"

    def _given(self, ref: Ref, kind: CommandKind, who: chat.Person, comment: str) -> str:
        try:
            self.give(ref, kind, who.actor, comment)
        except Problem as problem:
            return problem.detail
        log.info("slack_command_given", rollout=str(ref), kind=kind, actor=who.actor)
        return f"{kind} given to {ref} by {who.actor}"

    # -- block_actions ---------------------------------------------------------------------

    def _button(self, payload: dict[str, Any]) -> str:
        """Act on a button press (blocking); the answer for the person."""
        team = str((payload.get("team") or {}).get("id", ""))
        user = payload.get("user") or {}
        actions = payload.get("actions") or []
        if not isinstance(user, dict) or not isinstance(actions, list) or len(actions) != 1:
            return "this is not a canary button"
        value = actions[0].get("value", "") if isinstance(actions[0], dict) else ""
        ticket = chat.read(self.key or "", str(value))
        if ticket is None:
            log.warning("slack_ticket_refused", user=str(user.get("id", ""))[:32])
            return "this button is not canary's, or it was altered: nothing done"
        who = self._person(team, str(user.get("id", "")), str(user.get("username", "")))
        if isinstance(who, str):
            return who
        ref = Ref(ticket.namespace, ticket.name)
        refused = self._allowed(who, access.command_permission(ticket.kind), ref.namespace)
        if refused is not None:
            return refused
        for _ in range(3):
            rollout = self.store.get(ref)
            why = chat.refusal(ticket, rollout, self.clock())
            if why is not None:
                return why
            assert rollout is not None
            try:
                self._use(rollout, ticket, who)
            except Conflict:
                continue  # the controller wrote status meanwhile: look again
            return self._given(ref, ticket.kind, who, "")
        return f"rollout {ref} is changing too fast; press again"

    def _use(self, rollout: Rollout, ticket: chat.Ticket, who: chat.Person) -> None:
        status = chat.with_used(rollout.status, ticket, who.actor, self.clock())
        self.store.write_status(rollout, status)

    async def actions(self, request: Request) -> Response:
        form = await self._signed(request)
        try:
            payload = json.loads(form.get("payload", ""))
        except ValueError as error:
            raise Problem(400, "the form field 'payload' must be JSON") from error
        if not isinstance(payload, dict) or payload.get("type") != "block_actions":
            return Response(status_code=200)  # other interactions are not canary's
        answer = await self.call(self._button, payload)
        url = payload.get("response_url")
        if isinstance(url, str):
            document = {"response_type": "ephemeral", "replace_original": False}
            await self.call(self.slack.respond, url, {**document, "text": chat.escape(answer)})
        return Response(status_code=200)

    # -- the slash command -----------------------------------------------------------------

    def _slash(self, form: dict[str, str]) -> str:
        """Carry out ``/canary …`` (blocking); the answer for the person."""
        parsed = chat.parse_slash(form.get("text", ""))
        if isinstance(parsed, str):
            return parsed
        who = self._person(
            form.get("team_id", ""), form.get("user_id", ""), form.get("user_name", "")
        )
        if isinstance(who, str):
            return who
        ref = Ref(parsed.namespace, parsed.name)
        if parsed.verb == "status":
            refused = self._allowed(who, access.READ, ref.namespace)
            if refused is not None:
                return refused
            rollout = self.store.get(ref)
            if rollout is None:
                return f'rollouts.canary.dev "{ref.name}" not found in namespace {ref.namespace}'
            return chat.status_text(rollout)
        kind = chat.kind(parsed.verb)
        refused = self._allowed(who, access.command_permission(kind), ref.namespace)
        if refused is not None:
            return refused
        return self._given(ref, kind, who, parsed.comment)

    async def commands(self, request: Request) -> Response:
        form = await self._signed(request)
        answer = await self.call(self._slash, form)
        return JSONResponse({"response_type": "ephemeral", "text": chat.escape(answer)})
