"""TrafficSplit router (SMI, as the linkerd-smi extension reads it): stable/canary weights.

Implements ``ports.TrafficRouter`` for the reconciler. Serves ``split.smi-spec.io/v1alpha2``
(integer weights; canary writes percents) and ``split.smi-spec.io/v1alpha1`` (Kubernetes
quantities; canary writes shares of one such as ``"950m"`` and reads any quantity back).

The split's ``spec.service`` is the apex Service and its backends are ``<apex>-stable`` and
``<apex>-canary``. canary creates the split when it is absent; on one that exists it changes only
the weights of its two backends (adding a missing one), never other backends or ``matches``.
Writes are JSON patches carrying the resourceVersion they were computed from (a concurrent edit
makes them fail with ``Conflict``); a split that already has the weights is not written.
A TrafficSplit has no status, so its weights are always taken to be in effect.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from canary.adapters.routers import (
    ObjectsFactory,
    RouteClients,
    RouteObjects,
    write_weights,
)
from canary.core import weights
from canary.core.plan import Plan
from canary.core.vocabulary import RouteState
from canary.errors import InvalidSpec, Problem
from canary.model.policy import ROUTE_VERSIONS
from canary.model.rollout import MANAGED_BY

VERSIONS = ROUTE_VERSIONS["TrafficSplit"]
PLURAL = "trafficsplits"
QUANTITIES = "split.smi-spec.io/v1alpha1"
"""The version whose weights are quantities rather than integers."""

Json = dict[str, Any]


def _where(namespace: str, plan: Plan) -> str:
    return f"TrafficSplit {namespace}/{plan.route_name}"


def _backends(split: Json) -> list[Json]:
    found = (split.get("spec") or {}).get("backends") or []
    return [b if isinstance(b, dict) else {} for b in found]


def _side(backend: Json, plan: Plan) -> str | None:
    name = backend.get("service")
    if name == plan.stable_service:
        return "stable"
    return "canary" if name == plan.canary_service else None


def _weight(backend: Json, namespace: str, plan: Plan) -> Fraction:
    try:
        return weights.parse_quantity(backend.get("weight", 0))
    except ValueError as error:
        raise InvalidSpec(
            [
                Problem(
                    "spec.traffic",
                    f"{_where(namespace, plan)}: backend {backend.get('service')}: {error}",
                    "weights are integers (v1alpha2) or quantities such as 500m (v1alpha1)",
                )
            ]
        ) from error


def _wire(percent: int, api_version: str) -> int | str:
    return weights.quantity(percent) if api_version == QUANTITIES else percent


def canary_weight(split: Json, namespace: str, plan: Plan) -> int:
    """The canary's percent of what the split sends to canary's two Services."""
    total = {"stable": Fraction(0), "canary": Fraction(0)}
    for backend in _backends(split):
        side = _side(backend, plan)
        if side is not None:
            total[side] += _weight(backend, namespace, plan)
    return weights.percent(total["stable"], total["canary"])


def new_split(namespace: str, plan: Plan, canary: int) -> Json:
    """The split canary creates when there is none."""
    stable, canary = weights.split(canary)
    return {
        "apiVersion": plan.api_version,
        "kind": "TrafficSplit",
        "metadata": {"name": plan.route_name, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "spec": {
            "service": plan.service.name,
            "backends": [
                {"service": plan.stable_service, "weight": _wire(stable, plan.api_version)},
                {"service": plan.canary_service, "weight": _wire(canary, plan.api_version)},
            ],
        },
    }


def weight_patch(split: Json, namespace: str, plan: Plan, canary: int) -> list[Json]:
    """The JSON patch operations that give ``split`` these weights: ``[]`` when it has them.
    Raises InvalidSpec when the split is for another apex Service."""
    stable_percent, canary_percent = weights.split(canary)
    wanted = {"stable": stable_percent, "canary": canary_percent}
    service = (split.get("spec") or {}).get("service")
    if service != plan.service.name:
        raise InvalidSpec(
            [
                Problem(
                    "spec.traffic",
                    f"{_where(namespace, plan)} splits Service {service}, not {plan.service.name}",
                    "point the split's spec.service at the apex Service, or delete it",
                )
            ]
        )
    ops: list[Json] = []
    seen: set[str] = set()
    for j, backend in enumerate(_backends(split)):
        side = _side(backend, plan)
        if side is None:
            continue
        # A second entry for the same Service would add to the first one's share.
        percent = 0 if side in seen else wanted[side]
        seen.add(side)
        value = _wire(percent, plan.api_version)
        if _weight(backend, namespace, plan) != weights.parse_quantity(value):
            ops.append({"op": "add", "path": f"/spec/backends/{j}/weight", "value": value})
    for side, name in (("stable", plan.stable_service), ("canary", plan.canary_service)):
        if side not in seen:
            entry = {"service": name, "weight": _wire(wanted[side], plan.api_version)}
            ops.append({"op": "add", "path": "/spec/backends/-", "value": entry})
    return ops


class TrafficSplitRouter:
    """Steers traffic with an SMI TrafficSplit of the apex Service."""

    def __init__(self, objects: ObjectsFactory) -> None:
        self._clients = RouteClients(objects, "TrafficSplit", VERSIONS, PLURAL)

    def _objects(self, plan: Plan) -> RouteObjects:
        return self._clients.of(plan)

    def observe(self, namespace: str, plan: Plan) -> RouteState | None:
        """The live canary percent (a split has no status: always in effect); None when the
        split does not exist."""
        split = self._objects(plan).get(namespace, plan.route_name)
        if split is None:
            return None
        return RouteState(canary_weight=canary_weight(split, namespace, plan), accepted=True)

    def set_weights(self, namespace: str, plan: Plan, canary: int) -> None:
        """Send ``canary`` percent to the canary Service and the rest to stable: create the
        split, or patch only the weights (raises Conflict when the split changed meanwhile)."""
        write_weights(
            self._objects(plan), namespace, plan, canary, new=new_split, weight_patch=weight_patch
        )
