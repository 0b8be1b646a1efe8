"""Edge cases of the judge: no traffic, no failures, huge ticks, lone failures, unreachable
canaries, full weight, custom metrics and the hold rule."""

from __future__ import annotations

import math

import pytest

from canary.core import judge
from canary.core.judge import Arm, Evidence, Thresholds, Verdict

N = 26
DEFAULTS = Thresholds(min_requests=200)


def hist(**counts: int) -> tuple[int, ...]:
    """A histogram from ``b<index>=count`` keywords."""
    out = [0] * N
    for key, value in counts.items():
        out[int(key[1:])] = value
    return tuple(out)


def arm(requests: int, failures: int = 0, buckets: tuple[int, ...] = ()) -> Arm:
    """Shorthand for an Arm."""
    return Arm(requests, failures, buckets)


@pytest.mark.parametrize(
    ("evidence", "verdict", "reason"),
    [
        (Evidence(arm(0), arm(0)), Verdict.NO_DATA, "no canary requests"),
        (Evidence(arm(0), arm(0), canary_weight=5), Verdict.NO_DATA, "no canary requests"),
        (Evidence(arm(50), arm(950)), Verdict.INCONCLUSIVE, "50/200"),
        (Evidence(arm(300), arm(5700)), Verdict.PASS, "every check passed"),
        (Evidence(arm(300, 1), arm(12, 0)), Verdict.INCONCLUSIVE, "holding"),
        (Evidence(arm(300, 300), arm(5700, 5)), Verdict.FAIL, "errors-vs-stable"),
        (Evidence(arm(0), arm(5000), canary_weight=5), Verdict.FAIL, "traffic-share"),
        (Evidence(arm(300, 3), arm(300, 3), canary_weight=50), Verdict.PASS, "every check"),
    ],
    ids=[
        "no-traffic",
        "no-traffic-weighted",
        "too-few-requests",
        "no-failures-anywhere",
        "lone-canary-failure-few-stable",
        "canary-all-failing",
        "canary-unreachable",
        "equal-failures",
    ],
)
def test_verdicts(evidence: Evidence, verdict: Verdict, reason: str) -> None:
    """Each situation gets the verdict a person would expect, with a reason saying why."""
    result = judge.evaluate(DEFAULTS, evidence)
    assert result.verdict == verdict
    assert reason in result.reason


def test_one_canary_failure_against_an_empty_stable_is_not_a_rollback() -> None:
    """Zero stable failures over few stable requests do not make one canary failure a FAIL."""
    for stable in (0, 1, 5, 50):
        result = judge.evaluate(DEFAULTS, Evidence(arm(1, 1), arm(stable)))
        assert result.verdict != Verdict.FAIL


