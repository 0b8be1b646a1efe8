"""Turns two Linkerd latency histograms into counts of "slow" requests the comparison can test.

Called by ``canary.core.judge`` for each step of a rollout. Pure; no I/O.

"The canary is at most ``1 + tolerance`` times slower than stable" is tested on one pair of
bucket bounds ``(b_s, b_c)``: a stable request is slow above ``b_s``, a canary request above
``b_c``, where ``b_c + 1 ≥ (1 + tolerance)(b_s + 1)`` (the proxy truncates latencies to whole
milliseconds, so "above b" means at least ``b + 1`` ms). If the canary's latencies are at most
``1 + tolerance`` times the stable's in distribution, a canary request is then slow no more often
than a stable one, which is exactly the null of the comparison test with ``ρ0 = 1``.

The pair is chosen from the **stable** histogram alone, so the choice does not peek at the
canary: among bounds where stable's fraction above lies in a band around the target quantile,
take the pair whose ratio ``b_c / b_s`` is smallest (the bucket grid is coarse: 40→50 costs 25%,
100→200 costs 100%), then the fraction closest to the target. When more than half of stable's
requests are slow, the test counts the *fast* ones instead (at most ``b_s`` ms for stable, ``b_c``
for the canary), and a canary with too few of them is the regression: the rarer class carries the
contrast with less noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from canary.model.linkerd import LATENCY_BUCKETS_MS

_FINITE = len(LATENCY_BUCKETS_MS) - 1


@dataclass(frozen=True)
class Band:
    """Which part of the distribution a latency comparison looks at."""

    name: str
    target: float
    low: float
    high: float


MEDIAN = Band("latency-median", target=0.5, low=0.15, high=0.85)
TAIL = Band("latency-tail", target=0.02, low=0.003, high=0.1)


@dataclass(frozen=True)
class SlowCounts:
    """Requests slower than each arm's bound (or, when ``fast``, at most as slow), out of each
    arm's histogram total."""

    canary_events: int
    canary_total: int
    stable_events: int
    stable_total: int
    canary_bound_ms: float
    stable_bound_ms: float
    fast: bool = False

    @property
    def share(self) -> float:
        """The canary's share of the requests in both histograms."""
        return self.canary_total / (self.canary_total + self.stable_total)


@lru_cache(maxsize=1024)
def partner(index: int, tolerance: float) -> int | None:
    """Index of the smallest finite bound ``b_c`` with ``b_c + 1 ≥ (1 + tolerance)(b_s + 1)``."""
    need = (1.0 + tolerance) * (LATENCY_BUCKETS_MS[index] + 1.0) - 1.0
    for j in range(index, _FINITE):
        if LATENCY_BUCKETS_MS[j] >= need - 1e-9:
            return j
    return None


def slow_counts(
    canary: Sequence[int], stable: Sequence[int], band: Band, tolerance: float
) -> SlowCounts | None:
    """The slow-request counts for one step, or None when either histogram is empty or no pair
    of bounds fits the band."""
    return _slow_counts(tuple(canary), tuple(stable), band, tolerance)


@lru_cache(maxsize=1024)
def _slow_counts(
    canary: tuple[int, ...], stable: tuple[int, ...], band: Band, tolerance: float
) -> SlowCounts | None:
    """``slow_counts``, remembered: the judge asks again about every earlier step of a release
    for each step it could have turned bad at (the change-point detector)."""
    if len(canary) != len(LATENCY_BUCKETS_MS) or len(stable) != len(LATENCY_BUCKETS_MS):
        return None
    canary_total, stable_total = sum(canary), sum(stable)
    if canary_total <= 0 or stable_total <= 0:
        return None
    best: tuple[tuple[float, float], int, int] | None = None
    above = stable_total
    for i in range(_FINITE):
        above -= stable[i]
        fraction = above / stable_total
        j = partner(i, tolerance)
        if j is None or not band.low <= fraction <= band.high:
            continue
        key = (
            LATENCY_BUCKETS_MS[j] / LATENCY_BUCKETS_MS[i],
            abs(math.log(fraction / band.target)),
        )
        if best is None or key < best[0]:
            best = (key, i, j)
    if best is None:
        return None
    _, i, j = best
    canary_slow, stable_slow = sum(canary[j + 1 :]), sum(stable[i + 1 :])
    fast = 2 * stable_slow > stable_total
    return SlowCounts(
        canary_events=canary_total - canary_slow if fast else canary_slow,
        canary_total=canary_total,
        stable_events=stable_total - stable_slow if fast else stable_slow,
        stable_total=stable_total,
        canary_bound_ms=LATENCY_BUCKETS_MS[j],
        stable_bound_ms=LATENCY_BUCKETS_MS[i],
        fast=fast,
    )


def count_above(buckets: Sequence[int], limit_ms: float) -> int:
    """Requests certainly slower than ``limit_ms``: those in buckets whose lower bound is at least
    ``limit_ms`` (a bucket that straddles the limit is not counted)."""
    lower = 0.0
    total = 0
    for count, upper in zip(buckets, LATENCY_BUCKETS_MS, strict=False):
        if lower >= limit_ms:
            total += count
        lower = upper
    return total
