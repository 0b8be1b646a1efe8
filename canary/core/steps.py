"""The step plan of a rollout: expanding the ``stepWeight/maxWeight`` shorthand, the weight in
effect at a step, and how many canary replicas a weight needs (with a HorizontalPodAutoscaler
on the target: the bounds of the canary's own autoscaler, docs/operations.md).

Called by ``canary.core.plan`` and ``canary.core.machine``. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from canary.core.vocabulary import Autoscaler, EnsureCanary, TargetState
from canary.model.policy import DEFAULT_STEPS, PolicyFields, Step


def expand(fields: PolicyFields) -> tuple[Step, ...]:
    """The explicit steps of a policy. ``stepWeight: 10, maxWeight: 50`` becomes
    10, 20, 30, 40, 50; no steps at all means the default 5, 10, 20, 50, 100."""
    if fields.steps is not None:
        return tuple(fields.steps)
    if fields.step_weight is None and fields.max_weight is None:
        return tuple(Step(set_weight=w) for w in DEFAULT_STEPS)
    step = fields.step_weight or fields.max_weight or 1
    top = fields.max_weight if fields.max_weight is not None else 100
    weights = list(range(step, top + 1, step))
    if not weights or weights[-1] != top:
        weights.append(top)
    return tuple(Step(set_weight=w) for w in weights)


def weight_at(steps: Sequence[Step], index: int) -> int:
    """The canary weight in effect while step ``index`` runs: the last ``setWeight`` at or
    before it (0 before any)."""
    for step in reversed(steps[: index + 1]):
        if step.set_weight is not None:
            return step.set_weight
    return 0


def canary_replicas(stable_replicas: int, weight: int) -> int:
    """Canary pods needed to carry ``weight`` percent: ceil(stable × weight / 100), at least 1."""
    return max(1, math.ceil(stable_replicas * weight / 100))


def canary_autoscaler(stable: Autoscaler, weight: int) -> Autoscaler:
    """The canary's autoscaler bounds at ``weight`` percent: the stable's minimum and maximum
    scaled by the weight and rounded up, each at least 1 (and the maximum at least the
    minimum)."""
    low = max(1, math.ceil(stable.min_replicas * weight / 100))
    return Autoscaler(low, max(low, math.ceil(stable.max_replicas * weight / 100)))


def canary_size(target: TargetState, weight: int, *, moving: bool) -> EnsureCanary:
    """The canary Deployment for ``weight`` percent. Without an autoscaler on the target:
    ``canary_replicas`` of its ``spec.replicas``. With one, the canary gets its own
    (``canary_autoscaler``), and its replicas are left to it except while the weight is
    ``moving`` (the canary about to take more traffic): then they start from the pods the
    stable runs *now* times the weight, within the canary's bounds; otherwise the floor is
    only the canary autoscaler's minimum, which its controller keeps anyway."""
    if target.autoscaler is None:
        return EnsureCanary(canary_replicas(target.replicas, weight))
    bounds = canary_autoscaler(target.autoscaler, weight)
    if not moving:
        return EnsureCanary(bounds.min_replicas, bounds)
    current = target.replicas if target.current_replicas is None else target.current_replicas
    wanted = canary_replicas(current, weight)
    return EnsureCanary(min(bounds.max_replicas, max(bounds.min_replicas, wanted)), bounds)
