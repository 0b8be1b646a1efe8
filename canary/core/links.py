"""Signed links for chat buttons: a URL that lets whoever holds it give one command to one
Rollout until it expires, without a bearer token (a chat client cannot send one).

Notifiers make the links (``link``); the HTTP API checks them (``valid``) and shows a
confirmation page first, so a link preview fetching the URL never gives the command. The key is
the API's token. Pure: the caller passes the time.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from urllib.parse import quote, urlencode


def signature(secret: str, namespace: str, name: str, kind: str, expires: int) -> str:
    """The HMAC-SHA256 of what the link allows, hex."""
    message = f"{namespace}/{name}/{kind}/{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def path(namespace: str, name: str, kind: str) -> str:
    """The API path of a command on a Rollout."""
    return f"/api/v1/namespaces/{quote(namespace)}/rollouts/{quote(name)}/{quote(kind)}"


def link(
    base_url: str, secret: str, *, namespace: str, name: str, kind: str, expires: datetime
) -> str:
    """A URL that gives ``kind`` to the Rollout when followed and confirmed before ``expires``."""
    stamp = int(expires.timestamp())
    query = urlencode({"expires": stamp, "sig": signature(secret, namespace, name, kind, stamp)})
    return f"{base_url.rstrip('/')}{path(namespace, name, kind)}?{query}"


def valid(
    secret: str,
    *,
    namespace: str,
    name: str,
    kind: str,
    expires: str,
    sig: str,
    now: datetime,
) -> bool:
    """Whether a link's ``expires`` and ``sig`` allow ``kind`` on the Rollout at ``now``."""
    if not secret or not expires.isdigit() or int(expires) < now.timestamp():
        return False
    expected = signature(secret, namespace, name, kind, int(expires))
    return hmac.compare_digest(expected, sig)
