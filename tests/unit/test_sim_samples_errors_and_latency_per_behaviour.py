"""Each pod's behaviour sets its error rate and latency distribution in the Linkerd buckets."""

import math

import pytest

from canary.model.linkerd import LATENCY_BUCKETS_MS
from canary.sim.traffic import Backend, Behaviour, Counters, Histogram, Mesh

Z_99 = 2.3263478740408408


def _serve(behaviour: Behaviour, requests: int, seed: int = 1) -> Counters:
    mesh = Mesh(seed=seed)
    mesh.set_pod("p0", behaviour)
    mesh.advance(1.0, requests, {"svc": Backend(1, ("p0",))})
    return mesh.inbound("p0")


def _histogram_quantile(q: float, histogram: Histogram) -> float:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket holding rank q·n."""
    rank = q * histogram.count
    lower, below = 0.0, 0
    for bound, cumulative in zip(LATENCY_BUCKETS_MS, histogram.buckets, strict=True):
        if cumulative >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / (cumulative - below)
        lower, below = bound, cumulative
    raise AssertionError("unreachable: the +Inf bucket holds every observation")


def _lognormal_cdf(x: float, p50: float, p99: float) -> float:
    sigma = math.log(p99 / p50) / Z_99
    return 0.5 * (1 + math.erf((math.log(x) - math.log(p50)) / (sigma * math.sqrt(2))))


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("error_rate", [0.001, 0.05, 0.5])
def test_failure_share_matches_error_rate(seed: int, error_rate: float) -> None:
    """Over 200k requests the failure share is the error rate within four standard errors."""
    counters = _serve(Behaviour(error_rate=error_rate), 200_000, seed)
    sd = math.sqrt(error_rate * (1 - error_rate) / counters.requests)
    assert counters.failures / counters.requests == pytest.approx(error_rate, abs=4 * sd)
    assert counters.successes + counters.failures == counters.requests


def test_failures_carry_the_error_status_and_successes_200() -> None:
    """Failures answer with the behaviour's 5xx status, successes with 200."""
    counters = _serve(Behaviour(error_rate=0.3, error_status=503), 10_000)
    assert set(counters.responses) == {200, 503}
    assert set(counters.latency) == {200, 503}


@pytest.mark.parametrize(("p50", "p99"), [(20, 80), (5, 400), (150, 900), (2, 3)])
def test_bucket_fractions_follow_the_truncated_lognormal(p50: float, p99: float) -> None:
    """The share under each bound b is P(v < b+1) of the log-normal, within 0.5 points."""
    histogram = _serve(Behaviour(latency_p50_ms=p50, latency_p99_ms=p99), 400_000).latency_total
    for bound, cumulative in zip(LATENCY_BUCKETS_MS[:-1], histogram.buckets, strict=False):
        expected = _lognormal_cdf(bound + 1, p50, p99)
        assert cumulative / histogram.count == pytest.approx(expected, abs=0.005), bound


@pytest.mark.parametrize(("p50", "p99"), [(20, 80), (30, 250), (100, 450), (8, 40)])
def test_p99_query_lands_in_the_bucket_of_the_true_p99(p50: float, p99: float) -> None:
    """histogram_quantile(0.99) over the buckets falls in the bucket that holds the true p99."""
    estimate = _histogram_quantile(0.99, _serve(Behaviour(0, p50, p99), 100_000).latency_total)
    upper = next(b for b in LATENCY_BUCKETS_MS if math.floor(p99) <= b)
    lower = max([0.0, *(b for b in LATENCY_BUCKETS_MS if b < upper)])
    assert lower <= estimate <= upper


def test_median_query_is_near_the_median() -> None:
    """histogram_quantile(0.5) of a 20 ms median lands between the 10 and 30 ms bounds."""
    estimate = _histogram_quantile(0.5, _serve(Behaviour(0, 20, 80), 100_000).latency_total)
    assert 10 < estimate <= 30


@pytest.mark.parametrize(("latency", "bound"), [(10.0, 10), (10.99, 10), (11.0, 20), (0.4, 1)])
def test_constant_latency_is_truncated_to_whole_milliseconds(latency: float, bound: int) -> None:
    """A latency v counts in the first bucket b with floor(v) <= b (10.99 ms is in le=10)."""
    histogram = _serve(Behaviour(0, latency, latency), 1000).latency_total
    index = LATENCY_BUCKETS_MS.index(bound)
    assert histogram.buckets[index] == histogram.count
    assert index == 0 or histogram.buckets[index - 1] == 0
    assert histogram.sum_ms == math.floor(latency) * histogram.count


def test_sum_is_the_mean_truncated_latency_times_the_count() -> None:
    """_sum/_count is the log-normal mean less half a millisecond of truncation, within 1%."""
    p50, p99 = 20.0, 80.0
    sigma = math.log(p99 / p50) / Z_99
    histogram = _serve(Behaviour(0, p50, p99), 200_000).latency_total
    mean = p50 * math.exp(sigma * sigma / 2) - 0.5
    assert histogram.sum_ms / histogram.count == pytest.approx(mean, rel=0.01)


def test_fast_failures_land_in_the_fast_bucket_and_successes_do_not() -> None:
    """With fast_fail_ms=2 every failure is in le=2 while successes keep their distribution."""
    counters = _serve(Behaviour(0.5, 200, 400, fast_fail_ms=2.5), 20_000)
    failed = counters.latency[500]
    assert failed.buckets[LATENCY_BUCKETS_MS.index(2)] == failed.count == counters.failures
    assert failed.buckets[0] == 0
    assert counters.latency[200].buckets[LATENCY_BUCKETS_MS.index(50)] < 0.01 * counters.successes


def test_tail_beyond_the_last_finite_bound_goes_to_inf() -> None:
    """A pod slower than 50 s counts in +Inf only, and its sum stays at least 50 s per request."""
    histogram = _serve(Behaviour(0, 60_000, 60_000), 100).latency_total
    assert histogram.buckets[-2] == 0
    assert histogram.count == 100
    assert histogram.sum_ms == 60_000 * 100
    heavy = _serve(Behaviour(0, 20_000, 90_000), 10_000).latency_total
    assert heavy.count > heavy.buckets[-2] > 0
    assert heavy.sum_ms > 0


def test_empty_counters_have_an_all_zero_histogram() -> None:
    """A pod that served nothing reports zero requests and an all-zero merged histogram."""
    counters = _serve(Behaviour(), 0)
    assert counters.requests == counters.failures == 0
    assert counters.latency_total.buckets == (0,) * 26
    assert counters.latency_total.count == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"error_rate": 1.5}, "error_rate"),
        ({"error_rate": -0.1}, "error_rate"),
        ({"latency_p50_ms": 0}, "latency_p50_ms"),
        ({"latency_p50_ms": float("nan")}, "latency_p50_ms"),
        ({"latency_p50_ms": 100, "latency_p99_ms": 50}, "latency_p99_ms"),
        ({"fast_fail_ms": -1}, "fast_fail_ms"),
        ({"error_status": 404}, "error_status"),
    ],
)
def test_behaviour_refuses_impossible_values(kwargs: dict[str, float], message: str) -> None:
    """Out-of-range behaviours raise ValueError naming the field."""
    with pytest.raises(ValueError, match=message):
        Behaviour(**kwargs)  # type: ignore[arg-type]