def test_single_huge_tick_is_judged_without_overflow() -> None:
    """Billions of requests in one tick: equal rates pass, a doubled rate fails, no overflow."""
    big = 10**9
    same = judge.evaluate(
        DEFAULTS, Evidence(arm(big, big // 1000), arm(19 * big, 19 * big // 1000))
    )
    assert same.verdict == Verdict.PASS
    worse = judge.evaluate(
        DEFAULTS, Evidence(arm(big, big // 500), arm(19 * big, 19 * big // 1000))
    )
    assert worse.verdict == Verdict.FAIL
    assert all(c.value is not None and math.isfinite(c.value) for c in worse.checks)


def test_failures_above_requests_and_negative_counts_are_clamped() -> None:
    """Inconsistent counts (more failures than requests) are read as all-failed, not crash."""
    result = judge.evaluate(DEFAULTS, Evidence(arm(300, 900), arm(5700, -3)))
    assert result.verdict == Verdict.FAIL


def test_evidence_carries_over_from_earlier_steps() -> None:
    """Suspicion from an earlier step counts: the rollout fails on the sum of the evidence."""
    earlier = Evidence(arm(300, 3), arm(5700, 1), canary_weight=5)
    alone = judge.evaluate(DEFAULTS, Evidence(arm(600, 3), arm(5400, 2), canary_weight=10))
    assert alone.verdict != Verdict.FAIL
    together = judge.evaluate(
        DEFAULTS, Evidence(arm(600, 3), arm(5400, 2), canary_weight=10, earlier=(earlier,))
    )
    assert together.verdict == Verdict.FAIL


def test_full_weight_step_does_not_hold_on_frozen_comparisons() -> None:
    """At 100% the comparison cannot move, so an e-value above the hold level does not block."""
    earlier = Evidence(arm(300, 2), arm(5700, 4), canary_weight=5)
    held = judge.evaluate(DEFAULTS, Evidence(arm(300, 2), arm(5700, 4), canary_weight=5))
    assert held.verdict == Verdict.INCONCLUSIVE
    full = judge.evaluate(
        DEFAULTS, Evidence(arm(3000, 3), arm(20, 0), canary_weight=100, earlier=(earlier,))
    )
    assert full.verdict == Verdict.PASS


def test_ample_information_ends_the_hold() -> None:
    """A step that could have seen a doubled error rate stops holding on a small excess."""
    small = judge.evaluate(DEFAULTS, Evidence(arm(1000, 6), arm(4000, 8), canary_weight=20))
    assert small.verdict == Verdict.INCONCLUSIVE
    ample = judge.evaluate(DEFAULTS, Evidence(arm(30_000, 66), arm(120_000, 180), canary_weight=20))
    assert ample.verdict == Verdict.PASS


def test_higher_hold_level_passes_sooner() -> None:
    """``hold_above`` trades speed for sensitivity: a lax level passes mild suspicion."""
    evidence = Evidence(arm(300, 1), arm(12, 0))
    lax = Thresholds(min_requests=200, hold_above=50)
    assert judge.evaluate(lax, evidence).verdict == Verdict.PASS


@pytest.mark.parametrize(
    ("thresholds", "evidence", "verdict", "failing"),
    [
        (
            Thresholds(min_requests=10, success_rate_min=99, compare_with_stable=False),
            Evidence(arm(400, 40), arm(0)),
            Verdict.FAIL,
            "success-rate",
        ),
        (
            Thresholds(min_requests=10, success_rate_min=99, compare_with_stable=False),
            Evidence(arm(4000, 1), arm(0)),
            Verdict.PASS,
            "",
        ),
        (
            Thresholds(min_requests=10, latency_max_ms=500, compare_with_stable=False),
            Evidence(arm(400, 0, hist(b10=300, b16=100)), arm(0)),
            Verdict.FAIL,
            "latency",
        ),
        (
            Thresholds(min_requests=10, latency_max_ms=500, compare_with_stable=False),
            Evidence(arm(400, 0, hist(b10=400)), arm(0)),
            Verdict.PASS,
            "",
        ),
        (
            Thresholds(min_requests=10, success_rate_min=100, compare_with_stable=False),
            Evidence(arm(400, 1), arm(0)),
            Verdict.FAIL,
            "success-rate",
        ),
    ],
    ids=["floor-breached", "floor-met", "ceiling-breached", "ceiling-met", "floor-100"],
)
def test_absolute_slos(
    thresholds: Thresholds, evidence: Evidence, verdict: Verdict, failing: str
) -> None:
    """The success-rate floor and the latency ceiling fail only on clear evidence."""
    result = judge.evaluate(thresholds, evidence)
    assert result.verdict == verdict
    assert failing in result.reason


@pytest.mark.parametrize(
    ("custom", "verdict", "reason"),
    [
        ({"saturation": 0.5}, Verdict.PASS, "every check"),
        ({"saturation": 0.95}, Verdict.FAIL, "saturation"),
        ({"saturation": -1.0}, Verdict.FAIL, "saturation"),
        ({"saturation": None}, Verdict.NO_DATA, "no data"),
        ({"saturation": math.nan}, Verdict.NO_DATA, "no data"),
        ({}, Verdict.NO_DATA, "no data"),
    ],
)
def test_custom_metrics(custom: dict[str, float | None], verdict: Verdict, reason: str) -> None:
    """Custom metrics are plain bounds on one number; an empty or NaN result is no data."""
    thresholds = Thresholds(min_requests=10, custom={"saturation": (0.0, 0.9)})
    result = judge.evaluate(thresholds, Evidence(arm(300), arm(5700), custom=custom))
    assert result.verdict == verdict
    assert reason in result.reason


def test_custom_metric_with_only_a_maximum_reports_it_as_the_limit() -> None:
    """A check with just a maximum shows that maximum next to the value."""
    thresholds = Thresholds(min_requests=10, custom={"queue": (None, 10.0)})
    result = judge.evaluate(thresholds, Evidence(arm(300), arm(5700), custom={"queue": 3.0}))
    assert [c.limit for c in result.checks if c.name == "queue"] == [10.0]


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ((0.0, 10.0), "within 0 to 10"),
        ((1.0, None), "at least 1"),
        ((None, 10.0), "at most 10"),
        ((None, None), "no bound"),
    ],
)
def test_a_passing_custom_metric_says_which_bounds_it_is_within(
    bounds: tuple[float | None, float | None], message: str
) -> None:
    """A passing check's message names its bounds (a failing one says which it broke)."""
    thresholds = Thresholds(min_requests=10, custom={"queue": bounds})
    result = judge.evaluate(thresholds, Evidence(arm(300), arm(5700), custom={"queue": 3.0}))
    assert [(c.verdict, c.message) for c in result.checks if c.name == "queue"] == [
        ("Pass", message)
    ]


def test_checks_show_the_statistic_and_its_threshold() -> None:
    """Each statistical check reports its e-value and the level at which it alone would fail."""
    result = judge.evaluate(DEFAULTS, Evidence(arm(300, 2), arm(5700, 1), canary_weight=5))
    errors = next(c for c in result.checks if c.name == "errors-vs-stable")
    assert errors.value is not None
    assert errors.value > 1
    assert errors.limit is not None
    assert errors.limit > 1 / DEFAULTS.false_rollback_rate
    assert "canary 2/300 failed" in errors.message


def test_latency_regression_is_seen_in_the_histograms() -> None:
    """A canary whose requests moved two buckets up fails the latency comparison."""
    stable = arm(5700, 0, hist(b8=2850, b9=2850))
    canary = arm(300, 0, hist(b10=300))
    result = judge.evaluate(DEFAULTS, Evidence(canary, stable))
    assert result.verdict == Verdict.FAIL
    assert "latency-median" in result.reason


def test_comparisons_can_be_switched_off() -> None:
    """With compareWithStable disabled only the configured SLOs are checked."""
    thresholds = Thresholds(min_requests=10, compare_with_stable=False)
    result = judge.evaluate(thresholds, Evidence(arm(300, 300), arm(5700)))
    assert result.verdict == Verdict.PASS
    assert result.checks == ()


@pytest.mark.parametrize(
    ("buckets", "percentile", "expected"),
    [
        ((), 99, None),
        (hist(b0=10), 50, 0.5),
        (hist(b25=10), 99, 50000.0),
        (hist(b5=5, b6=5), 50, 10.0),
        (hist(b5=5, b25=5), 99, 50000.0),
    ],
)
def test_percentile_interpolates_like_prometheus(
    buckets: tuple[int, ...], percentile: float, expected: float | None
) -> None:
    """Percentiles interpolate inside a bucket; the +Inf bucket reports the last finite bound."""
    assert judge.percentile_ms(buckets, percentile) == expected


def test_percentile_beyond_the_histogram_reports_its_last_bound() -> None:
    """A rank past every observation reports the last bound the histogram covers."""
    assert judge.percentile_ms((0, 0, 3), 100.0) == 3.0
    assert judge.percentile_ms((0, 0, 3), 150.0) == 3.0


def test_arms_add_with_different_histogram_lengths() -> None:
    """Adding an Arm without a histogram keeps the other's histogram."""
    total = Arm(1, 0, (1, 2)) + Arm(2, 1)
    assert total == Arm(3, 1, (1, 2))


def test_success_rate_of_empty_arm_is_none() -> None:
    """No requests means no success rate."""
    assert judge.success_rate(Arm()) is None
    assert judge.success_rate(Arm(4, 1)) == 75.0


def test_slo_breach_shared_with_stable_is_not_the_release() -> None:
    """A success-rate floor both arms break (a failing dependency) does not roll back."""
    thresholds = Thresholds(min_requests=10, success_rate_min=99)
    shared = judge.evaluate(thresholds, Evidence(arm(3000, 90), arm(57000, 1710), canary_weight=5))
    assert shared.verdict != Verdict.FAIL
    assert "stable breaches it too" in shared.checks[3].message
    alone = judge.evaluate(thresholds, Evidence(arm(3000, 90), arm(57000, 57), canary_weight=5))
    assert alone.verdict == Verdict.FAIL
