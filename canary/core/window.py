"""How a step is judged when a window of counts arrives: pure, shared by two callers.

The state machine (``canary.core.machine``) judges each window a reconcile brings and records
the verdict on the step. The measuring tick (``canary.core.measuring``) takes the same look at a
window it has just completed, with the steps the Rollout's last reconcile left in its status,
only to tell a window that fails from one that does not: a failing window is a rollback, so it
is handed to a worker before the windows of healthy Rollouts (when the workers fall behind,
those wait). The tick decides nothing: the reconcile judges again, from its own status.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from canary.core import judge, power
from canary.core.plan import Plan
from canary.model.status import ArmStats, StepStatus


@dataclass(frozen=True)
class Counted:
    """What one step has served so far, as the judge counts it: its weight, when it began,
    and its arms' counts (a step record of the status, without what the judge does not
    read)."""

    weight: int | None
    started_at: datetime
    canary: judge.Arm
    stable: judge.Arm


def counted(steps: Sequence[StepStatus]) -> tuple[Counted, ...]:
    """The status's step records, as the judge counts them."""
    return tuple(Counted(s.weight, s.started_at, _arm(s.canary), _arm(s.stable)) for s in steps)


def _arm(stats: ArmStats) -> judge.Arm:
    return judge.Arm(stats.requests, stats.failures, tuple(stats.latency_buckets))


@dataclass(frozen=True)
class Judged:
    """A step judged with one more window: the verdict, the step's counts with the window's,
    what the step needs before it may pass, and how much longer that should take (None: it
    has it, or no rate is known yet)."""

    verdict: judge.Judgement
    canary: judge.Arm
    stable: judge.Arm
    needed: power.Need
    eta: timedelta | None


def judge_step(
    plan: Plan,
    steps: Sequence[Counted],
    index: int,
    now: datetime,
    counts: judge.Evidence,
) -> Judged:
    """Step ``index`` of ``steps`` judged with the window ``counts`` added to what it has
    served so far, the earlier steps weighing in."""
    record = steps[index]
    canary = record.canary + counts.canary
    stable = record.stable + counts.stable
    earlier = tuple(
        judge.Evidence(s.canary, s.stable, canary_weight=s.weight)
        for s in steps[:index]
        if s.weight
    )
    pooled = stable
    for step in earlier:
        pooled = pooled + step.stable
    elapsed = now - record.started_at
    needed = power.need(plan.thresholds, plan.steps, index, pooled, elapsed)
    thresholds = replace(judge.settled(plan.thresholds), min_requests=needed.requests)
    if not needed.holds:
        thresholds = replace(thresholds, hold_above=math.inf)
    verdict = judge.evaluate(
        thresholds,
        judge.Evidence(canary, stable, counts.custom, canary_weight=record.weight, earlier=earlier),
    )
    eta = power.time_left(plan.thresholds, record.weight or 0, needed, canary.requests, elapsed)
    return Judged(verdict, canary, stable, needed, eta)


def fails(
    plan: Plan, steps: Sequence[Counted], index: int, now: datetime, counts: judge.Evidence
) -> bool:
    """Whether step ``index`` fails with the window ``counts`` added (without custom metrics:
    those are read when the window is handed to a worker)."""
    found = judge_step(plan, steps, index, now, counts)
    return found.verdict.verdict is judge.Verdict.FAIL
