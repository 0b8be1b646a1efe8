"""Anytime-valid sequential tests on counts: the statistics behind ``canary.core.judge``.

Called only by the judge, once per check per tick, with the counts accumulated in each step of
the rollout so far. Pure arithmetic on integers: no state, no clock, no I/O. Every function
returns the natural logarithm of an *e-value*: a number whose expectation is at most 1 when the
canary is fine, at every tick. The product of likelihood ratios over steps (a test martingale)
averaged over a fixed grid of alternatives is again one, so by Ville's inequality the chance that
it *ever* reaches ``1/α`` — however often it is looked at — is at most ``α``.

Two shapes of test:

- **Comparison** (canary against stable, for failures or for slow requests). Given that an event
  (a failure, a slow response) happened during a step, it came from the canary with probability
  ``θ = sρ / (sρ + 1 − s)``, where ``s`` is the canary's share of the step's requests and ``ρ`` the
  ratio of the canary's event rate to the stable's. Conditioning on the events removes the
  stable's unknown rate — and any swing of it that both arms share — from the problem; small
  counts are handled exactly. The null is ``ρ ≤ ρ0 = 1 + tolerance``; the alternatives are
  ``κ·ρ0`` for ``κ`` in a fixed grid. (For an event the canary should not have *fewer* of — a
  fast response — the null is ``ρ ≥ ρ0`` and the grid lies below 1.) Each step contributes
  ``x_c·log κ + (x_c + x_s)·(log(sρ0 + 1 − s) − log(sκρ0 + 1 − s))``.
- **Rate** (the canary alone against an absolute limit ``p0``: a success-rate floor, a latency
  ceiling). Each request is an event with probability ``p ≤ p0`` under the null; alternatives
  ``κ·p0``.
- **Change points** (:func:`change_point_log_e`): each test is also restarted at every step
  boundary and the restarts mixed with prior weights, so a canary that turns bad after some
  good steps is judged on the steps since, not on the whole rollout.
- **Share** (is the canary receiving the traffic it is routed?). Under working routing each
  request reaches the canary with probability at least ``SHARE_NULL`` of its weight; the
  alternative is that almost nothing reaches it (its pods are not serving, requests fail before
  they arrive and never show up in its counters).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import lru_cache

Mixture = tuple[tuple[float, float], ...]
"""Alternatives ``κ`` (multiples of the null ratio) with their prior weights (summing to 1)."""

ERROR_MIXTURE: Mixture = (
    (1.5, 1 / 11),
    (2.0, 1 / 11),
    (3.0, 1 / 11),
    (5.0, 1 / 11),
    (10.0, 2 / 11),
    (20.0, 2 / 11),
    (50.0, 2 / 11),
    (200.0, 1 / 11),
)
"""For failures: mass on large ratios, so that a broken release is stopped after a handful of
failed requests, yet enough on 1.5–3× for subtle regressions to build up evidence."""
SLOW_MIXTURE: Mixture = tuple((k, 1 / 7) for k in (1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0))
"""For slow responses, which may be common (up to half of the requests): ratios near 1 too."""
FAST_MIXTURE: Mixture = tuple((1.0 / k, 1 / 5) for k in (1.1, 1.25, 1.5, 2.0, 3.0))
"""For fast responses: the canary has *fewer* of them than the null allows."""

CHANGE_FROM_START = 0.5
"""The prior weight of "the canary was bad from the first step" in the change-point mixture;
the rest is spread over later starts, halving with each step (¼ from step 2, ⅛ from step 3…)."""

SHARE_NULL = 0.1
"""Routing counts as working while the canary gets at least this fraction of its weight."""
SHARE_ALTERNATIVE = 0.001
"""The 'canary is unreachable' alternative: this fraction of its weight reaches it."""


def log_mean_exp(values: Sequence[float], weights: Sequence[float] | None = None) -> float:
    """``log(Σ wᵢ·exp(vᵢ))`` (equal weights by default) without overflow (``-inf`` allowed)."""
    top = max(values)
    if math.isinf(top):
        return top
    if weights is None:
        weights = [1.0 / len(values)] * len(values)
    return top + math.log(sum(w * math.exp(v - top) for v, w in zip(values, weights, strict=True)))


def change_point_weight(start: int) -> float:
    """The prior weight of a regression that begins at step ``start`` (0: from the first)."""
    if start <= 0:
        return CHANGE_FROM_START
    return (1.0 - CHANGE_FROM_START) * 0.5**start


def change_point_log_e(by_start: Sequence[float]) -> float:
    """The e-detector: log ``Σ_j w_j·E_j``, where ``by_start[j]`` is the log e-value of the
    same test restarted at step ``j`` (on steps ``j…`` only) and ``w_j`` is
    :func:`change_point_weight`. A test restarted at a step boundary (a stopping time) is an
    e-process that is 1 until then, so the weighted sum over every possible start is again one
    (weights summing to at most 1; starts not reached yet, left out, would only add). Evidence
    gathered while a canary looked good is thus not held against it when it turns bad later:
    the restart at the step where it turned bad pays only ``log(1/w_j)`` instead."""
    weights = [change_point_weight(j) for j in range(len(by_start))]
    return log_mean_exp(list(by_start), weights)


def comparison_llr(x_c: int, x_s: int, share: float, rho0: float, kappa: float) -> float:
    """Log-likelihood ratio of one step's events for alternative ``κ·ρ0`` against ``ρ0``.

    ``x_c``/``x_s``: events on canary/stable; ``share``: the canary's share of the requests. A
    step where one arm had no requests tells nothing about the comparison (0)."""
    if not 0.0 < share < 1.0:
        return 0.0
    null = math.log1p(share * (rho0 - 1.0))
    alternative = math.log1p(share * (kappa * rho0 - 1.0))
    return x_c * math.log(kappa) + (x_c + x_s) * (null - alternative)


def comparison_log_e(
    steps: Iterable[tuple[int, int, float]], rho0: float, mixture: Mixture
) -> float:
    """Log e-value over steps of ``(canary events, stable events, canary share of requests)``
    that the canary's event rate exceeds ``ρ0`` times the stable's (alternatives above 1) — or,
    with alternatives below 1, that it falls short of ``ρ0`` times the stable's."""
    steps = tuple(steps)
    totals = [sum(comparison_llr(c, s, w, rho0, k) for c, s, w in steps) for k, _ in mixture]
    return log_mean_exp(totals, [w for _, w in mixture])


