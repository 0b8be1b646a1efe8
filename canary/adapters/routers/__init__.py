"""Routers: the objects that split traffic between stable and canary (``ports.TrafficRouter``).

``httproute`` (Gateway API / Linkerd policy HTTPRoute) and ``trafficsplit`` (SMI TrafficSplit)
are independent of each other (an import-linter contract). Neither imports ``kubernetes``:
the composition root hands them a factory of custom-object clients, normally
``functools.partial(canary.adapters.kube.objects.CustomObjects, api_client)``, whose shape
this module states.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class RouteObjects(Protocol):
    """Namespaced custom objects of one API version and plural, as plain dicts."""

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create the object (raises Conflict when it already exists)."""

    def patch(self, namespace: str, name: str, patch: Any) -> dict[str, Any]:
        """Apply a JSON patch (raises Conflict when a resourceVersion it sets is stale)."""


ObjectsFactory = Callable[[str, str], RouteObjects]
"""``(api_version, plural) -> RouteObjects``."""

MANAGED_BY = {"app.kubernetes.io/managed-by": "canary"}
"""The label on routes canary created (and so may add its own rule to)."""
