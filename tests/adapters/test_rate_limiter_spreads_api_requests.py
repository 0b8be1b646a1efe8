"""The client-side limit toward the API server (--kube-qps/--kube-burst): a burst passes at
once, further requests wait their turn at the average rate, and idle time refills the bucket."""

from __future__ import annotations

import pytest

from canary.adapters.kube.client import RateLimiter


class Time:
    """A clock that only moves when the limiter sleeps (or the test advances it)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_burst_passes_then_requests_are_spaced_at_qps() -> None:
    """With qps 10 and burst 3: three at once, then each one 0.1 s behind the previous."""
    time = Time()
    limiter = RateLimiter(10, 3, clock=lambda: time.now, sleep=time.sleep)
    waits = [limiter.acquire() for _ in range(5)]
    assert waits[:3] == [0, 0, 0]
    assert waits[3] == pytest.approx(0.1)
    assert waits[4] == pytest.approx(0.2)  # queued behind the fourth
    time.now += 10  # idle: the bucket fills up to the burst, not beyond
    assert [limiter.acquire() for _ in range(3)] == [0, 0, 0]
    assert limiter.acquire() == pytest.approx(0.1)


def test_nonsense_limits_are_refused() -> None:
    """A zero rate or an empty burst is a clear error, not a hang."""
    with pytest.raises(ValueError, match="qps must be > 0"):
        RateLimiter(0, 3)
    with pytest.raises(ValueError, match="burst >= 1"):
        RateLimiter(5, 0)