def bernoulli_kl(p: float, q: float) -> float:
    """``KL(Bernoulli(p) ‖ Bernoulli(q))`` in nats, for ``0 < q < 1``."""
    total = 0.0
    if p > 0.0:
        total += p * math.log(p / q)
    if p < 1.0:
        total += (1.0 - p) * math.log((1.0 - p) / (1.0 - q))
    return total


def comparison_information(events: int, share: float, rho0: float, kappa: float) -> float:
    """Expected log-likelihood ratio that ``events`` would carry if the canary were ``κ·ρ0``
    times worse: how well a step's data can tell that alternative from the null."""
    if not 0.0 < share < 1.0:
        return 0.0
    null = share * rho0 / (share * rho0 + 1.0 - share)
    alternative = share * kappa * rho0 / (share * kappa * rho0 + 1.0 - share)
    return events * bernoulli_kl(alternative, null)


def rate_information(requests: int, limit: float, kappa: float) -> float:
    """The same for the rate test: ``requests`` observations of ``κ·limit`` against ``limit``."""
    if not 0.0 < limit < 1.0:
        return 0.0
    return requests * bernoulli_kl(min(kappa * limit, (1.0 + limit) / 2.0), limit)


@lru_cache(maxsize=1024)
def rate_log_e(events: int, requests: int, limit: float) -> float:
    """Log e-value that the canary's event probability exceeds ``limit`` (events of requests).

    With a limit of 0 any event is conclusive; with a limit of 1 nothing can exceed it."""
    if limit >= 1.0 or requests <= 0:
        return 0.0
    if limit <= 0.0:
        return math.inf if events > 0 else 0.0
    totals: list[float] = []
    for kappa, _ in ERROR_MIXTURE:
        p1 = min(kappa * limit, (1.0 + limit) / 2.0)
        totals.append(
            events * math.log(p1 / limit)
            + (requests - events) * (math.log1p(-p1) - math.log1p(-limit))
        )
    return log_mean_exp(totals, [w for _, w in ERROR_MIXTURE])


def share_log_e(steps: Iterable[tuple[int, int, float]]) -> float:
    """Log e-value that the canary receives (almost) none of the traffic routed to it, over steps
    of ``(canary requests, stable requests, canary weight as a fraction)``."""
    total = 0.0
    for canary, stable, weight in steps:
        if not 0.0 < weight <= 1.0:
            continue
        w0, w1 = SHARE_NULL * weight, SHARE_ALTERNATIVE * weight
        total += canary * math.log(w1 / w0) + stable * (math.log1p(-w1) - math.log1p(-w0))
    return total
