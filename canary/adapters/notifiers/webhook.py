"""A generic webhook: each rollout event is POSTed as JSON to a URL.

Implements ``ports.EventRecorder``. Never raises: a delivery that fails (refused by the outbound
policy, refused by the receiver, timed out, non-2xx, a malformed answer) is logged and dropped,
because a notification must never stop a rollback. The timeout is short for the same reason:
``record`` runs inside a reconcile.

Every URL passes ``canary.core.outbound`` first: the host is resolved here, every address it
resolves to is checked, and the connection goes to the address that was checked (so a second
DNS answer cannot swap in another). Redirects are not followed. Logs name the host only: the
URL and the exception text may carry the receiver's secret.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from typing import Any

import structlog

from canary.core import outbound
from canary.core.vocabulary import Event
from canary.model.rollout import Rollout

log = structlog.get_logger("canary.notifiers")

TIMEOUT = 2.0
"""Seconds a delivery may take before it is dropped."""

STRICT = outbound.Policy()
"""Public receivers only: the policy when the operator allows nothing more."""


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to a host name, connected to an address that was checked beforehand."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a host name (certificate and SNI for the name), connected to a checked address."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _checked_address(policy: outbound.Policy, target: outbound.Destination) -> str:
    """An address of the target's host that the policy allows; Refused if any is not."""
    try:
        found = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise outbound.Refused(f"{target.host} does not resolve") from None
    addresses = [str(info[4][0]) for info in found]
    if not addresses:
        raise outbound.Refused(f"{target.host} does not resolve")
    for address in addresses:
        outbound.check_address(policy, target, address)
    return addresses[0]


def post_json(
    url: str, document: Any, timeout: float = TIMEOUT, policy: outbound.Policy = STRICT
) -> bool:
    """POST ``document`` as JSON; True when the receiver answered 2xx. Never raises."""
    try:
        target = outbound.destination(url)
    except outbound.Refused as refused:
        log.warning("notification_refused", reason=str(refused))
        return False
    try:
        address = _checked_address(policy, target)
        connection_type = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
        connection = connection_type(target.host, target.port, address, timeout)
        try:
            connection.request(
                "POST",
                target.target,
                body=json.dumps(document).encode(),
                headers={"Content-Type": "application/json", "User-Agent": "canary"},
            )
            response = connection.getresponse()
            status = response.status
        finally:
            connection.close()
    except outbound.Refused as refused:
        log.warning("notification_refused", host=target.host, reason=str(refused))
        return False
    except (OSError, http.client.HTTPException, ValueError) as error:
        # OSError: refused, unreachable, timed out, TLS; HTTPException: a malformed answer.
        # The exception's text may quote the URL: log its kind only.
        log.warning("notification_dropped", host=target.host, error=type(error).__name__)
        return False
    if not 200 <= status < 300:
        log.warning("notification_dropped", host=target.host, status=status)
        return False
    return True


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

    def __init__(
        self, url: str, timeout: float = TIMEOUT, policy: outbound.Policy = STRICT
    ) -> None:
        self.url, self.timeout, self.policy = url, timeout, policy

    def record(self, rollout: Rollout, event: Event) -> None:
        """Deliver the event; log and drop it on failure."""
        post_json(self.url, payload(rollout, event), self.timeout, self.policy)
