"""POSTing to a receiver: how every notification (webhook, Slack, Teams) leaves the controller.

Never raises: a delivery that fails (refused by the outbound policy, refused by the receiver,
timed out, non-2xx, a malformed answer) comes back as an ``outbox.Attempt`` that says why and
whether trying again can help; the delivery worker (``canary.runtime.outbox``) retries it. It
runs outside the reconcile, and a bounded timeout keeps a hanging receiver from holding a
delivery thread for long.

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
from canary.core.outbox import Attempt

log = structlog.get_logger("canary.notifiers")

TIMEOUT = 5.0
"""Seconds a delivery may take before it counts as failed (and is retried later)."""

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


class _Unresolved(OSError):
    """The host did not resolve (now: DNS may answer later)."""


def _checked_address(policy: outbound.Policy, target: outbound.Destination) -> str:
    """An address of the target's host that the policy allows; Refused if any is not."""
    try:
        found = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise _Unresolved(f"{target.host} does not resolve") from None
    addresses = [str(info[4][0]) for info in found]
    if not addresses:
        raise _Unresolved(f"{target.host} does not resolve")
    for address in addresses:
        outbound.check_address(policy, target, address)
    return addresses[0]


def post(
    url: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    timeout: float = TIMEOUT,
    policy: outbound.Policy = STRICT,
) -> Attempt:
    """POST ``body`` (JSON) with ``headers``; acknowledged when the receiver answered 2xx. A
    URL the policy refuses and a 4xx other than 408 and 429 are refusals for good."""
    try:
        target = outbound.destination(url)
    except outbound.Refused as refused:
        log.warning("notification_refused", reason=str(refused))
        return Attempt(False, str(refused), permanent=True)
    try:
        address = _checked_address(policy, target)
        connection_type = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
        connection = connection_type(target.host, target.port, address, timeout)
        try:
            connection.request(
                "POST",
                target.target,
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": "canary",
                    **(headers or {}),
                },
            )
            response = connection.getresponse()
            status = response.status
        finally:
            connection.close()
    except outbound.Refused as refused:
        log.warning("notification_refused", host=target.host, reason=str(refused))
        return Attempt(False, str(refused), permanent=True)
    except (OSError, http.client.HTTPException, ValueError) as error:
        # OSError: refused, unreachable, timed out, TLS; HTTPException: a malformed answer.
        # The exception's text may quote the URL: log its kind only.
        log.warning("notification_failed", host=target.host, error=type(error).__name__)
        return Attempt(False, f"{target.host}: {type(error).__name__}")
    if not 200 <= status < 300:
        log.warning("notification_failed", host=target.host, status=status)
        permanent = 400 <= status < 500 and status not in (408, 429)
        return Attempt(False, f"{target.host} answered {status}", permanent=permanent)
    return Attempt(True)


def post_json(
    url: str, document: Any, timeout: float = TIMEOUT, policy: outbound.Policy = STRICT
) -> bool:
    """POST ``document`` as JSON; True when the receiver answered 2xx. Never raises."""
    return post(url, json.dumps(document).encode(), timeout=timeout, policy=policy).ok
