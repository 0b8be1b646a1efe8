"""The absolute SLO checks (success-rate floor, latency ceiling) and a dependency that fails for
both arms at once: the stable's evidence over the same recent steps is subtracted, and a
full-weight step after shared ones, with no stable traffic left to compare with, adds nothing
(the benchmark's flapping dependency, S6, rolled healthy releases back from both)."""

from __future__ import annotations

from canary.core import judge

FLOOR = judge.Thresholds(min_requests=10, success_rate_min=99.0, compare_with_stable=False)


def _step(weight: float, canary: tuple[int, int], stable: tuple[int, int]) -> judge.Evidence:
    return judge.Evidence(judge.Arm(*canary), judge.Arm(*stable), canary_weight=weight)


def _floor(verdict: judge.Judgement) -> str:
    return next(c.verdict for c in verdict.checks if c.name == "success-rate")


def test_a_burst_both_arms_share_at_the_latest_step_is_forgiven() -> None:
    """Quiet early steps (most of the stable's requests), then 3% failures on both arms at 50%:
    the canary's whole-rollout breach is matched by the stable's over the latest step."""
    earlier = (_step(5, (200, 0), (3800, 4)), _step(20, (800, 1), (3200, 3)))
    now = judge.Evidence(
        judge.Arm(2000, 60), judge.Arm(2000, 62), canary_weight=50, earlier=earlier
    )
    verdict = judge.evaluate(FLOOR, now)
    assert verdict.verdict is not judge.Verdict.FAIL
    assert _floor(verdict) != "Fail"
    alone = judge.Evidence(
        judge.Arm(2000, 60), judge.Arm(2000, 2), canary_weight=50, earlier=earlier
    )
    assert judge.evaluate(FLOOR, alone).verdict is judge.Verdict.FAIL


def test_a_full_weight_step_after_shared_ones_neither_fails_nor_holds_the_floor() -> None:
    """At 100% after shared steps a burst of failures is no evidence (nothing to tell a shared
    outage from the release's), so the floor neither fails nor holds there."""
    earlier = (_step(10, (1000, 1), (9000, 9)), _step(50, (5000, 5), (5000, 5)))
    burst = judge.Evidence(
        judge.Arm(3000, 150), judge.Arm(3, 0), canary_weight=100, earlier=earlier
    )
    verdict = judge.evaluate(FLOOR, burst)
    assert verdict.verdict is judge.Verdict.PASS
    assert _floor(verdict) == "Pass"


def test_a_rollout_with_only_full_weight_steps_is_still_held_to_its_floor() -> None:
    """Without any shared step the floor judges the full-weight steps themselves."""
    only = judge.Evidence(judge.Arm(3000, 90), judge.Arm(0, 0), canary_weight=100)
    assert judge.evaluate(FLOOR, only).verdict is judge.Verdict.FAIL
