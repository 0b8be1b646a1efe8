"""HTTPRoute router (Gateway API GAMMA, as Linkerd ≥ 2.14 reads it): stable/canary weights.

Implements ``ports.TrafficRouter`` for the reconciler. Serves ``gateway.networking.k8s.io/v1``,
``gateway.networking.k8s.io/v1beta1`` and ``policy.linkerd.io/v1beta3`` (``plan.api_version``).

The route attaches to the apex Service (``parentRefs: [{group: core, kind: Service, name,
port}]``: group and kind must be set, they default to a Gateway) and one rule sends traffic to
``<apex>-stable`` and ``<apex>-canary`` by weight. canary creates that route when it is absent
and labels it as its own. On a route that exists it changes only the ``weight`` of the backendRefs
naming its two Services, in every rule that names either, adding the missing one of the pair to
such a rule; it never removes or rewrites anything else, so the rules a user added (header
matches, other backends, filters) survive every step. Writes are JSON patches that carry the
resourceVersion they were computed from, so a concurrent edit makes them fail with ``Conflict``
instead of being overwritten (Linkerd's own status write counts: the reconciler retries on the
next tick); a route that already has the weights is not written at all.

Weights are trusted once Linkerd's policy controller has accepted the route for the apex Service:
its ``status.parents[]`` entry (``controllerName: linkerd.io/policy-controller``, ``parentRef`` the
apex Service) has ``Accepted=True`` and ``ResolvedRefs=True``. The real controller writes no
``observedGeneration`` and does not rewrite status when only backend weights change, so a
generation is compared only when a condition carries one, and after a weight patch the weights
are in force once the route is accepted (the controller lets them settle before it measures).
``Accepted=False`` (``NoMatchingParent``, ``RouteReasonConflicted``) or ``ResolvedRefs=False``
(``BackendNotFound``, ``InvalidKind``) is reported with Linkerd's reason and a hint.
"""

from __future__ import annotations

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

VERSIONS = ROUTE_VERSIONS["HTTPRoute"]
PLURAL = "httproutes"

Json = dict[str, Any]


def _core(ref: Json) -> bool:
    return ref.get("group", "") in ("", "core") and ref.get("kind", "Service") == "Service"


def _names_apex(ref: Json, namespace: str, plan: Plan) -> bool:
    """Whether a parentRef (or a parent status' parentRef) is the apex Service and port."""
    return _names_service(ref, namespace, plan.service.name, plan.service.port)


def _names_service(ref: Json, namespace: str, service: str, port: int) -> bool:
    return (
        ref.get("kind") == "Service"
        and ref.get("group") in ("", "core")
        and ref.get("name") == service
        and ref.get("namespace", namespace) == namespace
        and ref.get("port", port) == port
    )


def _ours(ref: Json, namespace: str, plan: Plan) -> str | None:
    """``"stable"`` or ``"canary"`` when a backendRef names one of canary's Services."""
    if not _core(ref) or ref.get("namespace", namespace) != namespace:
        return None
    name = ref.get("name")
    if name == plan.stable_service:
        return "stable"
    return "canary" if name == plan.canary_service else None


def _rules(route: Json) -> list[Json]:
    rules = (route.get("spec") or {}).get("rules") or []
    return [rule if isinstance(rule, dict) else {} for rule in rules]


def _refs(rule: Json) -> list[Json]:
    return [ref if isinstance(ref, dict) else {} for ref in rule.get("backendRefs") or []]


def our_rules(route: Json, namespace: str, plan: Plan) -> list[int]:
    """Indices of the rules that send traffic to the stable or the canary Service."""
    return [
        i
        for i, rule in enumerate(_rules(route))
        if any(_ours(ref, namespace, plan) for ref in _refs(rule))
    ]


