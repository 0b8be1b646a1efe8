"""The early, fail-only look (``judge.evaluate_early``): a clearly failing canary is failed on
the counts since its weight changed, a healthy one never by it beyond its share of the budget."""

from __future__ import annotations

import numpy as np

from canary.core import judge

SLOS = judge.Thresholds(min_requests=200, success_rate_min=99.0, latency_max_ms=500)


def test_a_canary_failing_everything_fails_after_a_handful_of_requests() -> None:
    """At 5% weight, 100% errors: five failed canary requests next to 95 stable ones are enough;
    one is not."""
    five = judge.Evidence(judge.Arm(5, 5), judge.Arm(95, 0), canary_weight=5)
    found = judge.evaluate_early(SLOS, five, 0)
    assert found is not None
    assert found.verdict is judge.Verdict.FAIL
    assert found.reason.startswith("early look:")
    one = judge.Evidence(judge.Arm(1, 1), judge.Arm(19, 0), canary_weight=5)
    assert judge.evaluate_early(SLOS, one, 0) is None


def test_a_ten_percent_error_canary_fails_early_once_its_failures_stand_out() -> None:
    """10% errors against stable's 0.1% at 10% weight: 300 canary requests settle it."""
    counts = judge.Evidence(judge.Arm(300, 30), judge.Arm(2700, 3), canary_weight=10)
    found = judge.evaluate_early(SLOS, counts, 1)
    assert found is not None
    assert found.verdict is judge.Verdict.FAIL


def test_healthy_counts_no_traffic_and_full_weight_are_never_failed_early() -> None:
    """No verdict but FAIL comes out, and none without canary requests or at 100%."""
    healthy = judge.Evidence(judge.Arm(100, 0), judge.Arm(1900, 2), canary_weight=5)
    assert judge.evaluate_early(SLOS, healthy, 0) is None
    empty = judge.Evidence(judge.Arm(), judge.Arm(1900, 2), canary_weight=5)
    assert judge.evaluate_early(SLOS, empty, 0) is None
    full = judge.Evidence(judge.Arm(2000, 2000), judge.Arm(), canary_weight=100)
    assert judge.evaluate_early(SLOS, full, 4) is None
    unknown = judge.Evidence(judge.Arm(100, 100), judge.Arm(1900, 2))
    assert judge.evaluate_early(SLOS, unknown, 0) is None


def test_custom_metrics_and_the_minimum_play_no_part_early() -> None:
    """A custom metric out of bounds is no early FAIL (it is judged on settled windows)."""
    t = judge.Thresholds(min_requests=10, custom={"saturation": (None, 0.5)})
    counts = judge.Evidence(
        judge.Arm(100, 0), judge.Arm(1900, 2), {"saturation": 0.9}, canary_weight=5
    )
    assert judge.evaluate_early(t, counts, 0) is None


def test_traffic_split_the_old_way_is_no_early_fail() -> None:
    """Right after a weight change the counts hold traffic routed by the old weights: a healthy
    canary that received 10 of 1,244 requests at weight 50% is not failed early (a settled
    window, taken after the settle time, is where the traffic share is judged)."""
    lagging = judge.Evidence(judge.Arm(10, 0), judge.Arm(1234, 1), canary_weight=50)
    assert judge.evaluate_early(SLOS, lagging, 0) is None
    settled = judge.evaluate(SLOS, lagging)
    assert settled.verdict is judge.Verdict.FAIL
    assert any(c.name == "traffic-share" and c.verdict == "Fail" for c in settled.checks)


def test_the_budgets_of_early_looks_and_settled_windows_add_up_to_the_rate() -> None:
    """Step k spends EARLY_SHARE·w_k·α (w = ½, ¼, …); with the settled windows' (1 − EARLY_SHARE)·α
    a rollout of any number of steps stays within α — and early looks alone within 0.1% at the
    default α = 1%."""
    t = judge.Thresholds(min_requests=200)
    assert t.false_rollback_rate == 0.01
    early = sum(judge.early_rate(t, k) for k in range(50))
    assert early < judge.EARLY_SHARE * t.false_rollback_rate <= 0.001
    assert early + judge.settled(t).false_rollback_rate <= t.false_rollback_rate
    assert judge.early_rate(t, 0) == t.false_rollback_rate * judge.EARLY_SHARE / 2


def test_aa_early_looks_at_every_tick_fail_within_their_budget() -> None:
    """Identical arms at 0.5% errors (half the 1% SLO), the early look taken after every tick of
    four steps, with a generous α = 0.5 so that the budget (≤ 5%) is measurable: at most 5% of
    150 seeded rollouts are failed early."""
    t = judge.Thresholds(min_requests=200, false_rollback_rate=0.5, success_rate_min=99.0)
    rng = np.random.default_rng(7)
    seeds, failed = 150, 0
    for _ in range(seeds):
        for step, weight in enumerate((5, 10, 20, 50)):
            canary, stable = judge.Arm(), judge.Arm()
            hit = False
            for _tick in range(4):
                total = int(rng.poisson(200))
                n_c = int(rng.binomial(total, weight / 100))
                n_s = total - n_c
                canary += judge.Arm(n_c, int(rng.binomial(n_c, 0.005)))
                stable += judge.Arm(n_s, int(rng.binomial(n_s, 0.005)))
                counts = judge.Evidence(canary, stable, canary_weight=weight)
                if judge.evaluate_early(t, counts, step) is not None:
                    hit = True
                    break
            if hit:
                failed += 1
                break
    assert failed <= judge.EARLY_SHARE * t.false_rollback_rate * seeds


def test_counts_without_stables_requests_get_no_early_look_when_comparing() -> None:
    """Prometheus scrapes each pod at its own moment, so a step's first counts may hold the
    canary's requests and none of the stable's. On a service failing 8% on both arms against a
    99% floor, the floor would judge the canary alone and fail a canary no worse than the stable
    (7.2% of S9-92%-healthy on the twin with staggered scrapes): no look until stable's come.
    Without ``compareWithStable`` the floor is the canary's alone, so the look is taken."""
    noisy = judge.Evidence(judge.Arm(130, 13), judge.Arm(), canary_weight=20)
    assert judge.evaluate_early(SLOS, noisy, 2) is None
    alone = judge.Thresholds(min_requests=200, success_rate_min=99.0, compare_with_stable=False)
    found = judge.evaluate_early(alone, noisy, 2)
    assert found is not None
    assert found.verdict is judge.Verdict.FAIL
    with_stable = judge.Evidence(judge.Arm(130, 13), judge.Arm(520, 42), canary_weight=20)
    assert judge.evaluate_early(SLOS, with_stable, 2) is None
