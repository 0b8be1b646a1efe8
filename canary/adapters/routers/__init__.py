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

from canary.core.plan import Plan
from canary.errors import InvalidSpec, Problem


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


class RouteClients:
    """One ``RouteObjects`` per API version of a kind of route, made on first use; refuses an
    API version that does not serve the kind."""

    def __init__(
        self, factory: ObjectsFactory, kind: str, versions: tuple[str, ...], plural: str
    ) -> None:
        self._factory, self._kind, self._versions, self._plural = factory, kind, versions, plural
        self._clients: dict[str, RouteObjects] = {}

    def of(self, plan: Plan) -> RouteObjects:
        """The client for ``plan.api_version``."""
        if plan.api_version not in self._versions:
            raise InvalidSpec(
                [
                    Problem(
                        "spec.traffic.apiVersion",
                        f"{plan.api_version} does not serve {self._kind}",
                        f"use one of {', '.join(self._versions)}",
                    )
                ]
            )
        if plan.api_version not in self._clients:
            self._clients[plan.api_version] = self._factory(plan.api_version, self._plural)
        return self._clients[plan.api_version]


Json = dict[str, Any]


def write_weights(
    objects: RouteObjects,
    namespace: str,
    plan: Plan,
    canary: int,
    *,
    new: Callable[[str, Plan, int], Json],
    weight_patch: Callable[[Json, str, Plan, int], list[Json]],
) -> None:
    """Create the route object with ``new``, or apply ``weight_patch``'s JSON patch guarded by
    the resourceVersion it was computed from (Conflict when it changed meanwhile); nothing is
    written when the weights are already right, so an accepted generation stays accepted."""
    current = objects.get(namespace, plan.route_name)
    if current is None:
        objects.create(namespace, new(namespace, plan, canary))
        return
    ops = weight_patch(current, namespace, plan, canary)
    if not ops:
        return
    version = (current.get("metadata") or {}).get("resourceVersion", "")
    guard = {"op": "replace", "path": "/metadata/resourceVersion", "value": version}
    objects.patch(namespace, plan.route_name, [guard, *ops])
