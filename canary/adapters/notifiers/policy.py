"""Delivers each rollout event to the notifications its policy lists (``spec.notifications``:
slack, msteams or webhook, each with a URL or a Secret holding it; slack may name a channel).

A slack notification with a channel, when the controller has the Slack app's bot token
(``web``), is one message per Rollout and channel, posted once and then updated in place with
``chat.update`` as the release moves; ``remember`` stores the message's channel and ts in the
Rollout's status (``status.chat.slack``) so that a restarted controller updates the same
message. Without a bot token it falls back to the incoming-webhook URL, one message per event.

Implements ``ports.EventRecorder``; never raises. The composition root wires it with two
callables, so that this module needs no cluster access of its own: ``notifications`` (the
merged policy's list for a Rollout) and ``secret`` (the value of a Secret key in a namespace);
``delivered`` hears of each delivery (type, success) for the controller's metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog

from canary.adapters.notifiers.slack import SlackNotifier, SlackWebApi, text
from canary.adapters.notifiers.webhook import STRICT, TIMEOUT, payload, post_json
from canary.core import outbound
from canary.core.vocabulary import Event
from canary.errors import CanaryError
from canary.model.policy import Notification, SecretKeyRef
from canary.model.rollout import Rollout

log = structlog.get_logger("canary.notifiers")


class PolicyNotifier:
    """Fans an event out to each notification of the Rollout's policy."""

    def __init__(
        self,
        notifications: Callable[[Rollout], Sequence[Notification]],
        secret: Callable[[str, SecretKeyRef], str | None],
        *,
        api_url: str | None = None,
        link_secret: str | None = None,
        interactive: bool = False,
        timeout: float = TIMEOUT,
        delivered: Callable[[str, bool], None] = lambda _type, _ok: None,
        policy: outbound.Policy = STRICT,
        web: SlackWebApi | None = None,
        remember: Callable[[Rollout, str, str], None] = lambda _rollout, _channel, _ts: None,
    ) -> None:
        self._notifications, self._secret = notifications, secret
        self._api_url, self._link_secret, self._timeout = api_url, link_secret, timeout
        self._delivered, self._policy = delivered, policy
        self._interactive, self._web, self._remember = interactive, web, remember

    def _url(self, rollout: Rollout, notification: Notification) -> str | None:
        if notification.url is not None:
            return notification.url
        if notification.url_from is None:
            return None  # a slack channel without a bot token to post with
        try:
            return self._secret(rollout.metadata.namespace, notification.url_from)
        except CanaryError as error:
            log.warning("notification_dropped", secret=notification.url_from.name, error=str(error))
            return None

    def record(self, rollout: Rollout, event: Event) -> None:
        """Deliver ``event`` to every notification; log and drop what fails."""
        try:
            targets = self._notifications(rollout)
        except CanaryError as error:
            log.warning("notification_dropped", rollout=rollout.metadata.name, error=str(error))
            return
        for notification in targets:
            web, channel = self._web, notification.channel
            if web is not None and web.posts and channel is not None:
                self._delivered("slack", self._in_place(web, channel, rollout, event))
                continue
            url = self._url(rollout, notification)
            if url is None:
                log.warning("notification_dropped", reason="no URL", type=notification.type)
                self._delivered(notification.type, False)
                continue
            if notification.type == "slack":
                slack = self._slack(url)
                document = slack.message(rollout, event)
            elif notification.type == "msteams":
                document = {"text": text(rollout, event)}
            else:
                document = payload(rollout, event)
            self._delivered(
                notification.type, post_json(url, document, self._timeout, self._policy)
            )

    def _slack(self, url: str, *, progress: bool = False) -> SlackNotifier:
        return SlackNotifier(
            url,
            progress=progress,
            api_url=self._api_url,
            link_secret=self._link_secret,
            interactive=self._interactive,
            timeout=self._timeout,
            policy=self._policy,
        )

    def _in_place(self, web: SlackWebApi, channel: str, rollout: Rollout, event: Event) -> bool:
        """Update the Rollout's message in ``channel``, or post it the first time."""
        document = self._slack("", progress=True).message(rollout, event)
        known = next((m for m in rollout.status.chat.slack if m.channel == channel), None)
        if known is not None:
            return web.update(channel, known.ts, document)
        ts = web.post(channel, document)
        if ts is None:
            return False
        self._remember(rollout, channel, ts)
        return True