def canary_weight(route: Json, namespace: str, plan: Plan) -> int:
    """The canary's percent of the route's traffic to canary's Services. When several rules
    split it and disagree (someone edited one), the highest: a rollback waits for all to be 0."""
    shares = []
    for i in our_rules(route, namespace, plan):
        total = {"stable": 0, "canary": 0}
        for ref in _refs(_rules(route)[i]):
            side = _ours(ref, namespace, plan)
            if side is not None:
                # An unset weight is 1 (Gateway API default).
                total[side] += int(ref.get("weight", 1))
        shares.append(weights.percent(total["stable"], total["canary"]))
    return max(shares, default=0)


POLICY_CONTROLLER = "linkerd.io/policy-controller"
"""The ``controllerName`` of Linkerd's policy controller in a route's parent status."""

HINTS = {
    "NoMatchingParent": "the parent Service {apex} must exist in {namespace} with a ClusterIP "
    "(not headless, not ExternalName), and the parentRef must name it with group core",
    "RouteReasonConflicted": "another route already claims Service {apex}: remove or merge it",
    "BackendNotFound": "every backendRef must name an existing Service and port; canary "
    "creates {stable} and {canary}",
    "InvalidKind": "backendRefs must be Services (group core, kind Service)",
}


def _linkerd_conditions(route: Json, namespace: str, plan: Plan) -> list[Json]:
    return _conditions(route, namespace, plan.service.name, plan.service.port)


def _conditions(route: Json, namespace: str, service: str, port: int) -> list[Json]:
    """Accepted/ResolvedRefs conditions Linkerd wrote for the Service's port, at this
    generation when they say which one (the real controller never does)."""
    generation = (route.get("metadata") or {}).get("generation")
    return [
        condition
        for parent in (route.get("status") or {}).get("parents") or []
        if parent.get("controllerName") == POLICY_CONTROLLER
        and _names_service(parent.get("parentRef") or {}, namespace, service, port)
        for condition in parent.get("conditions") or []
        if condition.get("type") in ("Accepted", "ResolvedRefs")
        and condition.get("observedGeneration", generation) == generation
    ]


def accepted(route: Json, namespace: str, plan: Plan) -> bool:
    """Whether Linkerd accepted the route for the apex Service and resolved its backends."""
    return accepted_for(route, namespace, plan.service.name, plan.service.port)


def accepted_for(route: Json, namespace: str, service: str, port: int) -> bool:
    """``accepted`` without a plan: for the parent Service ``service`` and its ``port``."""
    conditions = _conditions(route, namespace, service, port)
    verdicts = {c.get("type"): c.get("status") for c in conditions}
    return verdicts.get("Accepted") == "True" and verdicts.get("ResolvedRefs") == "True"


def rejection(route: Json, namespace: str, plan: Plan) -> tuple[str, str]:
    """``(reason, message with a fix hint)`` when Linkerd refuses the route, else ``("", "")``."""
    for condition in _linkerd_conditions(route, namespace, plan):
        if condition.get("status") != "False":
            continue
        reason = str(condition.get("reason") or condition.get("type"))
        said = str(condition.get("message") or "").strip()
        hint = HINTS.get(reason, "see the route's status.parents").format(
            apex=plan.service.name,
            namespace=namespace,
            stable=plan.stable_service,
            canary=plan.canary_service,
        )
        what = (
            f"Linkerd reports HTTPRoute {namespace}/{plan.route_name} {condition.get('type')}=False"
        )
        return reason, f"{what} ({reason}{': ' + said if said else ''}); {hint}"
    return "", ""


def _backend(name: str, plan: Plan, weight: int) -> Json:
    return {"name": name, "port": plan.service.port, "weight": weight}


