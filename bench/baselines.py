"""The gates canary is compared with, re-implemented from the rules in BENCHMARK.md §1.

Both read what Prometheus scraped, over the last ``interval`` as ``rate(...[1m])`` would (the
ratio of two increases, so ``rate()``'s extrapolation cancels out), and judge the canary's
success rate (≥ 99%) and p99 latency (≤ 500 ms) — the thresholds their users typically set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.world import CANARY_PODS, World
from canary.core.judge import percentile_ms

STEPS = (5, 10, 20, 50, 100)
SUCCESS_RATE_MIN = 99.0
P99_MAX_MS = 500.0


@dataclass(frozen=True)
class Window:
    """The canary's success rate (percent) and p99 (ms) over a window; NaN without requests."""

    success_rate: float
    p99_ms: float


def measure(world: World, seconds: float) -> Window | None:
    """What the two PromQL queries return for the canary over the last ``seconds``; None for an
    empty result (no canary series with two samples in the window)."""
    requests = failures = 0
    buckets = [0] * 26
    found = False
    for pod in CANARY_PODS:
        points = [s[pod] for _, s in world.window(world.now, seconds) if s.get(pod, None)]
        points = [p for p in points if p.requests > 0]
        if len(points) < 2:
            continue
        found = True
        first, last = points[0], points[-1]
        reset = last.requests < first.requests
        requests += last.requests - (0 if reset else first.requests)
        failures += last.failures - (0 if reset else first.failures)
        now_b, then_b = last.latency_total.buckets, first.latency_total.buckets
        cumulative = [a - (0 if reset else b) for a, b in zip(now_b, then_b, strict=True)]
        for i, c in enumerate(cumulative):
            buckets[i] += c - (cumulative[i - 1] if i else 0)
    if not found:
        return None
    if requests <= 0:
        return Window(math.nan, math.nan)
    p99 = percentile_ms(buckets, 99.0)
    return Window(100.0 * (requests - failures) / requests, math.nan if p99 is None else p99)


def healthy(window: Window | None) -> bool:
    """Both thresholds met (NaN compares false, so no data is not healthy)."""
    if window is None:
        return False
    return window.success_rate >= SUCCESS_RATE_MIN and window.p99_ms <= P99_MAX_MS


@dataclass
class FlaggerStyle:
    """Every interval: a failing or empty check adds one to a counter that never resets; roll
    back on the tick after it reaches ``threshold``; advance one step per passing tick; promote
    on the tick after reaching the maximum weight."""

    name: str = "Flagger-style"
    interval_s: float = 60.0
    threshold: int = 5
    step: int = 0
    failed: int = 0

    def start(self, world: World) -> None:
        world.set_weight(STEPS[0])

    def tick(self, world: World) -> str | None:
        if self.failed >= self.threshold:
            return "rollback"
        if self.step == len(STEPS) - 1:
            return "promote"
        if not healthy(measure(world, self.interval_s)):
            self.failed += 1
            return None
        self.step += 1
        world.set_weight(STEPS[self.step])
        return None


@dataclass
class _Metric:
    failed: int = 0
    consecutive_errors: int = 0


@dataclass
class ArgoStyle:
    """Steps ``setWeight`` with a one-minute pause between weights; a background analysis
    measures every interval. A metric fails when its failed measurements exceed
    ``failure_limit``; an empty result is an error and more than 4 consecutive errors abort;
    NaN fails the condition."""

    failure_limit: int = 0
    name: str = "Argo-style"
    interval_s: float = 60.0
    consecutive_error_limit: int = 4
    step: int = 0
    metrics: dict[str, _Metric] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.name = f"Argo-style (failureLimit {self.failure_limit})"
        self.metrics = {"success-rate": _Metric(), "latency": _Metric()}

    def start(self, world: World) -> None:
        world.set_weight(STEPS[0])
        self._measure(world)

    def _measure(self, world: World) -> bool:
        window = measure(world, self.interval_s)
        results = {
            "success-rate": None if window is None else window.success_rate >= SUCCESS_RATE_MIN,
            "latency": None if window is None else window.p99_ms <= P99_MAX_MS,
        }
        abort = False
        for name, ok in results.items():
            metric = self.metrics[name]
            if ok is None:
                metric.consecutive_errors += 1
            else:
                metric.consecutive_errors = 0
                metric.failed += 0 if ok else 1
            abort |= metric.failed > self.failure_limit
            abort |= metric.consecutive_errors > self.consecutive_error_limit
        return abort

    def tick(self, world: World) -> str | None:
        if self._measure(world):
            return "rollback"
        self.step += 1
        world.set_weight(STEPS[self.step])
        if self.step == len(STEPS) - 1:
            return "promote"
        return None
