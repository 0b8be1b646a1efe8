"""What a step needs before it may pass (``canary.core.power``): the weight-scaled default
minimum, ``analysis.detect`` at the last shared step, and the time it will take; and the machine
reporting it in the step's status."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from canary.core import judge, plan, power
from canary.errors import InvalidSpec
from canary.model.policy import Step
from tests.unit.fake_cluster import FakeCluster, make_plan, make_rollout, run

DETECT = judge.Thresholds(min_requests=200, detect_error_ratio=2.0)


def _steps(*weights: int | None) -> tuple[Step, ...]:
    return tuple(
        Step.model_validate({"pause": {}} if w is None else {"setWeight": w}) for w in weights
    )


def test_the_last_shared_step_is_the_last_weight_below_100() -> None:
    """Detect applies at the last step with 0 < weight < 100; pauses and 100% do not count."""
    assert power.last_shared(_steps(5, 10, 20, 50, 100)) == 3
    assert power.last_shared(_steps(10, None, 50, None, 100)) == 2
    assert power.last_shared(_steps(100)) is None


def test_the_default_minimum_falls_to_the_weights_share_after_four_minutes() -> None:
    """Unset, minRequestsPerStep is 200 until a step has run four minutes, then its weight's
    share (10 at 5%, at least 1); set, every step needs it however long it runs."""
    scaled = judge.Thresholds(min_requests=200, min_requests_scaled=True)
    early, late = timedelta(minutes=3, seconds=59), power.LOW_TRAFFIC_AFTER
    assert [power.step_minimum(scaled, w, early) for w in (5, 50)] == [200, 200]
    found = [power.step_minimum(scaled, w, late) for w in (0, 5, 10, 50, 100)]
    assert found == [1, 10, 20, 100, 200]
    assert power.step_minimum(judge.Thresholds(min_requests=200), 5, late) == 200


def test_the_time_left_counts_the_lower_share_to_come() -> None:
    """At 5%, 0.05 canary requests a second: 3 after 60 s; 200 would take an hour, but from
    four minutes on 10 will do, which arrive after 200 s — so the wait is what is left of the
    four minutes. At 100 req/s the 200 come first; a set minimum or detect has no such share."""
    scaled = judge.Thresholds(min_requests=200, min_requests_scaled=True)
    plain = power.Need(200, "minRequestsPerStep")
    minute = timedelta(seconds=60)
    assert power.time_left(scaled, 5, plain, 3, minute) == timedelta(minutes=3)
    assert power.time_left(scaled, 5, plain, 2, minute) == timedelta(seconds=240)
    assert power.time_left(scaled, 5, plain, 150, minute) == timedelta(seconds=20)
    fixed = judge.Thresholds(min_requests=200)
    assert power.time_left(fixed, 5, plain, 3, minute) == timedelta(seconds=3940)
    detect = power.Need(200, "detect")
    assert power.time_left(scaled, 5, detect, 3, minute) == timedelta(seconds=3940)
    late = power.LOW_TRAFFIC_AFTER + minute
    assert power.time_left(scaled, 5, power.Need(10, "minRequestsPerStep"), 5, late) == (
        timedelta(seconds=300)
    )


def test_detect_needs_more_requests_for_rarer_failures_and_more_power() -> None:
    """The requirement grows as the stable's error rate falls and the power asked for rises,
    and falls as the regression to catch grows; without detect, or at 100%, there is none."""
    stable = judge.Arm(1_000_000, 5_000)
    base = power.detect_requests(DETECT, 50, stable)
    assert base is not None
    requests, note = base
    assert "2× the stable's error rate (0.5% so far) with probability 0.95" in note
    rarer = power.detect_requests(DETECT, 50, judge.Arm(1_000_000, 1_000))
    surer = power.detect_requests(
        judge.Thresholds(200, detect_error_ratio=2.0, detect_power=0.99), 50, stable
    )
    larger = power.detect_requests(judge.Thresholds(200, detect_error_ratio=5.0), 50, stable)
    assert rarer is not None
    assert surer is not None
    assert larger is not None
    assert rarer[0] > 4 * requests
    assert surer[0] > requests > larger[0]
    assert power.detect_requests(judge.Thresholds(200), 50, stable) is None
    assert power.detect_requests(DETECT, 100, stable) is None
    tolerant = judge.Thresholds(200, error_rate_tolerance=1.0, detect_error_ratio=2.0)
    assert power.detect_requests(tolerant, 50, stable) is None


def test_detect_requests_catch_the_regression_with_the_power_asked_for() -> None:
    """A step with the requests detect asks for (2× on 0.5% at weight 50, power 0.95), judged by
    the real judge, fails a 2× canary in at least 92% of 1000 seeded draws. If the true power is
    0.95 the observed share is below 0.92 with probability < 0.001% (4.3 standard deviations);
    it was 95.5% when written."""
    p_s, weight = 0.005, 50
    needed = power.detect_requests(DETECT, weight, judge.Arm(10**7, int(p_s * 10**7)))
    assert needed is not None
    n = needed[0]
    rng = np.random.default_rng(15)
    trials, caught = 1000, 0
    for _ in range(trials):
        canary = judge.Arm(n, int(rng.binomial(n, 2 * p_s)))
        stable = judge.Arm(n, int(rng.binomial(n, p_s)))
        verdict = judge.evaluate(
            judge.settled(DETECT), judge.Evidence(canary, stable, canary_weight=weight)
        )
        caught += verdict.verdict is judge.Verdict.FAIL
    assert caught / trials >= 0.92


def test_need_is_the_minimum_except_where_detect_asks_for_more() -> None:
    """Detect raises the last shared step's need only; elsewhere the minimum stands."""
    steps = _steps(5, 10, 20, 50, 100)
    stable = judge.Arm(100_000, 500)
    held = power.need(DETECT, steps, 3, stable, timedelta(0))
    assert held.reason == "detect"
    assert held.requests > 200
    assert "analysis.detect" in held.note
    plain = power.Need(200, "minRequestsPerStep")
    assert power.need(DETECT, steps, 2, stable, timedelta(0)) == plain
    assert power.need(DETECT, steps, 4, stable, timedelta(0)) == plain
    small = judge.Thresholds(min_requests=10**8, detect_error_ratio=2.0)
    assert power.need(small, steps, 3, stable, timedelta(0)).reason == "minRequestsPerStep"


