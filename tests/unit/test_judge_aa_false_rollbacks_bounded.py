"""A/A rollouts judged at every tick roll back no more often than the configured rate."""

from __future__ import annotations

import pytest

from canary.core import judge
from tests.unit.rollout_sim import Version, simulate

SEEDS = 300


@pytest.mark.parametrize(
    ("alpha", "base", "allowed"),
    [
        (0.2, 0.001, 0.2),
        (0.2, 0.01, 0.2),
        (0.01, 0.001, 0.02),
    ],
)
def test_aa_rollouts_fail_at_most_alpha(alpha: float, base: float, allowed: float) -> None:
    """Identical arms, every tick checked across four steps: FAIL in at most α of the seeds."""
    thresholds = judge.Thresholds(min_requests=200, false_rollback_rate=alpha)
    same = Version(error_rate=base)
    outcomes = [simulate(thresholds, same, same, seed)[0] for seed in range(SEEDS)]
    assert outcomes.count("fail") / SEEDS <= allowed
    assert outcomes.count("open") == 0


def test_aa_with_slos_and_generous_alpha_stays_bounded() -> None:
    """With the absolute SLOs on too, α = 0.2 still bounds the A/A rollback rate."""
    thresholds = judge.Thresholds(
        min_requests=200,
        false_rollback_rate=0.2,
        success_rate_min=99.0,
        latency_max_ms=500,
    )
    same = Version(error_rate=0.005)
    outcomes = [simulate(thresholds, same, same, seed)[0] for seed in range(SEEDS)]
    assert outcomes.count("fail") / SEEDS <= 0.2
