"""The judge's absolute checks: success-rate floor, latency ceiling, custom metrics, evidence."""

from __future__ import annotations

import math

import pytest

from canary.core import judge
from canary.core.judge import Arm, Evidence, Thresholds, Verdict

FAST = (0,) * 6 + (1,) + (0,) * 19  # every request in the 10–20 ms bucket
SLOW = (0,) * 15 + (1,) + (0,) * 10  # every request in the 500–1000 ms bucket


def _arm(requests: int, failures: int = 0, shape: tuple[int, ...] = FAST) -> Arm:
    return Arm(requests, failures, tuple(requests * b for b in shape))


@pytest.mark.parametrize(
    ("thresholds", "evidence", "verdict"),
    [
        (Thresholds(min_requests=10), Evidence(Arm(), _arm(100)), Verdict.NO_DATA),
        (Thresholds(min_requests=10), Evidence(_arm(5), _arm(100)), Verdict.INCONCLUSIVE),
        (Thresholds(min_requests=10), Evidence(_arm(50), _arm(100)), Verdict.PASS),
        (
            Thresholds(min_requests=10, success_rate_min=99),
            Evidence(_arm(100, 5), _arm(100)),
            Verdict.FAIL,
        ),
        (
            Thresholds(min_requests=10, success_rate_min=99),
            Evidence(_arm(1000, 1), _arm(100)),
            Verdict.PASS,
        ),
        (
            Thresholds(min_requests=10, latency_max_ms=500),
            Evidence(_arm(100, 0, SLOW), _arm(100)),
            Verdict.FAIL,
        ),
        (
            Thresholds(min_requests=10, latency_max_ms=500),
            Evidence(_arm(100), _arm(100)),
            Verdict.PASS,
        ),
        (
            Thresholds(min_requests=10, latency_max_ms=500),
            Evidence(Arm(100, 0, ()), _arm(100)),
            Verdict.NO_DATA,
        ),
        (
            Thresholds(min_requests=10, custom={"queue": (1.0, 10.0)}),
            Evidence(_arm(100), _arm(100), {"queue": 0.5}),
            Verdict.FAIL,
        ),
        (
            Thresholds(min_requests=10, custom={"queue": (None, 10.0)}),
            Evidence(_arm(100), _arm(100), {"queue": math.nan}),
            Verdict.NO_DATA,
        ),
        (
            Thresholds(min_requests=10, custom={"queue": (None, 10.0)}),
            Evidence(_arm(100), _arm(100), {"queue": 3.0}),
            Verdict.PASS,
        ),
    ],
)
def test_verdicts(thresholds: Thresholds, evidence: Evidence, verdict: Verdict) -> None:
    """Each combination of evidence and thresholds gets the documented verdict."""
    assert judge.evaluate(thresholds, evidence).verdict is verdict


@pytest.mark.parametrize(
    ("buckets", "percentile", "expected"),
    [
        ((), 99, None),
        ((0,) * 6 + (10,) + (0,) * 19, 50, 15.0),
        ((10,) + (0,) * 25, 100, 1.0),
        ((0,) * 25 + (10,), 99, 50000.0),
        ((0,) * 24 + (5, 5), 99, 50000.0),
    ],
)
def test_percentile_interpolates_within_buckets(
    buckets: tuple[int, ...], percentile: float, expected: float | None
) -> None:
    """Percentiles interpolate in a bucket like histogram_quantile; +Inf gives the last bound."""
    assert judge.percentile_ms(buckets, percentile) == expected


def test_success_rate_and_arm_addition() -> None:
    """Success rate is a percentage of requests; arms add element-wise, padding short histograms."""
    assert judge.success_rate(Arm()) is None
    assert judge.success_rate(Arm(200, 3)) == 98.5
    assert Arm(1, 0, (1,)) + Arm(2, 1, (0, 2)) == Arm(3, 1, (1, 2))


def test_percentile_refuses_a_histogram_of_the_wrong_shape() -> None:
    """A histogram with counts beyond Linkerd's 26 buckets is a programming error, said plainly."""
    with pytest.raises(ValueError, match="27 buckets"):
        judge.percentile_ms((0,) * 26 + (5,), 50)
