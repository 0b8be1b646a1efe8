"""Weights: percents split into stable/canary, read back exactly from integers and quantities."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.core import weights


@given(st.integers(min_value=0, max_value=100))
def test_split_sums_to_100_and_reads_back(canary: int) -> None:
    """Any percent splits into two weights summing to 100 that read back as that percent."""
    stable, canary_weight = weights.split(canary)
    assert stable + canary_weight == 100
    assert weights.percent(stable, canary_weight) == canary


@given(st.integers(min_value=0, max_value=100))
def test_quantities_read_back_as_the_percent_written(canary: int) -> None:
    """SMI v1alpha1 quantities written for a percent read back as that percent."""
    stable, canary_weight = weights.split(canary)
    got = weights.percent(
        weights.parse_quantity(weights.quantity(stable)),
        weights.parse_quantity(weights.quantity(canary_weight)),
    )
    assert got == canary


@pytest.mark.parametrize("bad", [-1, 101])
def test_split_rejects_weights_outside_0_to_100(bad: int) -> None:
    """A percent below 0 or above 100 is a programming error."""
    with pytest.raises(ValueError, match="percent"):
        weights.split(bad)
    with pytest.raises(ValueError, match="percent"):
        weights.quantity(bad)


@pytest.mark.parametrize(
    ("stable", "canary", "expected"),
    [
        (0, 0, 0),
        (0, 7, 100),
        (950, 50, 5),
        (1, 1, 50),
        (7, 1, 13),  # 12.5 rounds half up
        (199, 1, 1),  # 0.5 rounds half up
        (999, 1, 0),
        (Fraction(95, 100), Fraction(5, 100), 5),
    ],
)
def test_percent_of_relative_weights(stable: int, canary: int, expected: int) -> None:
    """Relative weights of any scale give the canary's share, rounded half up; 0/0 is 0."""
    assert weights.percent(stable, canary) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (950, Fraction(950)),
        ("950m", Fraction(95, 100)),
        ("1", Fraction(1)),
        ("0", Fraction(0)),
        ("0.5", Fraction(1, 2)),
        (".5", Fraction(1, 2)),
        ("1.", Fraction(1)),
        ("+2", Fraction(2)),
        (" 3 ", Fraction(3)),
        ("1k", Fraction(1000)),
        ("1Ki", Fraction(1024)),
        ("1e3", Fraction(1000)),
        ("5E-1", Fraction(1, 2)),
        ("250u", Fraction(1, 4000)),
        ("1n", Fraction(1, 10**9)),
        ("1M", Fraction(10**6)),
        ("1Mi", Fraction(2**20)),
    ],
)
def test_parse_quantity(value: object, expected: Fraction) -> None:
    """Integers and Kubernetes quantities (SI, binary and exponent suffixes) parse exactly."""
    assert weights.parse_quantity(value) == expected


@pytest.mark.parametrize("value", ["", "m", "abc", "1x", "1.2.3", "1mm", True, None, 1.5, "-1", -3])
def test_parse_quantity_rejects_what_is_not_a_weight(value: object) -> None:
    """Non-quantities, booleans, floats and negative weights are rejected."""
    with pytest.raises(ValueError, match=r"weight|quantity"):
        weights.parse_quantity(value)


def test_quantity_uses_canonical_forms() -> None:
    """Percents become shares of one in the canonical form Kubernetes would print."""
    assert [weights.quantity(p) for p in (0, 5, 50, 95, 100)] == ["0", "50m", "500m", "950m", "1"]
