"""Slack (incoming webhook): a short message per rollout event, with command buttons.

``policy.PolicyNotifier`` builds it when it delivers the event from the outbox (posting it to
the incoming webhook, or with ``SlackWebApi`` to a channel, updated in place). With the Slack
app's interactivity configured (``interactive``), the buttons are Slack buttons whose value is
a signed ticket for the Rollout's UID and its stage (``canary.core.chat``): Slack sends a press
to canary's ``/slack/actions``, which checks Slack's signature, the person's mapped identity and
RBAC, and acts at most once. Without interactivity, approve and abort are signed links to
canary's HTTP API (``canary.core.links``): following one shows a confirmation page that asks
the person to authenticate, so link previews never act. Buttons need the chat key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web import WebClient
from slack_sdk.webhook import WebhookClient

from canary.adapters.notifiers.webhook import TIMEOUT
from canary.core import chat, commands, links
from canary.core.chat import escape
from canary.core.vocabulary import CommandKind, Event
from canary.model.rollout import Rollout

log = structlog.get_logger("canary.notifiers")

LINK_LIFETIME = timedelta(hours=24)
SLACK_API = "https://slack.com/api/"
RESPONSE_ORIGINS = ("https://hooks.slack.com",)
"""Where Slack's ``response_url`` may point (answers go nowhere else)."""
_ABORTABLE = frozenset({"AwaitingApproval", "Initialized", "StepAdvanced", "Approved", "Retried"})
_ICONS = {"Warning": ":warning:", "Normal": ":large_green_circle:"}


def text(rollout: Rollout, event: Event) -> str:
    """The one-line summary (also the notification's fallback text)."""
    meta = rollout.metadata
    return (
        f"{_ICONS[event.type]} canary {meta.namespace}/{meta.name} "
        f"({rollout.spec.target_ref.name}): {event.reason}: {event.message}"
    )


_BY_PHASE: dict[str, tuple[CommandKind, ...]] = {
    "WaitingApproval": ("approve", "promote", "abort"),
    "Initializing": ("pause", "abort"),
    "Progressing": ("pause", "promote", "abort"),
    "Paused": ("resume", "abort"),
}
_STYLES = {"approve": "primary", "promote": "primary", "abort": "danger"}
_CONFIRM_ABORT = {
    "title": {"type": "plain_text", "text": "Abort the release?"},
    "text": {"type": "plain_text", "text": "All traffic goes back to stable."},
    "confirm": {"type": "plain_text", "text": "Abort"},
    "deny": {"type": "plain_text", "text": "Keep going"},
    "style": "danger",
}


def offered(rollout: Rollout) -> list[CommandKind]:
    """Which commands interactive buttons offer where the release is now (after the event)."""
    phase = rollout.status.phase
    if rollout.status.paused_at is not None and phase != "Paused":
        kinds: tuple[CommandKind, ...] = ("resume", "abort")
    else:
        kinds = _BY_PHASE.get(phase, ())
    return [kind for kind in kinds if commands.refusal(kind, phase) is None]


def action_buttons(rollout: Rollout, key: str, expires: datetime) -> list[dict[str, Any]]:
    """Slack buttons, each carrying a ticket signed with ``key`` for the Rollout's stage."""
    elements = []
    for kind in offered(rollout):
        button: dict[str, Any] = {
            "type": "button",
            "action_id": f"canary-{kind}",
            "text": {"type": "plain_text", "text": kind.capitalize()},
            "value": chat.sign(key, chat.ticket_for(rollout, kind, expires)),
        }
        if kind in _STYLES:
            button["style"] = _STYLES[kind]
        if kind == "abort":
            button["confirm"] = _CONFIRM_ABORT
        elements.append(button)
    return elements


def buttons(event: Event) -> list[CommandKind]:
    """Which commands a message with links offers for this event."""
    offered: list[CommandKind] = []
    if event.reason == "AwaitingApproval":
        offered.append("approve")
    if event.reason in _ABORTABLE:
        offered.append("abort")
    return offered