def test_a_held_step_reports_what_it_needs_why_and_when() -> None:
    """At the last shared step the status says how many canary requests detect needs, why, and
    when they will be there; the message says so in words; the step does not pass before."""
    detected = make_plan(
        analysis={"successRate": {"min": 99}, "detect": {"errorRatio": 2, "power": 0.95}},
        steps=[{"setWeight": 10}, {"setWeight": 50}, {"setWeight": 100}],
    )
    status, now, _ = run(detected, FakeCluster(stable_error_rate=0.01), max_ticks=12)
    assert status.phase == "Progressing"
    step = status.steps[status.current_step_index]
    assert step.weight == 50
    assert step.needed_for == "detect"
    assert step.needs is not None
    assert step.canary.requests < step.needs
    assert step.eta is not None
    assert step.eta > now
    assert "held at the last shared step for analysis.detect" in status.message
    assert "more at the current canary traffic" in status.message
    plain, _, _ = run(make_plan(), FakeCluster(), max_ticks=4)
    first = plain.steps[0]
    assert (first.needs, first.needed_for) == (50, "minRequestsPerStep")


@pytest.mark.parametrize(
    ("analysis", "steps", "path"),
    [
        (
            {"compareWithStable": {"enabled": False}, "detect": {"errorRatio": 2}},
            None,
            "spec.analysis.detect",
        ),
        (
            {"compareWithStable": {"errorRateTolerance": 1}, "detect": {"errorRatio": 2}},
            None,
            "spec.analysis.detect.errorRatio",
        ),
        ({"detect": {"errorRatio": 2}}, [{"setWeight": 100}], "spec.analysis.detect"),
    ],
)
def test_detect_that_cannot_be_met_is_refused_with_its_field(
    analysis: dict[str, object], steps: list[dict[str, object]] | None, path: str
) -> None:
    """Detect without the comparison, within the tolerance, or without a shared step: refused."""
    spec: dict[str, object] = {"analysis": analysis}
    if steps is not None:
        spec["steps"] = steps
    with pytest.raises(InvalidSpec) as refused:
        plan.build(make_rollout(**spec), None)
    assert path in [p.path for p in refused.value.problems]


def test_detect_fills_the_thresholds() -> None:
    """``detect`` lands in the judge's thresholds, power defaulting to 0.95; an unset minimum
    is the weight-scaled default."""
    found = make_plan(analysis={"detect": {"errorRatio": 3}}).thresholds
    assert (found.detect_error_ratio, found.detect_power) == (3.0, 0.95)
    assert found.min_requests_scaled
    assert power.time_to_need(10, 20, timedelta(seconds=5)) == timedelta(seconds=5)


def test_a_step_without_traffic_or_past_its_need_gives_no_eta() -> None:
    """No canary requests: no rate, so no ETA; a step holding on evidence after it has its
    requests says why it holds, not how long the requests will take."""
    idle, _, _ = run(make_plan(), FakeCluster(rps=0), max_ticks=4)
    assert idle.steps[0].needs == 50
    assert idle.steps[0].eta is None
    assert "more at the current canary traffic" not in idle.message
    held, _, _ = run(make_plan(), FakeCluster(canary_error_rate=0.004), max_ticks=4)
    assert held.phase == "Progressing"
    assert held.steps[0].canary.requests >= 50
    assert held.steps[0].eta is None
    assert "holding" in held.message
    assert "more at the current canary traffic" not in held.message


def test_at_low_traffic_a_step_passes_on_its_share_after_four_minutes() -> None:
    """At 1 req/s a step of the default minimum passes with its weight's share of 200 once it
    has run four minutes, and no longer holds on weak evidence; before that it needs 200."""
    scaled = judge.Thresholds(min_requests=200, min_requests_scaled=True)
    steps = _steps(10, 50, 100)
    before = power.need(scaled, steps, 0, judge.Arm(), timedelta(minutes=1))
    after = power.need(scaled, steps, 0, judge.Arm(), power.LOW_TRAFFIC_AFTER)
    assert (before.requests, before.holds) == (200, True)
    assert (after.requests, after.holds) == (20, False)
    slow = make_plan(analysis={"successRate": {"min": 99}})
    status, _, _ = run(slow, FakeCluster(rps=2), max_ticks=40)
    first = status.steps[0]
    assert first.verdict == "Passed"
    assert 20 <= first.canary.requests < 200
    assert first.finished_at is not None
    assert first.finished_at - first.started_at >= power.LOW_TRAFFIC_AFTER
