"""Latency on Linkerd buckets: bound pairs honour the tolerance; the rarer class counts."""

from __future__ import annotations

import pytest

from canary.core import latency
from canary.model.linkerd import LATENCY_BUCKETS_MS

N = len(LATENCY_BUCKETS_MS)


def hist(**counts: int) -> list[int]:
    """A per-bucket histogram from ``b<index>=count`` keywords."""
    out = [0] * N
    for key, value in counts.items():
        out[int(key[1:])] = value
    return out


@pytest.mark.parametrize("tolerance", [0.0, 0.1, 0.2, 0.5, 1.0])
def test_partner_bound_is_at_least_tolerance_slower(tolerance: float) -> None:
    """The canary's bound is the smallest one with ``b_c + 1 ≥ (1 + tol)(b_s + 1)``."""
    for i in range(N - 1):
        j = latency.partner(i, tolerance)
        if j is None:
            continue
        need = (1 + tolerance) * (LATENCY_BUCKETS_MS[i] + 1) - 1
        assert LATENCY_BUCKETS_MS[j] >= need - 1e-9
        assert j == i or LATENCY_BUCKETS_MS[j - 1] < need - 1e-9


def test_no_partner_past_the_last_finite_bound() -> None:
    """Near the top of the grid there may be no bound far enough above."""
    assert latency.partner(N - 2, 0.5) is None


@pytest.mark.parametrize(
    ("canary", "stable"),
    [([], hist(b5=10)), (hist(b5=10), []), (hist(), hist(b5=10)), (hist(b5=10), hist())],
)
def test_empty_or_missing_histograms_give_nothing(canary: list[int], stable: list[int]) -> None:
    """Without two non-empty histograms there is nothing to compare."""
    assert latency.slow_counts(canary, stable, latency.MEDIAN, 0.2) is None


def test_no_bound_in_the_band_gives_nothing() -> None:
    """When every stable request sits in one bucket no bound splits it inside the band."""
    assert latency.slow_counts(hist(b9=10), hist(b9=100), latency.TAIL, 0.2) is None


def test_smallest_slack_pair_is_chosen() -> None:
    """Among bounds in the band, the pair with the smallest ratio wins (40→50 over 50→100)."""
    stable = hist(b7=20, b8=30, b9=30, b10=20)  # 30, 40, 50, 100 ms
    counts = latency.slow_counts(hist(b9=10, b10=10), stable, latency.MEDIAN, 0.2)
    assert counts is not None
    assert (counts.stable_bound_ms, counts.canary_bound_ms) in {(40.0, 50.0), (30.0, 40.0)}


def test_majority_slow_switches_to_counting_fast_responses() -> None:
    """When most stable requests are above the bound, fast responses are the counted class."""
    stable = hist(b8=30, b9=30, b10=40)
    counts = latency.slow_counts(hist(b10=10), stable, latency.MEDIAN, 0.2)
    assert counts is not None
    assert counts.fast
    assert counts.canary_events == 0
    assert counts.share == pytest.approx(10 / 110)


def test_count_above_skips_the_straddling_bucket() -> None:
    """Only buckets wholly above the limit count (450 ms lies inside the 400–500 bucket)."""
    buckets = hist(b13=5, b14=7, b15=11)  # 400, 500, 1000 ms
    assert latency.count_above(buckets, 450) == 11
    assert latency.count_above(buckets, 500) == 11
    assert latency.count_above(buckets, 400) == 18
