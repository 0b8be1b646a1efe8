"""Signed links for chat buttons: a URL that opens, until it expires, the page from which a
person gives one command to one Rollout.

Notifiers make the links (``link``); the HTTP API checks them (``valid``) before it shows the
confirmation page, and the command itself still needs the person's own reviewed token, so a
link preview fetching the URL, or anyone else holding it, never gives the command. The key is
the controller's link secret. Pure: the caller passes the time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from urllib.parse import quote, urlencode

_EXPIRES = re.compile(r"[0-9]{1,12}")


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
    # isdigit() accepts '²', which int() refuses: only ASCII digits are a time.
    if not secret or not _EXPIRES.fullmatch(expires) or int(expires) < now.timestamp():
        return False
    expected = signature(secret, namespace, name, kind, int(expires))
    return hmac.compare_digest(expected, sig)
