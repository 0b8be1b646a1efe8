"""In-memory implementations of three ports: the Rollout store, a traffic router and the clock.

For drivers that run the real controller without a cluster: the benchmark's digital twin
(``bench.twin``) and the tests (which check them against the same contracts as the real
adapters). Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from canary.core import weights
from canary.core.history import TARGET_LABEL
from canary.core.plan import Plan
from canary.core.vocabulary import RouteState
from canary.errors import Conflict
from canary.model.rollout import Rollout, RolloutPolicy, decided_alike
from canary.model.status import RolloutStatus
from canary.ports import Ref


class MemoryRolloutStore:
    """Rollouts in a dict; resourceVersion bumps on every write, like the API server."""

    def __init__(self, *rollouts: Rollout) -> None:
        self.rollouts = {Ref(r.metadata.namespace, r.metadata.name): r for r in rollouts}
        self.policies: dict[Ref, RolloutPolicy] = {}
        self.conflicts = 0
        """How many of the next status writes lose a race (raise Conflict)."""

    def add(self, rollout: Rollout) -> Ref:
        """Create a Rollout as the API server would (resourceVersion 1, generation 1)."""
        meta = rollout.metadata.model_copy(
            update={"resource_version": "1", "generation": rollout.metadata.generation or 1}
        )
        ref = Ref(meta.namespace, meta.name)
        self.rollouts[ref] = rollout.model_copy(update={"metadata": meta})
        return ref

    def get(self, ref: Ref) -> Rollout | None:
        """The Rollout, or None."""
        return self.rollouts.get(ref)

    def list(self, namespace: str | None = None, target: str | None = None) -> list[Rollout]:
        """Every Rollout, sorted, optionally of one namespace and of one target."""
        return [
            r
            for ref, r in sorted(self.rollouts.items())
            if namespace in (None, ref.namespace) and target in (None, r.spec.target_ref.name)
        ]

    def policy(self, ref: Ref) -> RolloutPolicy | None:
        """The RolloutPolicy, or None."""
        return self.policies.get(ref)

    def _bump(self, ref: Ref, **changes: Any) -> None:
        old = self.rollouts[ref]
        version = str(int(old.metadata.resource_version or "0") + 1)
        meta = old.metadata.model_copy(update={"resource_version": version, **changes})
        self.rollouts[ref] = old.model_copy(update={"metadata": meta})

    def write_status(self, rollout: Rollout, status: RolloutStatus) -> None:
        """Replace the status if the resourceVersion matches, or if only what the status is
        not decided from changed since (``decided_alike``, as the Kube store); else Conflict.
        Sets the ``canary.dev/target`` label first when it is missing or wrong, as the Kube store
        does."""
        ref = Ref(rollout.metadata.namespace, rollout.metadata.name)
        stored = self.rollouts[ref]
        if stored.metadata.resource_version != rollout.metadata.resource_version and not (
            decided_alike(rollout, stored)
        ):
            raise Conflict(f"{ref}: the object has been modified")
        if self.conflicts:
            self.conflicts -= 1
            raise Conflict(f"{ref}: the object has been modified")
        labels, target = stored.metadata.labels, stored.spec.target_ref.name
        if labels.get(TARGET_LABEL) != target:
            self._bump(ref, labels={**labels, TARGET_LABEL: target})
        self.rollouts[ref] = self.rollouts[ref].model_copy(update={"status": status})
        self._bump(ref)

    def annotate(self, ref: Ref, key: str, value: str) -> None:
        """Set one annotation."""
        annotations = {**self.rollouts[ref].metadata.annotations, key: value}
        self._bump(ref, annotations=annotations)

    def label(self, ref: Ref, key: str, value: str) -> None:
        """Set one label."""
        self._bump(ref, labels={**self.rollouts[ref].metadata.labels, key: value})

    def delete(self, rollout: Rollout) -> None:
        """Delete the Rollout if its resourceVersion still matches; else Conflict."""
        ref = Ref(rollout.metadata.namespace, rollout.metadata.name)
        current = self.rollouts.get(ref)
        if current is None:
            return
        if current.metadata.resource_version != rollout.metadata.resource_version:
            raise Conflict(f"{ref}: the object has been modified")
        del self.rollouts[ref]


@dataclass
class _Route:
    canary_weight: int
    accepted: bool


class MemoryRouter:
    """A ``TrafficRouter`` whose routes live in memory.

    With ``auto_accept`` the pretend mesh accepts a new route at once (a TrafficSplit, or a
    cluster whose mesh is quick); without it a new route is unaccepted until ``accept``. A
    weight change never withdraws acceptance (Linkerd does not rewrite status for weights)."""

    def __init__(self, *, auto_accept: bool = True) -> None:
        self.auto_accept = auto_accept
        self.routes: dict[tuple[str, str], _Route] = {}

    def observe(self, namespace: str, plan: Plan) -> RouteState | None:
        """The live weight, or None when no route exists."""
        route = self.routes.get((namespace, plan.route_name))
        if route is None:
            return None
        return RouteState(canary_weight=route.canary_weight, accepted=route.accepted)

    def set_weights(self, namespace: str, plan: Plan, canary: int) -> None:
        """Create the route or change its weight."""
        weights.split(canary)  # the same ValueError as the real routers for a bad percent
        key = (namespace, plan.route_name)
        route = self.routes.get(key)
        if route is None:
            self.routes[key] = _Route(canary, self.auto_accept)
        else:
            route.canary_weight = canary

    def accept(self, namespace: str, plan: Plan) -> None:
        """What the mesh does: accept the route."""
        self.routes[(namespace, plan.route_name)].accepted = True


class VirtualClock:
    """A clock its driver moves (a test, the digital twin's virtual time)."""

    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        """The time the driver set."""
        return self.current

    def advance(self, delta: timedelta) -> None:
        """Move time on."""
        self.current += delta
