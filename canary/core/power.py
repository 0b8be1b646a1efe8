"""How many canary requests a step needs before it may pass, and when it will have them.

Called by ``canary.core.machine`` on every judged tick of a weight step, which hands the
result to ``judge.evaluate`` as the step's minimum and writes it, with its ETA, to the step's
status. Two sources of a minimum:

- ``minRequestsPerStep``. Unset, a step needs 200 canary requests, or, once it has run four
  minutes (``LOW_TRAFFIC_AFTER``), its weight's share of them (10 at 5%): at 100 req/s nothing
  changes, and a release at 1 req/s is not held for an hour at its first step.
- ``analysis.detect: {errorRatio, power}``. At the last step that still shares traffic with the
  stable, enough canary requests that the error comparison would catch a canary failing
  ``errorRatio`` times as often as the stable with probability ``power``. The count is computed
  with the judge's own e-value: the fewest failed requests (both arms together) whose
  ``1 − power`` quantile of canary failures, under that regression, reaches the error check's
  limit, converted to canary requests at the stable's error rate seen so far.

Pure: no clock (elapsed time is a parameter), no I/O, no logging.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from statistics import NormalDist
from typing import Literal

from canary.core import judge, sequential
from canary.core.steps import weight_at
from canary.model.policy import Step

MAX_NEED = 1_000_000_000
"""The largest minimum reported (the status field's bound)."""


@dataclass(frozen=True)
class Need:
    """What a step needs before it may pass: canary requests, and why."""

    requests: int
    reason: Literal["minRequestsPerStep", "detect"]
    note: str = ""
    """For people: what the detect requirement stands for (empty for the plain minimum)."""
    holds: bool = True
    """Whether the step may still hold on weak evidence (``compareWithStable.holdAbove``); not
    at low traffic, see :func:`need`."""


def last_shared(steps: Sequence[Step]) -> int | None:
    """The index of the last weight step that still sends the stable some traffic (0 < weight
    < 100): where ``analysis.detect`` applies. None when there is none."""
    found = None
    for index, step in enumerate(steps):
        if step.set_weight is not None and 0 < step.set_weight < 100:
            found = index
    return found


LOW_TRAFFIC_AFTER = timedelta(minutes=4)
"""With the default ``minRequestsPerStep``, a step that has run this long needs only its
weight's share of it (see :func:`step_minimum`)."""


def step_minimum(thresholds: judge.Thresholds, weight: int, elapsed: timedelta) -> int:
    """``minRequestsPerStep`` for a step at ``weight`` percent that has run for ``elapsed``: as
    set; or, when it is the default (200), 200 — and, once the step has run for
    ``LOW_TRAFFIC_AFTER``, only the weight's share of it (10 at 5%, at least 1), so at low
    traffic a step lasts about four minutes instead of hours while at 100 req/s nothing
    changes."""
    if not thresholds.min_requests_scaled or elapsed < LOW_TRAFFIC_AFTER:
        return thresholds.min_requests
    return _share_of_minimum(thresholds, weight)


def _share_of_minimum(thresholds: judge.Thresholds, weight: int) -> int:
    return max(1, math.ceil(thresholds.min_requests * weight / 100))


def detect_requests(
    thresholds: judge.Thresholds, weight: int, stable: judge.Arm
) -> tuple[int, str] | None:
    """Canary requests a step at ``weight`` needs for ``analysis.detect``, with a note for
    people; None when detect is not asked for or this is not a shared weight.

    For each alternative ``κ`` of the error comparison's mixture (prior weight ``w_κ``), the
    log-likelihood ratio ``L_κ`` of the step's failures — ``log κ + d`` per canary failure and
    ``d`` per failure of either arm, ``d = log(1 + s(ρ0 − 1)) − log(1 + s(κρ0 − 1))`` — is a
    sum over requests whose mean ``n·μ`` and variance ``n·v`` follow from the canary failing
    ``errorRatio`` times the stable's rate ``p``. The mixture e-value is at least
    ``w_κ·exp(L_κ)``, so the step catches the regression with probability ``power`` once
    ``n·μ − z·√(n·v) ≥ log(limit) − log w_κ − log ½`` for some ``κ`` (normal approximation,
    ``z`` the ``power`` quantile; ½ is the whole rollout's weight among the change points, and
    only this step's failures are counted). ``p`` is the stable's rate seen so far,
    ``(failures + ½) / (requests + 1)``: it starts high and settles as the stable serves."""
    ratio = thresholds.detect_error_ratio
    if ratio is None or not thresholds.compare_with_stable or not 0 < weight < 100:
        return None
    share = weight / 100.0
    rho0 = 1.0 + thresholds.error_rate_tolerance
    failures = min(max(stable.failures, 0), max(stable.requests, 0))
    rate = (failures + 0.5) / (max(stable.requests, 0) + 1.0)
    canary_rate = min(rate * ratio, 1.0)
    others = (1.0 - share) / share  # stable requests per canary request
    z = NormalDist().inv_cdf(thresholds.detect_power)
    target = math.log(judge.errors_limit(thresholds)) - math.log(sequential.CHANGE_FROM_START)
    best = math.inf
    for kappa, prior in sequential.ERROR_MIXTURE:
        d = math.log1p(share * (rho0 - 1.0)) - math.log1p(share * (kappa * rho0 - 1.0))
        on_canary = math.log(kappa) + d
        mean = canary_rate * on_canary + others * rate * d
        if mean <= 0.0:
            continue
        spread = canary_rate * (1.0 - canary_rate) * on_canary**2
        spread += others * rate * (1.0 - rate) * d**2
        needed = target - math.log(prior)
        root = (z * math.sqrt(spread) + math.sqrt(z * z * spread + 4.0 * mean * needed)) / (
            2.0 * mean
        )
        best = min(best, root * root)
    if math.isinf(best):
        return None
    requests = min(MAX_NEED, math.ceil(best))
    note = (
        f"analysis.detect: {requests} canary requests to catch {ratio:g}× the stable's error "
        f"rate ({100 * rate:.2g}% so far) with probability {thresholds.detect_power:g}"
    )
    return requests, note


def need(
    thresholds: judge.Thresholds,
    steps: Sequence[Step],
    index: int,
    stable: judge.Arm,
    elapsed: timedelta,
) -> Need:
    """What step ``index`` needs before it may pass, having run for ``elapsed``; ``stable`` is
    what the stable served over the whole rollout so far."""
    weight = weight_at(steps, index)
    requests = step_minimum(thresholds, weight, elapsed)
    # At low traffic (the default minimum lowered to the weight's share) a step does not hold
    # on weak evidence: one canary failure among a few dozen requests would hold it until the
    # stable fails once too — at 1 req/s and 0.1% errors, about half an hour — for no power
    # at all. FAIL still applies at every tick; analysis.detect is how to ask for power.
    minimum = Need(requests, "minRequestsPerStep", holds=requests == thresholds.min_requests)
    if index != last_shared(steps):
        return minimum
    found = detect_requests(thresholds, weight, stable)
    if found is None or found[0] <= minimum.requests:
        return minimum
    return Need(found[0], "detect", found[1])


def time_left(
    thresholds: judge.Thresholds,
    weight: int,
    needed: Need,
    requests: int,
    elapsed: timedelta,
) -> timedelta | None:
    """How much longer a step that has ``requests`` canary requests after ``elapsed`` needs, at
    the rate seen so far, to have what it needs — counting, for the default minimum, the
    lower share it will need from ``LOW_TRAFFIC_AFTER`` on. None when it has them or no rate
    is known yet."""
    full = time_to_need(requests, needed.requests, elapsed)
    scaled = thresholds.min_requests_scaled and needed.reason == "minRequestsPerStep"
    if full is None or not scaled or elapsed >= LOW_TRAFFIC_AFTER:
        return full
    share = time_to_need(requests, _share_of_minimum(thresholds, weight), elapsed)
    wait = max(LOW_TRAFFIC_AFTER - elapsed, share or timedelta(0))
    return min(full, wait)


SLOW_STEP = timedelta(minutes=10)
"""A step expected to need longer than this to reach its minimum says what would shorten it."""


def time_to_need(requests: int, needed: int, elapsed: timedelta) -> timedelta | None:
    """How much longer a step needs, at the canary request rate it has seen so far, to reach
    ``needed`` canary requests: whole seconds, or None when it has them or no rate is known
    yet (no requests, no time)."""
    if requests <= 0 or requests >= needed or elapsed <= timedelta(0):
        return None
    seconds = (needed - requests) * elapsed.total_seconds() / requests
    return timedelta(seconds=math.ceil(seconds))
