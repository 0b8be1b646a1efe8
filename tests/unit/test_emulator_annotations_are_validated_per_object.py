"""Bad sim.canary.dev annotations fall back to defaults with a problem naming object, key, value."""

import pytest

from canary.emulator.annotations import (
    ERROR_RATE,
    ERROR_STATUS,
    FAST_FAIL_MS,
    LATENCY_P50_MS,
    LATENCY_P99_MS,
    RPS,
    pod_behaviour,
    service_rps,
)
from canary.sim.traffic import Behaviour


def test_valid_pod_annotations_become_the_behaviour() -> None:
    """Every pod annotation maps onto the matching Behaviour field."""
    behaviour, problems = pod_behaviour(
        "pod test/p",
        {
            ERROR_RATE: "0.05",
            LATENCY_P50_MS: "20",
            LATENCY_P99_MS: "120",
            FAST_FAIL_MS: "2",
            ERROR_STATUS: "503",
            "unrelated.io/x": "y",
        },
    )
    assert behaviour == Behaviour(0.05, 20, 120, fast_fail_ms=2, error_status=503)
    assert problems == []


def test_unannotated_pod_is_healthy_and_fast() -> None:
    """No annotations: no errors, 10 ms median and a 50 ms p99."""
    assert pod_behaviour("pod test/p", {}) == (Behaviour(0, 10, 50), [])


def test_p99_defaults_to_five_times_the_median() -> None:
    """Only a median given: the p99 is five times it."""
    behaviour, _ = pod_behaviour("pod test/p", {LATENCY_P50_MS: "40"})
    assert behaviour.latency_p99_ms == 200


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        (ERROR_RATE, "5%", "probability from 0 to 1"),
        (ERROR_RATE, "1.5", "probability from 0 to 1"),
        (LATENCY_P50_MS, "-3", "milliseconds > 0"),
        (LATENCY_P50_MS, "fast", "milliseconds > 0"),
        (LATENCY_P99_MS, "5", "≥ the median (10)"),
        (FAST_FAIL_MS, "nan", "milliseconds ≥ 0"),
        (ERROR_STATUS, "404", "from 500 to 599"),
        ("sim.canary.dev/error-rat", "0.1", "unknown annotation"),
    ],
)
def test_bad_pod_annotation_is_reported_and_defaulted(key: str, value: str, allowed: str) -> None:
    """A bad value yields a problem naming pod, key and value, and the default is used."""
    behaviour, problems = pod_behaviour("pod test/podinfo-abc", {key: value})
    assert behaviour == Behaviour(0, 10, 50)
    assert len(problems) == 1
    text = str(problems[0])
    assert text.startswith(f'pod test/podinfo-abc: annotation {key}="{value}" ignored')
    assert allowed in text


def test_service_rps_is_read_and_checked() -> None:
    """A Service's rps is a non-negative number; anything else is 0 with a problem."""
    assert service_rps("service test/s", {RPS: "50"}) == (50.0, [])
    assert service_rps("service test/s", {}) == (0.0, [])
    rps, problems = service_rps("service test/s", {RPS: "lots"})
    assert rps == 0
    assert 'service test/s: annotation sim.canary.dev/rps="lots" ignored' in str(problems[0])
