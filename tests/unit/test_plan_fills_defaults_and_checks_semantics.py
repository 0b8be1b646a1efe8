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
