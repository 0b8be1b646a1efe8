"""The scenarios of BENCHMARK.md §1: how stable and canary behave, and the traffic around them."""

from __future__ import annotations

from dataclasses import dataclass

from bench.floor import failed_requests_floor
from canary.sim.traffic import Behaviour

STABLE_P50_MS = 50.0
STABLE_P99_MS = 250.0


def behaviour(
    error_rate: float, p50: float = STABLE_P50_MS, p99: float = STABLE_P99_MS
) -> Behaviour:
    """A pod with this error rate and a log-normal latency (median, p99)."""
    return Behaviour(error_rate=error_rate, latency_p50_ms=p50, latency_p99_ms=p99)


@dataclass(frozen=True)
class Flap:
    """A dependency both arms share that is broken in random segments of time."""

    segment_s: float = 20.0
    probability: float = 0.15
    error_rate: float = 0.03


@dataclass(frozen=True)
class Scenario:
    """One row group of the table: the versions' behaviours and the traffic."""

    key: str
    title: str
    stable: Behaviour
    canary: Behaviour
    bad: bool
    rps: float = 100.0
    canary_serves: bool = True
    bad_stable_pod: Behaviour | None = None
    flap: Flap | None = None
    swing: float | None = None
    swing_at_s: float = 120.0
    bad_from_weight: float | None = None
    """The canary behaves as the stable until the route gives it this weight (then as
    ``canary``): a regression that begins after the steps below this weight passed."""
    runs: int | None = None
    """Seeds to run (None: 3000 for a healthy scenario, whose target is ≤ 1% false rollbacks,
    1000 for a bad one)."""

    @property
    def seeds(self) -> int:
        """The default number of runs per cell: enough to tell 1% from 2% false rollbacks
        (3000: a 95% interval about ±0.4 points wide) where that is the target."""
        if self.runs is not None:
            return self.runs
        return 1000 if self.bad else 3000

    @property
    def floor(self) -> float | None:
        """``p1·kl(1−β‖α)/KL(p1‖p0)`` failed requests (α = β = 0.05), for error regressions."""
        p0, p1 = self.stable.error_rate, self.canary.error_rate
        if self.bad_from_weight is not None:
            return None
        if not self.bad or not self.canary_serves or p1 <= p0:
            return None
        return failed_requests_floor(p0, p1)


def _errors(key: str, base: float, factor: float) -> Scenario:
    return Scenario(
        key=key,
        title=f"canary errors {factor:g}× stable's {base * 100:g}%",
        stable=behaviour(base),
        canary=behaviour(base * factor),
        bad=True,
    )


HEALTHY = behaviour(0.001)

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("S1", "healthy: canary = stable (0.1% errors)", HEALTHY, HEALTHY, bad=False),
    Scenario("S2-errors", "canary 100% errors", HEALTHY, behaviour(1.0), bad=True, runs=3000),
    Scenario("S2-errors-10%", "canary 10% errors", HEALTHY, behaviour(0.1), bad=True),
    Scenario(
        "S2-crash",
        "canary crash-looping: serves nothing, its requests fail before reaching it",
        HEALTHY,
        HEALTHY,
        bad=True,
        canary_serves=False,
    ),
    *(
        _errors(f"S3-{factor:g}x-{base * 100:g}%", base, factor)
        for base in (0.001, 0.005)
        for factor in (1.5, 2.0, 5.0, 20.0)
    ),
    Scenario(
        "S3-healthy-0.5%",
        "healthy on S3's 0.5% service: canary = stable (0.5% errors); what the 0.5% "
        "regressions are weighed against",
        behaviour(0.005),
        behaviour(0.005),
        bad=False,
    ),
    Scenario("S4-p50+20%", "canary median +20%", HEALTHY, behaviour(0.001, 60, 300), bad=True),
    Scenario("S4-p50+50%", "canary median +50%", HEALTHY, behaviour(0.001, 75, 375), bad=True),
    Scenario(
        "S4-p99x2", "canary p99 ×2 (same median)", HEALTHY, behaviour(0.001, 50, 500), bad=True
    ),
    Scenario(
        "S4-fastfail",
        "canary fails fast: 2% errors answered in 2 ms",
        HEALTHY,
        Behaviour(error_rate=0.02, latency_p50_ms=50, latency_p99_ms=250, fast_fail_ms=2),
        bad=True,
    ),
    *(
        Scenario(f"S5-healthy-{r:g}rps", f"healthy at R = {r:g} req/s", HEALTHY, HEALTHY, False, r)
        for r in (0.5, 1.0, 5.0)
    ),
    *(
        Scenario(
            f"S5-errors-{r:g}rps",
            f"canary 100% errors at R = {r:g} req/s",
            HEALTHY,
            behaviour(1.0),
            True,
            r,
        )
        for r in (0.5, 1.0, 5.0)
    ),
    Scenario(
        "S6-flapping",
        "healthy; a shared dependency fails 3% of requests in random 20 s spells (15% of time)",
        HEALTHY,
        HEALTHY,
        bad=False,
        flap=Flap(),
    ),
    Scenario(
        "S6-bad-stable-pod",
        "healthy; one of three stable pods fails 3% of requests",
        HEALTHY,
        HEALTHY,
        bad=False,
        bad_stable_pod=behaviour(0.03),
    ),
    *(
        Scenario(
            f"S8-20x-after{k}",
            f"canary turns 20× worse than stable's 0.1% after {k} passed step(s)",
            HEALTHY,
            behaviour(0.02),
            bad=True,
            bad_from_weight=w,
        )
        for k, w in ((1, 10.0), (2, 20.0), (3, 50.0))
    ),
    *(
        Scenario(
            f"S9-{base * 100:g}%-{'healthy' if f == 1 else f'{f:g}x'}",
            f"noisy service: stable {base * 100:g}% errors, canary "
            + ("the same" if f == 1 else f"{f:g}× worse"),
            behaviour(base),
            behaviour(base * f),
            bad=f != 1,
        )
        for base in (0.01, 0.03)
        for f in (1.0, 2.0, 3.0)
    ),
    Scenario(
        "S9-92%-healthy",
        "a service ~92% successful (emojivoto's web), canary the same",
        behaviour(0.08),
        behaviour(0.08),
        bad=False,
    ),
    Scenario(
        "S9-92%-2x",
        "a service ~92% successful (emojivoto's web), canary 2× the failures",
        behaviour(0.08),
        behaviour(0.16),
        bad=True,
    ),
    Scenario("S7-double", "healthy; R doubles at 2 min", HEALTHY, HEALTHY, bad=False, swing=2.0),
    Scenario("S7-halve", "healthy; R halves at 2 min", HEALTHY, HEALTHY, bad=False, swing=0.5),
)
"""Every scenario; ``seeds`` is the default number of runs (3000 where a target is ≤ 1%: every
healthy scenario's false rollbacks)."""

BY_KEY = {s.key: s for s in SCENARIOS}