def new_route(namespace: str, plan: Plan, canary: int) -> Json:
    """The route canary creates when there is none: apex parent, one weighted rule."""
    stable, canary = weights.split(canary)
    return {
        "apiVersion": plan.api_version,
        "kind": "HTTPRoute",
        "metadata": {"name": plan.route_name, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "spec": {
            "parentRefs": [
                {
                    "group": "core",
                    "kind": "Service",
                    "name": plan.service.name,
                    "port": plan.service.port,
                }
            ],
            "rules": [
                {
                    "backendRefs": [
                        _backend(plan.stable_service, plan, stable),
                        _backend(plan.canary_service, plan, canary),
                    ]
                }
            ],
        },
    }


def weight_patch(route: Json, namespace: str, plan: Plan, canary: int) -> list[Json]:
    """The JSON patch operations that give ``route`` these weights: ``[]`` when it has them.

    Raises InvalidSpec when the route is not one canary may steer: it does not attach to the
    apex Service, or no rule names canary's Services and canary did not create it."""
    stable_weight, canary_weight_ = weights.split(canary)
    wanted = {"stable": stable_weight, "canary": canary_weight_}
    where = f"HTTPRoute {namespace}/{plan.route_name}"
    parents = (route.get("spec") or {}).get("parentRefs") or []
    if not any(_names_apex(ref, namespace, plan) for ref in parents):
        raise InvalidSpec(
            [
                Problem(
                    "spec.traffic",
                    f"{where} does not attach to Service {plan.service.name} "
                    f"port {plan.service.port}",
                    "add parentRefs {group: core, kind: Service, name, port} for the apex "
                    "Service, or let canary create the route",
                )
            ]
        )
    rules = our_rules(route, namespace, plan)
    if not rules:
        labels = (route.get("metadata") or {}).get("labels") or {}
        if not MANAGED_BY.items() <= labels.items():
            raise InvalidSpec(
                [
                    Problem(
                        "spec.traffic",
                        f"{where} has no rule sending traffic to {plan.stable_service} "
                        f"or {plan.canary_service}",
                        f"add backendRefs {plan.stable_service} and {plan.canary_service} to "
                        "the rule canary should steer",
                    )
                ]
            )
        rule = {
            "backendRefs": [
                _backend(plan.stable_service, plan, stable_weight),
                _backend(plan.canary_service, plan, canary_weight_),
            ]
        }
        if "rules" in (route.get("spec") or {}):
            return [{"op": "add", "path": "/spec/rules/-", "value": rule}]
        return [{"op": "add", "path": "/spec/rules", "value": [rule]}]
    ops: list[Json] = []
    for i in rules:
        seen: set[str] = set()
        for j, ref in enumerate(_refs(_rules(route)[i])):
            side = _ours(ref, namespace, plan)
            if side is None:
                continue
            # A second reference to the same Service would add to the first one's share.
            weight = 0 if side in seen else wanted[side]
            seen.add(side)
            if ref.get("weight", 1) != weight:
                path = f"/spec/rules/{i}/backendRefs/{j}/weight"
                ops.append({"op": "add", "path": path, "value": weight})
        for side, name in (("stable", plan.stable_service), ("canary", plan.canary_service)):
            if side not in seen:
                value = _backend(name, plan, wanted[side])
                ops.append({"op": "add", "path": f"/spec/rules/{i}/backendRefs/-", "value": value})
    return ops


class HTTPRouteRouter:
    """Steers traffic with an HTTPRoute whose parent is the apex Service."""

    def __init__(self, objects: ObjectsFactory) -> None:
        self._clients = RouteClients(objects, "HTTPRoute", VERSIONS, PLURAL)

    def _objects(self, plan: Plan) -> RouteObjects:
        return self._clients.of(plan)

    def observe(self, namespace: str, plan: Plan) -> RouteState | None:
        """The live canary percent, whether Linkerd accepted the route, and why it refuses it;
        None when the route does not exist."""
        route = self._objects(plan).get(namespace, plan.route_name)
        if route is None:
            return None
        reason, message = rejection(route, namespace, plan)
        return RouteState(
            canary_weight=canary_weight(route, namespace, plan),
            accepted=accepted(route, namespace, plan),
            rejection_reason=reason,
            rejection_message=message,
        )

    def set_weights(self, namespace: str, plan: Plan, canary: int) -> None:
        """Send ``canary`` percent to the canary Service and the rest to stable: create the
        route, or patch only the weights (raises Conflict when the route changed meanwhile)."""
        write_weights(
            self._objects(plan), namespace, plan, canary, new=new_route, weight_patch=weight_patch
        )
