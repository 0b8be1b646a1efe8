"""The compareWithStable knobs validate on the wire."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from canary.model.policy import CompareWithStable


def test_every_knob_reads_from_camel_case() -> None:
    """All knobs are settable by their wire names."""
    knobs = CompareWithStable.model_validate(
        {
            "enabled": True,
            "falseRollbackRate": 0.001,
            "errorRateTolerance": 0.25,
            "latencyTolerance": 0.5,
            "holdAbove": 3,
        }
    )
    assert knobs.false_rollback_rate == 0.001
    assert knobs.hold_above == 3


@pytest.mark.parametrize(
    "wire",
    [
        {"falseRollbackRate": 0},
        {"falseRollbackRate": 0.5},
        {"errorRateTolerance": -0.1},
        {"latencyTolerance": -1},
        {"holdAbove": 0},
    ],
)
def test_out_of_range_knobs_are_refused(wire: dict[str, float]) -> None:
    """Rates outside (0, 0.5), negative tolerances and a non-positive hold level are refused."""
    with pytest.raises(ValidationError):
        CompareWithStable.model_validate(wire)
