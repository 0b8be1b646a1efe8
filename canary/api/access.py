"""Who is calling and what they may do: the API's gate in front of ``ports.AccessReview``.

``Gate.identify`` reads ``Authorization: Bearer <token>`` and asks the cluster who holds the
token (a TokenReview); ``Gate.require`` asks whether that identity holds a permission in a
namespace (a SubjectAccessReview). Both answers are cached for a few seconds (bounded in size)
so that a page that makes many calls costs the API server few reviews; a revoked token or
permission stops working within ``ttl``. Raises ``Problem`` 401/403. Blocking: the app calls it
from its worker threads. Used only by ``canary.api.app``.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from canary.api.problems import Problem
from canary.core.access import Permission
from canary.ports import AccessReview, Identity

MAX_TOKEN = 16 * 1024
# RFC 6750 b64token, which covers JWTs and ServiceAccount tokens; anything else is refused
# before it reaches the API server.
_TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="canary"'}


class _Cache:
    """A small time-bounded LRU map."""

    def __init__(self, ttl: float, size: int, now: Callable[[], float]) -> None:
        self._ttl, self._size, self._now = ttl, size, now
        self._items: OrderedDict[Hashable, tuple[float, object]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> tuple[bool, object]:
        with self._lock:
            found = self._items.get(key)
            if found is None or found[0] < self._now():
                self._items.pop(key, None)
                return False, None
            self._items.move_to_end(key)
            return True, found[1]

    def put(self, key: Hashable, value: object) -> None:
        with self._lock:
            self._items[key] = (self._now() + self._ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


def bearer(header: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header; Problem 401 for anything else."""
    if not header:
        raise Problem(401, "send Authorization: Bearer <Kubernetes token>", headers=_CHALLENGE)
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Problem(401, "the Authorization header must be 'Bearer <token>'", headers=_CHALLENGE)
    if len(token) > MAX_TOKEN or not _TOKEN.fullmatch(token):
        raise Problem(401, "the bearer token is malformed", headers=_CHALLENGE)
    return token


class Gate:
    """Authentication by TokenReview, authorization by SubjectAccessReview, both cached."""

    def __init__(
        self,
        review: AccessReview,
        *,
        ttl: float = 10.0,
        size: int = 4096,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._review = review
        self._identities = _Cache(ttl, size, now)
        self._grants = _Cache(ttl, size, now)

    def identify(self, header: str | None) -> Identity:
        """The reviewed identity of the caller; Problem 401 when there is none."""
        token = bearer(header)
        key = hashlib.sha256(token.encode()).digest()
        hit, cached = self._identities.get(key)
        who = cached if hit else self._review.authenticate(token)
        if not hit:
            self._identities.put(key, who)
        if not isinstance(who, Identity):
            raise Problem(401, "the bearer token is not valid (TokenReview)", headers=_CHALLENGE)
        return who

    def allowed(self, who: Identity, permission: Permission, namespace: str | None) -> bool:
        """Whether RBAC grants ``permission`` to ``who`` in ``namespace`` (None: everywhere)."""
        extra = tuple(sorted((who.extra or {}).items()))
        key = (who.username, who.uid, who.groups, extra, permission, namespace)
        hit, cached = self._grants.get(key)
        if hit:
            return bool(cached)
        granted = self._review.allowed(who, permission, namespace)
        self._grants.put(key, granted)
        return granted

    def require(self, who: Identity, permission: Permission, namespace: str | None) -> None:
        """Problem 403 unless ``who`` holds ``permission`` in ``namespace``."""
        if not self.allowed(who, permission, namespace):
            what = permission.resource + (
                f"/{permission.subresource}" if permission.subresource else ""
            )
            where = f"in namespace {namespace}" if namespace else "in every namespace"
            raise Problem(
                403,
                f"{who.username} may not {permission.verb} {what}.{permission.group} {where}",
            )
