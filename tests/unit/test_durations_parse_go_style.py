"""Durations on the wire are Go-style strings; the models hold timedeltas."""

from datetime import timedelta

import pytest

from canary.model.base import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15s", timedelta(seconds=15)),
        ("1m30s", timedelta(seconds=90)),
        ("250ms", timedelta(milliseconds=250)),
        ("1h", timedelta(hours=1)),
        ("1.5m", timedelta(seconds=90)),
    ],
)
def test_parse_duration_reads_go_style_strings(text: str, expected: timedelta) -> None:
    """Every unit canary documents parses to the right timedelta."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["-5s", "5", "", "5d", "1m-30s", 5])
def test_parse_duration_rejects_malformed_and_negative(text: object) -> None:
    """Negative, unitless and unknown-unit durations are refused with a hint."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_parse_duration_rejects_negative_timedelta() -> None:
    """A negative timedelta given directly is refused too."""
    with pytest.raises(ValueError, match="negative"):
        parse_duration(timedelta(seconds=-1))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(hours=2), "2h"),
        (timedelta(milliseconds=1500), "1500ms"),
    ],
)
def test_format_duration_round_trips(value: timedelta, text: str) -> None:
    """Formatting gives the shortest Go-style text and parses back to the same value."""
    assert format_duration(value) == text
    assert parse_duration(text) == value


def test_parse_duration_accepts_timedelta() -> None:
    """A timedelta given directly (as from Python code) passes through unchanged."""
    assert parse_duration(timedelta(seconds=3)) == timedelta(seconds=3)
