"""Delivers each rollout event to the notifications its policy lists (``spec.notifications``:
slack, msteams or webhook, each with a URL or a Secret holding it).

Implements ``ports.EventRecorder``; never raises. The composition root wires it with two
callables, so that this module needs no cluster access of its own: ``notifications`` (the
merged policy's list for a Rollout) and ``secret`` (the value of a Secret key in a namespace);
``delivered`` hears of each delivery (type, success) for the controller's metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog

from canary.adapters.notifiers.slack import SlackNotifier, text
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
    ) -> None:
        self._notifications, self._secret = notifications, secret
        self._api_url, self._link_secret, self._timeout = api_url, link_secret, timeout
        self._delivered, self._policy = delivered, policy
        self._interactive = interactive

    def _url(self, rollout: Rollout, notification: Notification) -> str | None:
        if notification.url is not None:
            return notification.url
        assert notification.url_from is not None  # the model requires one of the two
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
            url = self._url(rollout, notification)
            if url is None:
                log.warning("notification_dropped", reason="no URL", type=notification.type)
                self._delivered(notification.type, False)
                continue
            if notification.type == "slack":
                slack = SlackNotifier(
                    url,
                    api_url=self._api_url,
                    link_secret=self._link_secret,
                    interactive=self._interactive,
                    timeout=self._timeout,
                    policy=self._policy,
                )
                document = slack.message(rollout, event)
            elif notification.type == "msteams":
                document = {"text": text(rollout, event)}
            else:
                document = payload(rollout, event)
            self._delivered(
                notification.type, post_json(url, document, self._timeout, self._policy)
            )
