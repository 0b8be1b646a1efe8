"""The e-detector (``sequential.change_point_log_e``, used by ``judge.evaluate``): its
expectation stays at most 1 under the null, exactly (so Ville's inequality still bounds the
false-rollback rate by α at any tick), and a canary that turns bad after good steps is failed on
the steps since it turned bad, where the whole-rollout e-value would still be paying back."""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from canary.core import judge, sequential
from tests.unit.test_sequential_evalues_have_expectation_at_most_one import binomial_pmf


def test_change_point_weights_sum_to_at_most_one() -> None:
    """The prior over change points: ½ from the start, then ¼, ⅛, … (never above 1 in all)."""
    assert sequential.change_point_weight(0) == 0.5
    assert [sequential.change_point_weight(j) for j in (1, 2, 3)] == [0.25, 0.125, 0.0625]
    assert sum(sequential.change_point_weight(j) for j in range(60)) <= 1.0


@settings(deadline=None, max_examples=40)
@given(
    st.lists(
        st.tuples(st.integers(1, 5), st.sampled_from([0.05, 0.1, 0.2, 0.5])),
        min_size=1,
        max_size=3,
    ),
    st.sampled_from([1.0, 1.5]),
)
def test_e_detector_has_mean_at_most_one_under_the_null(
    steps: list[tuple[int, float]], rho0: float
) -> None:
    """Exact expectation over every outcome of up to three steps, each step's canary events
    Binomial(events, θ0) given the step's events (the comparison test's null): the mean of
    ``Σ_j w_j·E_j`` is at most ``Σ_j w_j ≤ 1``."""
    mean = 0.0
    pmfs = []
    for events, share in steps:
        theta0 = share * rho0 / (share * rho0 + 1 - share)
        pmfs.append(binomial_pmf(events, theta0))
    for outcome in itertools.product(*(range(events + 1) for events, _ in steps)):
        probability = math.prod(p[x] for p, x in zip(pmfs, outcome, strict=True))
        triples = [(x, e - x, s) for x, (e, s) in zip(outcome, steps, strict=True)]
        by_start = [
            sequential.comparison_log_e(triples[j:], rho0, sequential.ERROR_MIXTURE)
            for j in range(len(steps))
        ]
        mean += probability * math.exp(sequential.change_point_log_e(by_start))
    bound = sum(sequential.change_point_weight(j) for j in range(len(steps)))
    assert mean <= bound + 1e-9
    assert math.isclose(mean, bound, rel_tol=1e-9)  # each restarted test is exactly fair


def _arm(requests: int, failures: int) -> judge.Arm:
    buckets = [0] * 26
    buckets[6] = requests
    return judge.Arm(requests, failures, tuple(itertools.accumulate(buckets)))


def test_late_regression_is_failed_on_the_steps_since_it_began() -> None:
    """Three long healthy steps (0.1% errors on both arms), then a 20× canary at 50%: the
    whole-rollout evidence would not fail it yet; the restart at the bad step does."""
    good = [
        judge.Evidence(_arm(c, c // 1000), _arm(s, s // 1000), canary_weight=w)
        for c, s, w in ((3_000, 57_000, 5), (6_000, 54_000, 10), (12_000, 48_000, 20))
    ]
    now = judge.Evidence(_arm(2_000, 40), _arm(2_000, 2), canary_weight=50, earlier=tuple(good))
    thresholds = judge.Thresholds(min_requests=200)
    result = judge.evaluate(thresholds, now)
    assert result.verdict == judge.Verdict.FAIL
    assert "errors-vs-stable" in result.reason
    triples = [
        (
            s.canary.failures,
            s.stable.failures,
            s.canary.requests / (s.canary.requests + s.stable.requests),
        )
        for s in (*good, now)
    ]
    whole = sequential.comparison_log_e(triples, 1.0, sequential.ERROR_MIXTURE)
    assert whole < math.log(1 / thresholds.false_rollback_rate)  # the old test would wait
