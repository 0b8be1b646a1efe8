"""A generic webhook: each rollout event is POSTed as JSON to a URL.

Implements ``ports.EventRecorder``. Never raises: a delivery that fails (refused, timed out,
non-2xx) is logged and dropped, because a notification must never stop a rollback. The timeout
is short for the same reason: ``record`` runs inside a reconcile.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import structlog

from canary.core.vocabulary import Event
from canary.model.rollout import Rollout

log = structlog.get_logger("canary.notifiers")

TIMEOUT = 2.0
"""Seconds a delivery may take before it is dropped."""


def post_json(url: str, document: Any, timeout: float = TIMEOUT) -> bool:
    """POST ``document`` as JSON; True when the receiver answered 2xx. Never raises."""
    try:
        request = urllib.request.Request(
            url,
            data=json.dumps(document).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "canary"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        with error:
            status = error.code
    except (OSError, ValueError) as error:
        # OSError covers refused connections, DNS failures and timeouts; ValueError a bad URL.
        log.warning("notification_dropped", url=_redacted(url), error=str(error))
        return False
    if not 200 <= status < 300:
        log.warning("notification_dropped", url=_redacted(url), status=status)
        return False
    return True


def _redacted(url: str) -> str:
    # Webhook URLs carry their secret in the path (Slack's do): log only the host.
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/…"


def payload(rollout: Rollout, event: Event) -> dict[str, Any]:
    """The JSON a webhook receives about one event."""
    meta, status = rollout.metadata, rollout.status
    return {
        "rollout": {
            "namespace": meta.namespace,
            "name": meta.name,
            "target": rollout.spec.target_ref.name,
        },
        "phase": status.phase,
        "canaryWeight": status.canary_weight,
        "currentStepIndex": status.current_step_index,
        "type": event.type,
        "reason": event.reason,
        "message": event.message,
    }


class WebhookNotifier:
    """POSTs ``payload(rollout, event)`` to one URL."""

    def __init__(self, url: str, timeout: float = TIMEOUT) -> None:
        self.url, self.timeout = url, timeout

    def record(self, rollout: Rollout, event: Event) -> None:
        """Deliver the event; log and drop it on failure."""
        post_json(self.url, payload(rollout, event), self.timeout)
