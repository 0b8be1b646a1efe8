"""A small per-tick rollout simulation for the judge's statistical tests.

Counts are drawn per tick the way the mesh produces them (Poisson arrivals split by weight,
binomial failures, latencies over Linkerd's buckets), and the judge is asked at every tick —
the stress its anytime guarantee must survive. Much lighter than ``bench/``: no scrapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from canary.core import judge
from canary.model.linkerd import LATENCY_BUCKETS_MS

STEPS = (5, 10, 20, 50)


def lognormal_buckets(p50_ms: float, p99_ms: float) -> npt.NDArray[np.float64]:
    """Probabilities of Linkerd's buckets for a log-normal latency (whole milliseconds)."""
    sigma = math.log(p99_ms / p50_ms) / 2.3263478740408408
    cdf = [
        0.5 * (1 + math.erf((math.log(b + 1) - math.log(p50_ms)) / (sigma * math.sqrt(2))))
        for b in LATENCY_BUCKETS_MS[:-1]
    ]
    probs = np.clip(np.diff(np.array([0.0, *cdf, 1.0], dtype=np.float64)), 0.0, None)
    out: npt.NDArray[np.float64] = probs / probs.sum()
    return out


@dataclass(frozen=True)
class Version:
    """How one arm behaves."""

    error_rate: float = 0.001
    p50_ms: float = 50.0
    p99_ms: float = 250.0


def simulate(
    thresholds: judge.Thresholds,
    stable: Version,
    canary: Version,
    seed: int,
    *,
    rps: float = 100.0,
    tick_s: float = 15.0,
    max_ticks: int = 200,
) -> tuple[str, int]:
    """Run one rollout over ``STEPS``; returns ('fail'|'pass'|'open', canary failures served)."""
    rng = np.random.default_rng(seed)
    probs = {v: lognormal_buckets(v.p50_ms, v.p99_ms) for v in (stable, canary)}
    step, served = 0, 0
    earlier: list[judge.Evidence] = []
    arms = [judge.Arm(), judge.Arm()]
    for _ in range(max_ticks):
        weight = STEPS[step]
        n = int(rng.poisson(rps * tick_s))
        n_c = int(rng.binomial(n, weight / 100))
        for i, (version, count) in enumerate(((canary, n_c), (stable, n - n_c))):
            failures = int(rng.binomial(count, version.error_rate))
            buckets = tuple(int(b) for b in rng.multinomial(count, probs[version]))
            arms[i] = arms[i] + judge.Arm(count, failures, buckets)
            served += failures if i == 0 else 0
        evidence = judge.Evidence(arms[0], arms[1], canary_weight=weight, earlier=tuple(earlier))
        verdict = judge.evaluate(thresholds, evidence).verdict
        if verdict == judge.Verdict.FAIL:
            return "fail", served
        if verdict == judge.Verdict.PASS:
            if step == len(STEPS) - 1:
                return "pass", served
            earlier.append(evidence)
            step += 1
            arms = [judge.Arm(), judge.Arm()]
    return "open", served
