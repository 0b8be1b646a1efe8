"""Slack (incoming webhook): a short message per rollout event, with Approve and Abort buttons.

``policy.PolicyNotifier`` sends it when it delivers the event from the outbox. The buttons are
signed links to canary's HTTP API (``canary.core.links``): following one shows a confirmation
page that gives the command, so link previews never act. Buttons appear only when the API's
public URL and its token are configured.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from canary.core import links
from canary.core.vocabulary import Event
from canary.model.rollout import Rollout

LINK_LIFETIME = timedelta(hours=24)
_ABORTABLE = frozenset({"AwaitingApproval", "Initialized", "StepAdvanced", "Approved", "Retried"})
_ICONS = {"Warning": ":warning:", "Normal": ":large_green_circle:"}


def escape(value: str) -> str:
    """``value`` with Slack's control characters escaped, so that tenant-controlled text cannot
    mention people (<!channel>), forge links (<https://…|…>) or break the message."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def text(rollout: Rollout, event: Event) -> str:
    """The one-line summary (also the notification's fallback text)."""
    meta = rollout.metadata
    return (
        f"{_ICONS[event.type]} canary {meta.namespace}/{meta.name} "
        f"({rollout.spec.target_ref.name}): {event.reason}: {event.message}"
    )


def buttons(event: Event) -> list[str]:
    """Which commands the message offers for this event."""
    offered = []
    if event.reason == "AwaitingApproval":
        offered.append("approve")
    if event.reason in _ABORTABLE:
        offered.append("abort")
    return offered


class SlackNotifier:
    """The messages for one Slack incoming-webhook URL."""

    def __init__(
        self,
        url: str,
        *,
        api_url: str | None = None,
        link_secret: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.url, self.api_url, self.link_secret, self.clock = url, api_url, link_secret, clock

    def message(self, rollout: Rollout, event: Event) -> dict[str, Any]:
        """The Slack message (text, and Block Kit blocks with the buttons)."""
        summary = escape(text(rollout, event))
        document: dict[str, Any] = {"text": summary}
        api_url, secret, offered = self.api_url, self.link_secret, buttons(event)
        if not (api_url and secret and offered):
            return document
        expires = self.clock() + LINK_LIFETIME
        elements = [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": kind.capitalize()},
                "style": "primary" if kind == "approve" else "danger",
                "url": links.link(
                    api_url,
                    secret,
                    namespace=rollout.metadata.namespace,
                    name=rollout.metadata.name,
                    kind=kind,
                    expires=expires,
                ),
            }
            for kind in offered
        ]
        document["blocks"] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": summary}},
            {"type": "actions", "elements": elements},
        ]
        return document
