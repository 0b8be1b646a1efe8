"""The e-values behind the judge: expectation at most 1 under the null, exactly, at any size."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from canary.core import sequential


def binomial_pmf(n: int, p: float) -> list[float]:
    """Exact Binomial(n, p) probabilities."""
    return [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]


def log_binomial_pmf(n: int, p: float) -> list[float]:
    """Binomial(n, p) log-probabilities (0 < p < 1), for sizes where the plain pmf underflows."""
    head = math.lgamma(n + 1)
    return [
        head
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
        for k in range(n + 1)
    ]


@pytest.mark.parametrize("events", [1, 2, 7, 40])
@pytest.mark.parametrize("share", [0.05, 0.2, 0.5, 0.9])
@pytest.mark.parametrize("rho0", [1.0, 1.5])
@pytest.mark.parametrize("truth", [1.0, 0.5])
def test_comparison_e_value_has_mean_at_most_one(
    events: int, share: float, rho0: float, truth: float
) -> None:
    """At or inside the null (canary no worse than ρ0 × stable) the mean e-value is ≤ 1."""
    rho = rho0 * truth
    theta = share * rho / (share * rho + 1 - share)
    for kappas in (sequential.ERROR_MIXTURE, sequential.SLOW_MIXTURE):
        mean = sum(
            p * math.exp(sequential.comparison_log_e([(x, events - x, share)], rho0, kappas))
            for x, p in enumerate(binomial_pmf(events, theta))
        )
        assert mean <= 1.0 + 1e-9
        if truth == 1.0:
            assert mean == pytest.approx(1.0)


@pytest.mark.parametrize("events", [1, 5, 30])
@pytest.mark.parametrize("share", [0.05, 0.5])
def test_fast_event_e_value_has_mean_at_most_one(events: int, share: float) -> None:
    """With alternatives below 1 (fewer fast responses), the null is 'at least as many'."""
    for theta in (share, min(0.99, share * 1.5)):
        mean = sum(
            p
            * math.exp(
                sequential.comparison_log_e([(x, events - x, share)], 1.0, sequential.FAST_MIXTURE)
            )
            for x, p in enumerate(binomial_pmf(events, theta))
        )
        assert mean <= 1.0 + 1e-9


@pytest.mark.parametrize("requests", [1, 10, 200])
@pytest.mark.parametrize("limit", [0.001, 0.01, 0.3])
def test_rate_e_value_has_mean_at_most_one(requests: int, limit: float) -> None:
    """A canary exactly at (or under) its SLO limit has mean e-value at most 1."""
    for p in (limit, limit / 3):
        mean = sum(
            math.exp(q + sequential.rate_log_e(x, requests, limit))
            for x, q in enumerate(log_binomial_pmf(requests, p))
        )
        assert mean <= 1.0 + 1e-9


@pytest.mark.parametrize("weight", [0.05, 0.5, 1.0])
def test_share_e_value_has_mean_at_most_one(weight: float) -> None:
    """A canary that gets its routed share (or more) has mean e-value at most 1."""
    total = 60
    for share in (sequential.SHARE_NULL * weight, weight):
        mean = sum(
            q * math.exp(sequential.share_log_e([(k, total - k, weight)]))
            for k, q in enumerate(binomial_pmf(total, share))
        )
        assert mean <= 1.0 + 1e-9


@given(
    st.integers(0, 50),
    st.integers(0, 50),
    st.floats(0.01, 0.99),
    st.sampled_from([k for k, _ in sequential.ERROR_MIXTURE]),
)
def test_more_canary_events_is_more_evidence(
    x_c: int, x_s: int, share: float, kappa: float
) -> None:
    """Moving one event from stable to canary never lowers the evidence against the canary."""
    assume(x_s > 0)
    before = sequential.comparison_llr(x_c, x_s, share, 1.0, kappa)
    after = sequential.comparison_llr(x_c + 1, x_s - 1, share, 1.0, kappa)
    assert after >= before


@given(st.integers(0, 30), st.integers(0, 30), st.floats(0.01, 0.5))
def test_larger_canary_share_is_less_evidence(x_c: int, x_s: int, share: float) -> None:
    """The same events weigh less against a canary that took more of the traffic."""
    low = sequential.comparison_log_e([(x_c, x_s, share)], 1.0, sequential.ERROR_MIXTURE)
    high = sequential.comparison_log_e([(x_c, x_s, share * 1.5)], 1.0, sequential.ERROR_MIXTURE)
    assert high <= low + 1e-9


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: sequential.comparison_llr(3, 0, 0.0, 1.0, 2.0), 0.0),
        (lambda: sequential.comparison_llr(3, 0, 1.0, 1.0, 2.0), 0.0),
        (lambda: sequential.rate_log_e(3, 10, 1.0), 0.0),
        (lambda: sequential.rate_log_e(0, 0, 0.01), 0.0),
        (lambda: sequential.rate_log_e(1, 10, 0.0), math.inf),
        (lambda: sequential.rate_log_e(0, 10, 0.0), 0.0),
        (lambda: sequential.share_log_e([(0, 100, 0.0)]), 0.0),
        (lambda: sequential.log_mean_exp([-math.inf, -math.inf]), -math.inf),
        (lambda: sequential.log_mean_exp([0.0, 0.0]), 0.0),
        (lambda: sequential.comparison_information(10, 1.0, 1.0, 2.0), 0.0),
        (lambda: sequential.rate_information(10, 0.0, 2.0), 0.0),
        (lambda: sequential.bernoulli_kl(0.0, 0.5), math.log(2.0)),
        (lambda: sequential.bernoulli_kl(1.0, 0.5), math.log(2.0)),
    ],
)
def test_degenerate_inputs_give_neutral_or_conclusive_values(call, expected: float) -> None:  # type: ignore[no-untyped-def]
    """No traffic, a share of 0 or 1, a limit of 0 or 1: the values are the sensible limits."""
    assert call() == pytest.approx(expected)


def test_information_grows_with_events() -> None:
    """More events can tell a design-size regression apart better."""
    few = sequential.comparison_information(5, 0.05, 1.0, 2.0)
    many = sequential.comparison_information(50, 0.05, 1.0, 2.0)
    assert 0 < few < many
    assert sequential.rate_information(1000, 0.01, 2.0) > sequential.rate_information(10, 0.01, 2.0)
