"""The plan: policy merged, defaults filled, and what a schema cannot check is reported."""

from __future__ import annotations

from datetime import timedelta

import pytest

from canary.core import plan
from canary.errors import InvalidSpec
from canary.model.rollout import RolloutPolicy
from tests.unit.fake_cluster import make_rollout


def test_defaults_fill_every_gap() -> None:
    """A Rollout with only a target, a release and a service gets the documented defaults."""
    rollout = make_rollout(steps=None, analysis=None)
    result = plan.build(rollout, None)
    assert [s.set_weight for s in result.steps] == [5, 10, 20, 50, 100]
    assert (result.router, result.api_version) == ("HTTPRoute", "gateway.networking.k8s.io/v1")
    assert result.route_name == "podinfo"
    assert (result.stable_service, result.canary_service) == ("podinfo-stable", "podinfo-canary")
    assert result.canary_deployment == "podinfo-canary"
    assert result.interval == timedelta(seconds=15)
    assert result.thresholds.min_requests == 200
    assert result.thresholds.hold_above == 1.0
    assert result.no_data_timeout == timedelta(minutes=10)
    assert result.no_data_on_timeout == "Rollback"
    assert result.before_promotion is None


def test_policy_supplies_what_the_rollout_leaves_out() -> None:
    """Fields come from the referenced policy unless the Rollout sets them."""
    policy = RolloutPolicy.model_validate(
        {
            "metadata": {"name": "podinfo"},
            "spec": {
                "service": {"name": "web", "port": 80},
                "traffic": {"router": "TrafficSplit"},
                "analysis": {
                    "compareWithStable": {
                        "enabled": False,
                        "falseRollbackRate": 0.001,
                        "errorRateTolerance": 1,
                        "latencyTolerance": 0.5,
                        "holdAbove": 0.1,
                    },
                    "latency": {"maxMs": 300},
                    "metrics": [{"name": "queue", "query": "q", "max": 10}],
                },
                "approvals": {"beforePromotion": {"required": True, "timeout": "1h"}},
            },
        }
    )
    result = plan.build(make_rollout(service=None, analysis=None), policy)
    assert (result.service.name, result.router) == ("web", "TrafficSplit")
    assert result.api_version == "split.smi-spec.io/v1alpha2"
    t = result.thresholds
    assert (t.compare_with_stable, t.false_rollback_rate) == (False, 0.001)
    assert (t.error_rate_tolerance, t.latency_tolerance, t.hold_above) == (1, 0.5, 0.1)
    assert (t.latency_percentile, t.latency_max_ms) == (99, 300)
    assert t.custom == {"queue": (None, 10)}
    assert result.before_promotion is not None


@pytest.mark.parametrize(
    ("spec", "path", "text"),
    [
        ({"service": None}, "spec.service", "no apex Service"),
        ({"steps": [{"setWeight": 50}, {"setWeight": 20}]}, "spec.steps[1].setWeight", "lower"),
        ({"steps": [{"setWeight": 0}, {"setWeight": 20}]}, "spec.steps[0].setWeight", "weight 0"),
        ({"steps": [{"pause": {}}]}, "spec.steps", "no step sends traffic"),
        (
            {
                "analysis": {
                    "metrics": [
                        {"name": "a", "query": "x", "max": 1},
                        {"name": "a", "query": "y", "max": 1},
                    ]
                }
            },
            "spec.analysis.metrics",
            "defined twice",
        ),
    ],
)
def test_semantic_problems_name_the_field(spec: dict[str, object], path: str, text: str) -> None:
    """Problems a schema cannot see are raised with the field path and a fix hint."""
    with pytest.raises(InvalidSpec) as caught:
        plan.build(make_rollout(**spec), None)
    problem = caught.value.problems[0]
    assert problem.path == path
    assert text in problem.message
    assert problem.hint


def test_every_wait_has_a_default_deadline_and_action() -> None:
    """Unset, each wait gets its documented deadline and onTimeout."""
    result = plan.build(make_rollout(approvals={"beforeStart": True}), None)
    assert result.progress == plan.Wait(timedelta(minutes=10), "Rollback")
    assert result.promotion == plan.Wait(timedelta(minutes=30), "Fail")
    assert result.unavailable == plan.Wait(timedelta(minutes=10), "Hold")
    assert result.before_start == plan.Wait(timedelta(hours=24), "Hold")
    assert result.pause_gates == (None, None)


@pytest.mark.parametrize(
    ("approvals", "pause", "gate", "start", "step"),
    [
        ({}, {}, {}, ("24h", "Hold"), ("24h", "Hold")),
        ({"timeout": "1h"}, {}, {}, ("1h", "Rollback"), ("1h", "Rollback")),
        ({"onTimeout": "Continue"}, {}, {}, ("24h", "Continue"), ("24h", "Continue")),
        (
            {"timeout": "1h"},
            {"timeout": "5m", "onTimeout": "Hold"},
            {},
            ("1h", "Rollback"),
            ("5m", "Hold"),
        ),
        (
            {},
            {"timeout": "5m"},
            {"timeout": "2h", "onTimeout": "Promote"},
            ("24h", "Hold"),
            ("5m", "Rollback"),
        ),
    ],
)
def test_approval_gates_take_their_own_then_the_approvals_deadline(
    approvals: dict[str, object],
    pause: dict[str, object],
    gate: dict[str, object],
    start: tuple[str, str],
    step: tuple[str, str],
) -> None:
    """A gate's own timeout/onTimeout win over approvals'; a timeout set defaults to Rollback;
    none set is a day's Hold; Promote is the older name of Continue."""
    rollout = make_rollout(
        steps=[{"setWeight": 10}, {"pause": pause}, {"pause": {"duration": "1m"}}],
        approvals={**approvals, "beforeStart": True, "beforePromotion": gate},
    )
    result = plan.build(rollout, None)
    wait = {"24h": timedelta(hours=24), "1h": timedelta(hours=1), "5m": timedelta(minutes=5)}
    assert result.before_start == plan.Wait(wait[start[0]], start[1])  # type: ignore[arg-type]
    assert result.pause_gates[1] == plan.Wait(wait[step[0]], step[1])  # type: ignore[arg-type]
    assert result.pause_gates[0] is None
    assert result.pause_gates[2] is None
    promotion = result.before_promotion
    assert promotion is not None
    if gate:
        assert promotion == plan.Wait(timedelta(hours=2), "Continue")
    else:
        assert promotion == result.before_start


def test_configured_deadlines_replace_the_defaults() -> None:
    """progressDeadline, promotionDeadline and analysis.unavailable are read from the policy."""
    result = plan.build(
        make_rollout(
            progressDeadline={"timeout": "3m", "onTimeout": "Hold"},
            promotionDeadline={"timeout": "1h", "onTimeout": "Hold"},
            analysis={"unavailable": {"timeout": "30m", "onTimeout": "Rollback"}},
        ),
        None,
    )
    assert result.progress == plan.Wait(timedelta(minutes=3), "Hold")
    assert result.promotion == plan.Wait(timedelta(hours=1), "Hold")
    assert result.unavailable == plan.Wait(timedelta(minutes=30), "Rollback")
