"""``bench.late_regression_cost``'s arithmetic (the gate notes' "late regressions" bullet) is the
judge's: its bar is where ``judge.evaluate`` fails a step, its information is the sequential
module's, and the 2x target at 50% is out of reach by it (issue 15)."""

from __future__ import annotations

import math

import pytest

from bench import late_regression_cost, report, twin
from bench.scenarios import BY_KEY
from canary.core import judge, plan, sequential
from canary.model.policy import PolicyFields

Arm, Evidence = judge.Arm, judge.Evidence


def _thresholds() -> judge.Thresholds:
    return plan.thresholds(PolicyFields.model_validate({"analysis": twin.ANALYSIS}))


def _restarted_log_e(canary_failures: int, share: float) -> float:
    return sequential.comparison_log_e([(canary_failures, 0, share)], 1.0, sequential.ERROR_MIXTURE)


def test_the_bar_is_where_the_judge_fails_a_regression_starting_at_fifty_percent() -> None:
    """Three clean steps (the stable at 0.1%), then at 50% the canary fails and the stable
    does not: the settled window fails at the first count whose restarted e-value reaches the
    bar, and passes one failure short of it."""
    thresholds = _thresholds()
    limit = late_regression_cost.bar(thresholds, 3)
    first = next(c for c in range(1, 100) if _restarted_log_e(c, 0.5) >= math.log(limit))
    served = 20_000
    earlier = tuple(
        Evidence(
            Arm(served * w // 100, 0),
            Arm(served * (100 - w) // 100, served * (100 - w) // 100_000),
            canary_weight=float(w),
        )
        for w in (5, 10, 20)
    )

    def verdict(failures: int) -> judge.Verdict:
        step = Evidence(
            Arm(100_000, failures), Arm(100_000, 0), canary_weight=50.0, earlier=earlier
        )
        return judge.evaluate(judge.settled(thresholds), step).verdict

    assert verdict(first - 1) is judge.Verdict.PASS
    assert verdict(first) is judge.Verdict.FAIL


@pytest.mark.parametrize("share", [0.05, 0.1, 0.2, 0.5])
def test_information_per_canary_failure_is_the_sequential_modules(share: float) -> None:
    per_failure = late_regression_cost.information(share, late_regression_cost.RATIO)
    chance = late_regression_cost.canary_chance(share, late_regression_cost.RATIO)
    expected = sequential.comparison_information(1, share, 1.0, late_regression_cost.RATIO)
    assert per_failure * chance == pytest.approx(expected)


def test_two_times_the_start_is_out_of_reach_at_fifty_percent_but_not_at_ten() -> None:
    """The note's claim, from the arithmetic: at 50% even the oracle needs more than twice the
    canary failures it needs at 5%; at 10% it does not."""
    start, after1, *_, late = (
        late_regression_cost.cost(case, draws=400) for case in late_regression_cost.CASES
    )
    assert late.oracle > 2 * start.oracle
    assert late.judge > 2 * start.judge
    assert after1.oracle < 2 * start.oracle


def test_the_gate_notes_render_the_computed_figures() -> None:
    note = report.late_regression_note()
    late = late_regression_cost.cost(late_regression_cost.CASES[-1])
    assert f"bar of {late.bar:,.0f}" in note
    assert f"{late.oracle:.1f} canary failures" in note
    first = late_regression_cost.cost(late_regression_cost.CASES[0])
    assert f"needs {first.oracle:.1f} canary failures" in report.twenty_x_note()


def test_twenty_times_from_the_start_needs_more_than_thirty_seconds_on_a_tenth_of_a_percent() -> (
    None
):
    """The 20x note's claim: at 5% of 100 req/s a 20x canary on 0.1% fails 0.1 requests a
    second, and even the oracle needs more canary failures than 30 s of that on average."""
    case = late_regression_cost.CASES[0]
    scenario = BY_KEY["S3-20x-0.1%"]
    per_second = scenario.rps * case.weight / 100.0 * scenario.canary.error_rate
    assert per_second == pytest.approx(0.1)
    assert late_regression_cost.cost(case).oracle / per_second > 30.0
