"""Delivers each notification of a Rollout's outbox to the receiver its policy lists
(``spec.notifications``: slack, msteams or webhook, each with a URL or a Secret holding it).

Implements ``ports.Courier``; never raises. What is sent: for ``webhook`` the
``canary.dev/notification/v1`` document (``canary.core.notice``), signed when the notification
names a signing Secret; for ``msteams`` its Adaptive Card; for ``slack`` the Slack message
(``slack.SlackNotifier``). Every request carries the event's ``Idempotency-Key``.

The composition root wires it with two callables, so that this module needs no cluster access
of its own: ``notifications`` (the merged policy's list for a Rollout) and ``secret`` (the value
of a Secret key in a namespace); ``delivered`` hears of each attempt (type, success) for the
controller's metrics.

A slack notification with a ``channel``, when the controller has the Slack app's bot token
(``web``), is one message per Rollout and channel: posted once, then updated in place with
``chat.update`` as the release moves; ``remember`` stores the message's channel and ts in the
Rollout's status (``status.chat.slack``) so that a restarted controller updates the same
message. Without a bot token it falls back to the incoming-webhook URL, one message per event.
With the Slack app's interactivity (``interactive``), Slack buttons carry signed tickets.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from canary.adapters.notifiers.slack import LINK_LIFETIME, SlackNotifier, SlackWebApi, buttons
from canary.adapters.notifiers.webhook import STRICT, TIMEOUT, post
from canary.core import chat, links, notice, outbound, outbox
from canary.core.vocabulary import Event
from canary.errors import CanaryError
from canary.model.policy import Notification, SecretKeyRef
from canary.model.rollout import Rollout
from canary.model.status import OutboxEntry


class PolicyNotifier:
    """Sends an outbox entry to its notification of the Rollout's policy."""

    def __init__(
        self,
        notifications: Callable[[Rollout], Sequence[Notification]],
        secret: Callable[[str, SecretKeyRef], str | None],
        *,
        api_url: str | None = None,
        link_secret: str | None = None,
        timeout: float = TIMEOUT,
        delivered: Callable[[str, bool], None] = lambda _type, _ok: None,
        policy: outbound.Policy = STRICT,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        interactive: bool = False,
        web: SlackWebApi | None = None,
        remember: Callable[[Rollout, str, str], None] = lambda _rollout, _channel, _ts: None,
    ) -> None:
        self._notifications, self._secret = notifications, secret
        self._api_url, self._link_secret, self._timeout = api_url, link_secret, timeout
        self._delivered, self._policy, self._clock = delivered, policy, clock
        self._interactive, self._web, self._remember = interactive, web, remember
        # Messages posted by this process, by (Rollout UID, channel): the worker may deliver a
        # Rollout's next entry from a read made before the ts reached its status.
        self._posted: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def deliver(self, rollout: Rollout, entry: OutboxEntry) -> outbox.Attempt:
        """Send ``entry``; the outcome (counted for the metrics)."""
        attempt = self._deliver(rollout, entry)
        self._delivered(entry.type, attempt.ok)
        return attempt

    def _deliver(self, rollout: Rollout, entry: OutboxEntry) -> outbox.Attempt:
        try:
            targets = self._notifications(rollout)
        except CanaryError as error:
            return outbox.Attempt(False, f"the policy could not be read: {error}")
        if entry.receiver >= len(targets) or targets[entry.receiver].type != entry.type:
            return outbox.Attempt(False, "the notification left the policy", permanent=True)
        notification = targets[entry.receiver]
        event = Event(entry.event.type, entry.event.reason, entry.event.message)
        web, channel = self._web, notification.channel
        if web is not None and web.posts and channel is not None:
            return self._in_place(web, channel, rollout, entry, event)
        url = notification.url or self._value(rollout, notification.url_from)
        if url is None:
            return outbox.Attempt(False, "no URL: the Secret could not be read, or no bot token")
        headers = {notice.IDEMPOTENCY_HEADER: entry.key}
        document: Any
        # Buttons and links are for the stage the event left the release in.
        after = rollout.model_copy(update={"status": outbox.as_of(rollout.status, entry)})
        if notification.type == "slack":
            document = self._slack(url).message(after, event)
        else:
            document = notice.build(
                rollout,
                outbox.as_of(rollout.status, entry),
                event,
                key=entry.key,
                at=entry.at,
                step_count=entry.step_count,
                links=self._links(after, event),
            )
            if notification.type == "msteams":
                titles = {"dashboard": "Open"} | {
                    kind: kind.capitalize() for kind in buttons(event)
                }
                actions = document["links"]
                document = notice.adaptive_card(
                    document, {titles[kind]: url for kind, url in actions.items()}
                )
        body = json.dumps(document).encode()
        if notification.signing_secret_from is not None:
            key = self._value(rollout, notification.signing_secret_from)
            if key is None:
                return outbox.Attempt(False, "the Secret holding the signing key could not be read")
            timestamp = int(self._clock().timestamp())
            headers[notice.TIMESTAMP_HEADER] = str(timestamp)
            headers[notice.SIGNATURE_HEADER] = notice.signature(key.encode(), timestamp, body)
        return post(url, body, headers, self._timeout, self._policy)

    def _slack(self, url: str, *, progress: bool = False) -> SlackNotifier:
        return SlackNotifier(
            url,
            api_url=self._api_url,
            link_secret=self._link_secret,
            interactive=self._interactive,
            progress=progress,
            clock=self._clock,
        )

    def _in_place(
        self, web: SlackWebApi, channel: str, rollout: Rollout, entry: OutboxEntry, event: Event
    ) -> outbox.Attempt:
        """Update the Rollout's message in ``channel`` to where the release is now, or post it
        the first time (and remember it)."""
        document = self._slack("", progress=True).message(rollout, event)
        mine = (rollout.metadata.uid or "", channel)
        with self._lock:
            known = self._posted.get(mine)
        stored = next((m.ts for m in rollout.status.chat.slack if m.channel == channel), None)
        current = known or stored
        if current is not None:
            if web.update(channel, current, document):
                return outbox.Attempt(True)
            return outbox.Attempt(False, "Slack refused chat.update")
        ts = web.post(channel, document)
        if ts is None:
            return outbox.Attempt(False, "Slack refused chat.postMessage")
        with self._lock:
            self._posted[mine] = ts
            while len(self._posted) > 10_000:
                self._posted.popitem(last=False)
        self._remember(rollout, channel, ts)
        return outbox.Attempt(True)

    def _value(self, rollout: Rollout, ref: SecretKeyRef | None) -> str | None:
        if ref is None:
            return None
        try:
            return self._secret(rollout.metadata.namespace, ref)
        except CanaryError:
            return None

    def _links(self, rollout: Rollout, event: Event) -> dict[str, str]:
        """The release's dashboard page, and the signed command links the event offers."""
        if not self._api_url:
            return {}
        meta = rollout.metadata
        found = {
            "dashboard": f"{self._api_url.rstrip('/')}/ui/namespaces/{quote(meta.namespace)}"
            f"/rollouts/{quote(meta.name)}"
        }
        if self._link_secret:
            expires = self._clock() + LINK_LIFETIME
            for kind in buttons(event):
                ticket = chat.ticket_for(rollout, kind, expires)
                found[kind] = links.link(self._api_url, self._link_secret, ticket)
        return found