class SlackNotifier:
    """Posts to one Slack incoming-webhook URL."""

    def __init__(
        self,
        url: str,
        *,
        api_url: str | None = None,
        link_secret: str | None = None,
        interactive: bool = False,
        progress: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.url, self.api_url, self.link_secret, self.clock = url, api_url, link_secret, clock
        self.interactive, self.progress = interactive, progress

    def message(self, rollout: Rollout, event: Event) -> dict[str, Any]:
        """The Slack message (text, and Block Kit blocks with the buttons)."""
        summary = escape(text(rollout, event))
        document: dict[str, Any] = {"text": summary}
        api_url, secret, linked = self.api_url, self.link_secret, buttons(event)
        expires = self.clock() + LINK_LIFETIME
        section = {"type": "section", "text": {"type": "mrkdwn", "text": summary}}
        if self.interactive or self.progress:
            # Interactive, or posted with the Web API and updated in place: where the release
            # is, and buttons when Slack can send their presses to canary.
            context = {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": escape(chat.progress(rollout))}],
            }
            document["blocks"] = [section, context]
            if self.interactive and secret:
                elements = action_buttons(rollout, secret, expires)
                if elements:
                    document["blocks"].append({"type": "actions", "elements": elements})
            return document
        if not (api_url and secret and linked):
            return document
        elements = [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": kind.capitalize()},
                "style": "primary" if kind == "approve" else "danger",
                "url": links.link(api_url, secret, chat.ticket_for(rollout, kind, expires)),
            }
            for kind in linked
        ]
        document["blocks"] = [section, {"type": "actions", "elements": elements}]
        return document


class SlackWebApi:
    """Slack's Web API with the app's bot token: messages posted to a channel and updated in
    place (``chat.postMessage``, ``chat.update``), the members of a user group
    (``usergroups.users.list``, cached for ``ttl`` seconds), and answers to a payload's
    ``response_url``. Never raises: a failure is logged and means no message / no members /
    no answer."""

    def __init__(
        self,
        token: str | None,
        *,
        base_url: str = SLACK_API,
        response_origins: tuple[str, ...] = RESPONSE_ORIGINS,
        timeout: float = TIMEOUT,
        ttl: float = 60.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = WebClient(token=token, base_url=base_url, timeout=int(timeout) or 1)
        self._token, self._origins, self._timeout = token, response_origins, timeout
        self._ttl, self._now = ttl, now
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    @property
    def posts(self) -> bool:
        """Whether there is a bot token to post with."""
        return bool(self._token)

    def post(self, channel: str, document: dict[str, Any]) -> str | None:
        """Post a message to ``channel``; its ``ts`` (what ``update`` needs), None on failure."""
        try:
            answer = self._client.chat_postMessage(channel=channel, **document)
        except (SlackApiError, OSError, ValueError) as error:
            log.warning("notification_dropped", host="slack", error=type(error).__name__)
            return None
        ts = answer.get("ts")
        return str(ts) if ts else None

    def update(self, channel: str, ts: str, document: dict[str, Any]) -> bool:
        """Replace the message ``ts`` in ``channel``; True when Slack took it."""
        try:
            self._client.chat_update(channel=channel, ts=ts, **document)
        except (SlackApiError, OSError, ValueError) as error:
            log.warning("notification_dropped", host="slack", error=type(error).__name__)
            return False
        return True

    def members(self, group: str) -> frozenset[str]:
        """The Slack user IDs in user group ``group`` (empty without a bot token)."""
        if not self._token:
            return frozenset()
        with self._lock:
            cached = self._members.get(group)
        if cached is not None and cached[0] > self._now():
            return cached[1]
        try:
            answer = self._client.usergroups_users_list(usergroup=group)
            users = frozenset(str(u) for u in answer.get("users") or ())
        except (SlackApiError, OSError, ValueError) as error:
            log.warning("slack_usergroup_unread", group=group, error=type(error).__name__)
            return cached[1] if cached is not None else frozenset()
        with self._lock:
            self._members[group] = (self._now() + self._ttl, users)
        return users

    def respond(self, url: str, document: dict[str, Any]) -> None:
        """POST an answer to a ``response_url`` under one of the allowed origins."""
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" not in self._origins:
            log.warning("slack_response_refused", host=parts.hostname or "")
            return
        try:
            reply = WebhookClient(url, timeout=int(self._timeout) or 1).send_dict(document)
        except (OSError, ValueError) as error:
            log.warning("slack_response_dropped", error=type(error).__name__)
            return
        if reply.status_code != 200:
            log.warning("slack_response_dropped", status=reply.status_code)
