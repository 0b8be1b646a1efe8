"""Step plans: the stepWeight/maxWeight shorthand, weights in effect, canary replica counts."""

from __future__ import annotations

import pytest

from canary.core import steps
from canary.model.policy import PolicyFields, Step


def _weights(fields: dict[str, object]) -> list[int | None]:
    return [s.set_weight for s in steps.expand(PolicyFields.model_validate(fields))]


@pytest.mark.parametrize(
    ("fields", "weights"),
    [
        ({}, [5, 10, 20, 50, 100]),
        ({"stepWeight": 10, "maxWeight": 50}, [10, 20, 30, 40, 50]),
        ({"stepWeight": 20, "maxWeight": 50}, [20, 40, 50]),
        ({"stepWeight": 25}, [25, 50, 75, 100]),
        ({"maxWeight": 30}, [30]),
        ({"steps": [{"setWeight": 1}, {"pause": {}}]}, [1, None]),
    ],
)
def test_expand(fields: dict[str, object], weights: list[int | None]) -> None:
    """The shorthand expands to explicit steps; no steps means the default ladder."""
    assert _weights(fields) == weights


def test_weight_in_effect() -> None:
    """A pause keeps the weight of the step before it."""
    plan = [
        Step.model_validate({"pause": {}}),
        Step(set_weight=10),
        Step.model_validate({"pause": {"duration": "1m"}}),
        Step(set_weight=50),
    ]
    assert [steps.weight_at(plan, i) for i in range(4)] == [0, 10, 10, 50]


@pytest.mark.parametrize(
    ("stable", "weight", "replicas"),
    [(4, 5, 1), (4, 25, 1), (4, 26, 2), (10, 50, 5), (3, 100, 3), (0, 50, 1), (1, 1, 1)],
)
def test_canary_replicas_follow_the_weight(stable: int, weight: int, replicas: int) -> None:
    """Canary pods = ceil(stable × weight / 100), never fewer than one."""
    assert steps.canary_replicas(stable, weight) == replicas
