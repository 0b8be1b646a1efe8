"""The e2e test of emojivoto's faulty voting release states its false-failure rate from
``make bench-emojivoto``, which reads the example's manifests: these are the figures that
statement rests on (stable ~16% failed calls, the release ~30%, 50 req/s, steps 20/50/100), and
the policy still asks for the power that makes a miss rarer than 1 in 1,000."""

from __future__ import annotations

import pytest

from bench.emojivoto import voting
from canary.model.policy import RolloutPolicySpec


def test_the_example_release_fails_about_twice_as_often_as_stable() -> None:
    v = voting()
    assert v.rps == 50
    assert v.stable_errors == pytest.approx(0.16)
    assert v.canary_errors == pytest.approx(0.30)
    assert v.steps == (20, 50, 100)


def test_the_voting_policy_asks_to_catch_a_smaller_regression_at_least_999_times_in_1000() -> None:
    v = voting()
    spec = RolloutPolicySpec.model_validate(
        {
            "service": {"name": "voting-svc", "port": 8080},
            "steps": [{"setWeight": weight} for weight in v.steps],
            "analysis": v.analysis,
        }
    )
    assert spec.analysis is not None
    detect = spec.analysis.detect
    assert detect is not None
    assert detect.error_ratio <= v.canary_errors / v.stable_errors
    assert detect.power is not None
    assert detect.power >= 0.999
