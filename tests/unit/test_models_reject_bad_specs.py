"""The models accept what the docs show and reject, with the field path, what they forbid."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from canary.model.policy import PolicyFields, RolloutPolicySpec
from canary.model.rollout import Rollout, RolloutPolicy, RolloutSpec, merge_policy

SPEC: dict[str, Any] = {
    "targetRef": {"name": "podinfo"},
    "release": {"images": {"podinfo": "ghcr.io/stefanprodan/podinfo:6.1.0"}},
    "policyRef": {"name": "podinfo"},
}


def _spec(**extra: Any) -> dict[str, Any]:
    return {**SPEC, **extra}


def _error(spec: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ValidationError) as caught:
        RolloutSpec.model_validate(spec)
    first = caught.value.errors()[0]
    return ".".join(str(p) for p in first["loc"]), first["msg"]


@pytest.mark.parametrize(
    ("spec", "path", "message"),
    [
        (_spec(steps=[{"setWeight": 101}]), "steps.0.setWeight", "less than or equal to 100"),
        (_spec(steps=[{"setWeight": -1}]), "steps.0.setWeight", "greater than or equal to 0"),
        (_spec(steps=[]), "steps", "at least 1 item"),
        (_spec(steps=[{"setWeight": 5, "pause": {}}]), "steps.0", "exactly one of setWeight"),
        (_spec(steps=[{}]), "steps.0", "exactly one of setWeight"),
        (_spec(traffic={"router": "Istio"}), "traffic.router", "'HTTPRoute' or 'TrafficSplit'"),
        (
            _spec(traffic={"router": "TrafficSplit", "apiVersion": "gateway.networking.k8s.io/v1"}),
            "traffic",
            "does not serve TrafficSplit",
        ),
        (_spec(analysis={"interval": "-5s"}), "analysis.interval", "duration"),
        (_spec(analysis={"interval": "5"}), "analysis.interval", "duration"),
        (_spec(analysis={"metrics": [{"name": "x", "query": "up"}]}), "analysis.metrics.0", "min"),
        (_spec(notifications=[{"type": "slack"}]), "notifications.0", "exactly one of url"),
        (
            _spec(notifications=[{"type": "webhook", "url": "https://h.example", "channel": "C1"}]),
            "notifications.0",
            "channel is for slack notifications only",
        ),
        (
            _spec(
                notifications=[
                    {
                        "type": "webhook",
                        "url": "https://h.example",
                        "urlFrom": {"name": "s", "key": "url"},
                    }
                ]
            ),
            "notifications.0",
            "exactly one of url or urlFrom",
        ),
        (
            _spec(
                notifications=[
                    {
                        "type": "slack",
                        "url": "https://hooks.slack.com/x",
                        "signingSecretFrom": {"name": "s", "key": "k"},
                    }
                ]
            ),
            "notifications.0",
            "webhook notifications only",
        ),
        (
            _spec(notifications=[{"type": "slack", "url": "https://h.example", "events": ["x"]}]),
            "notifications.0.events.0",
            "pattern",
        ),
        (_spec(stepWeight=10, steps=[{"setWeight": 5}]), "", "not both"),
        ({"release": SPEC["release"]}, "targetRef", "Field required"),
        (_spec(release={}), "release", "changes something"),
        (_spec(servce={"name": "x", "port": 1}), "servce", "Extra inputs"),
        (_spec(progressDeadline={"timeout": "0s"}), "progressDeadline.timeout", "from 1s to 720h"),
        (
            _spec(promotionDeadline={"timeout": "721h"}),
            "promotionDeadline.timeout",
            "from 1s to 720h",
        ),
        (
            _spec(promotionDeadline={"onTimeout": "Rollback"}),
            "promotionDeadline.onTimeout",
            "'Fail' or 'Hold'",
        ),
        (
            _spec(analysis={"unavailable": {"onTimeout": "Continue"}}),
            "analysis.unavailable.onTimeout",
            "'Rollback' or 'Hold'",
        ),
        (_spec(approvals={"timeout": "5"}), "approvals.timeout", "duration"),
    ],
)
def test_invalid_specs_are_rejected_at_the_field(
    spec: dict[str, Any], path: str, message: str
) -> None:
    """Each invalid spec fails at the named field with a message that says what is wrong."""
    got_path, got_message = _error(spec)
    assert got_path == path
    assert message in got_message


def test_valid_spec_round_trips_to_the_wire() -> None:
    """A full spec parses and serialises back to the same camelCase document."""
    doc = _spec(
        service={"name": "podinfo", "port": 9898},
        traffic={"router": "TrafficSplit", "apiVersion": "split.smi-spec.io/v1alpha2"},
        steps=[{"setWeight": 5}, {"pause": {"duration": "1m30s"}}, {"setWeight": 100}],
        analysis={
            "interval": "15s",
            "latency": {"percentile": 99, "maxMs": 500},
            "metrics": [{"name": "p50", "query": "up", "max": 3}],
        },
        notifications=[{"type": "webhook", "urlFrom": {"name": "hooks", "key": "url"}}],
    )
    assert (
        RolloutSpec.model_validate(doc).model_dump(by_alias=True, exclude_unset=True, mode="json")
        == doc
    )


def test_rollout_fields_override_the_policy() -> None:
    """Inline fields win; objects merge deeply; lists replace; defaults never override."""
    policy = RolloutPolicySpec.model_validate(
        {
            "service": {"name": "podinfo", "port": 9898},
            "stepWeight": 10,
            "maxWeight": 50,
            "analysis": {"interval": "30s", "successRate": {"min": 99}},
            "approvals": {"beforePromotion": {"required": False}},
        }
    )
    spec = RolloutSpec.model_validate(
        _spec(
            steps=[{"setWeight": 50}],
            analysis={"interval": "10s"},
            approvals={"beforePromotion": {"timeout": "1h"}},
        )
    )
    merged = merge_policy(spec, policy)
    assert merged.step_weight is None
    assert [s.set_weight for s in merged.steps or []] == [50]
    assert merged.analysis is not None
    assert merged.analysis.interval.total_seconds() == 10  # type: ignore[union-attr]
    assert merged.analysis.success_rate is not None
    assert merged.approvals is not None
    assert merged.approvals.before_promotion is not None
    assert merged.approvals.before_promotion.required is False


def test_rollout_shorthand_replaces_policy_steps() -> None:
    """stepWeight in the Rollout replaces the policy's explicit steps."""
    policy = RolloutPolicySpec.model_validate({"steps": [{"setWeight": 5}]})
    spec = RolloutSpec.model_validate(_spec(stepWeight=25))
    merged = merge_policy(spec, policy)
    assert (merged.steps, merged.step_weight) == (None, 25)
    assert merge_policy(spec, None) == PolicyFields.model_validate({"stepWeight": 25})


def test_whole_objects_parse_with_kubernetes_metadata() -> None:
    """Objects read from the API server parse, ignoring metadata canary does not use."""
    meta = {"name": "podinfo", "namespace": "test", "managedFields": [{}], "generation": 3}
    rollout = Rollout.model_validate(
        {"apiVersion": "canary.dev/v1alpha1", "kind": "Rollout", "metadata": meta, "spec": SPEC}
    )
    policy = RolloutPolicy.model_validate({"metadata": meta, "spec": {}})
    assert (rollout.metadata.generation, rollout.status.phase) == (3, "Pending")
    assert rollout.wire()["spec"]["policyRef"] == {"name": "podinfo"}
    assert policy.kind == "RolloutPolicy"
