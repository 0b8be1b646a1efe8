"""Turns the evidence measured during a step into a verdict: PASS, FAIL, NO_DATA, INCONCLUSIVE.

Called by ``canary.core.machine`` on every evaluation tick with the step's accumulated counts.
Pure: it never queries anything and never raises for an SLO outcome; infrastructure trouble
never reaches it (the machine holds instead of judging when metrics are unavailable).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from canary.model.linkerd import LATENCY_BUCKETS_MS
from canary.model.status import CheckResult


class Verdict(StrEnum):
    """The outcome of judging a step (or one check of it)."""

    PASS = "Pass"
    FAIL = "Fail"
    NO_DATA = "NoData"
    INCONCLUSIVE = "Inconclusive"


@dataclass(frozen=True)
class Arm:
    """Counts measured for one arm over a period: requests, failures, latency histogram
    (requests per Linkerd bucket, not cumulative; empty when unknown)."""

    requests: int = 0
    failures: int = 0
    buckets: tuple[int, ...] = ()

    def __add__(self, other: Arm) -> Arm:
        width = max(len(self.buckets), len(other.buckets))
        mine = self.buckets + (0,) * (width - len(self.buckets))
        theirs = other.buckets + (0,) * (width - len(other.buckets))
        return Arm(
            requests=self.requests + other.requests,
            failures=self.failures + other.failures,
            buckets=tuple(a + b for a, b in zip(mine, theirs, strict=True)),
        )


@dataclass(frozen=True)
class Thresholds:
    """The analysis settings the judge applies (defaults already filled in by the plan)."""

    min_requests: int
    success_rate_min: float | None = None
    latency_percentile: float = 99.0
    latency_max_ms: float | None = None
    custom: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    compare_with_stable: bool = True
    false_rollback_rate: float = 0.01
    error_rate_tolerance: float = 0.5
    latency_tolerance: float = 0.2


@dataclass(frozen=True)
class Evidence:
    """Everything measured in the current step: both arms' accumulated counts and the latest
    value of each custom metric (None when its query returned nothing)."""

    canary: Arm
    stable: Arm
    custom: Mapping[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Judgement:
    """A verdict and the individual checks that produced it."""

    verdict: Verdict
    checks: tuple[CheckResult, ...]
    reason: str


def success_rate(arm: Arm) -> float | None:
    """Percent of requests that succeeded, or None without requests."""
    if arm.requests <= 0:
        return None
    return 100.0 * (arm.requests - min(arm.failures, arm.requests)) / arm.requests


def percentile_ms(buckets: Sequence[int], percentile: float) -> float | None:
    """The percentile of a Linkerd latency histogram, interpolated linearly inside the bucket
    as Prometheus' ``histogram_quantile`` does; None for an empty histogram. A percentile in
    the ``+Inf`` bucket reports the highest finite bound."""
    total = sum(buckets)
    if total <= 0:
        return None
    rank = percentile / 100.0 * total
    seen = 0.0
    lower = 0.0
    for count, upper in zip(buckets, LATENCY_BUCKETS_MS, strict=False):
        if count and seen + count >= rank:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
        lower = upper
    raise ValueError(f"histogram has {len(buckets)} buckets; Linkerd has {len(LATENCY_BUCKETS_MS)}")


def _check(name: str, value: float | None, lo: float | None, hi: float | None) -> CheckResult:
    if value is None or math.isnan(value):
        return CheckResult(name=name, verdict="NoData", message="no data")
    if lo is not None and value < lo:
        return CheckResult(name=name, verdict="Fail", value=value, limit=lo, message="below min")
    if hi is not None and value > hi:
        return CheckResult(name=name, verdict="Fail", value=value, limit=hi, message="above max")
    return CheckResult(name=name, verdict="Pass", value=value, limit=lo if lo is not None else hi)


def evaluate(thresholds: Thresholds, evidence: Evidence) -> Judgement:
    """Judge a step from its accumulated evidence.

    No canary traffic is NO_DATA; fewer than ``min_requests`` canary requests is INCONCLUSIVE;
    otherwise every absolute check must pass."""
    canary = evidence.canary
    if canary.requests <= 0:
        return Judgement(Verdict.NO_DATA, (), "no canary requests yet")
    checks: list[CheckResult] = []
    if thresholds.success_rate_min is not None:
        checks.append(
            _check("success-rate", success_rate(canary), thresholds.success_rate_min, None)
        )
    if thresholds.latency_max_ms is not None:
        p = percentile_ms(canary.buckets, thresholds.latency_percentile)
        checks.append(_check("latency", p, None, thresholds.latency_max_ms))
    for name, (lo, hi) in sorted(thresholds.custom.items()):
        checks.append(_check(name, evidence.custom.get(name), lo, hi))
    if canary.requests < thresholds.min_requests:
        reason = f"{canary.requests}/{thresholds.min_requests} canary requests so far"
        return Judgement(Verdict.INCONCLUSIVE, tuple(checks), reason)
    failed = [c.name for c in checks if c.verdict == "Fail"]
    if failed:
        return Judgement(Verdict.FAIL, tuple(checks), "failed: " + ", ".join(failed))
    if any(c.verdict == "NoData" for c in checks):
        return Judgement(Verdict.NO_DATA, tuple(checks), "a check has no data")
    return Judgement(Verdict.PASS, tuple(checks), "every check passed")
