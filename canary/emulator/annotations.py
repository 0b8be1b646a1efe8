"""The ``sim.canary.dev/*`` annotations that tell the mesh emulator how much load to send and how
each pod behaves.

Who calls it: ``canary.emulator.topology`` for every Service and Pod it sees. A bad value never
stops the emulator: the field falls back to its default and an :class:`AnnotationProblem` says
which object, which annotation, which value, and what is allowed.

On a Service (the apex the clients call):

- ``sim.canary.dev/rps`` — requests per second to send to it (a number ≥ 0).

On a Pod (set them in the Deployment's pod template):

- ``sim.canary.dev/error-rate`` — probability that a request fails, 0–1 (default 0).
- ``sim.canary.dev/latency-p50-ms`` — median latency in ms, > 0 (default 10).
- ``sim.canary.dev/latency-p99-ms`` — 99th percentile in ms, ≥ the median (default 5 × median).
- ``sim.canary.dev/fast-fail-ms`` — if set, failures answer after exactly this many ms.
- ``sim.canary.dev/error-status`` — HTTP status of a failure, 500–599 (default 500).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from canary.sim.traffic import Behaviour

PREFIX = "sim.canary.dev/"
RPS = PREFIX + "rps"
ERROR_RATE = PREFIX + "error-rate"
LATENCY_P50_MS = PREFIX + "latency-p50-ms"
LATENCY_P99_MS = PREFIX + "latency-p99-ms"
FAST_FAIL_MS = PREFIX + "fast-fail-ms"
ERROR_STATUS = PREFIX + "error-status"

POD_ANNOTATIONS = (ERROR_RATE, LATENCY_P50_MS, LATENCY_P99_MS, FAST_FAIL_MS, ERROR_STATUS)
SERVICE_ANNOTATIONS = (RPS,)

DEFAULT_P50_MS = 10.0
DEFAULT_P99_FACTOR = 5.0


@dataclass(frozen=True)
class AnnotationProblem:
    """One annotation the emulator could not use, and what it did instead."""

    where: str
    key: str
    value: str
    allowed: str

    def __str__(self) -> str:
        return f'{self.where}: annotation {self.key}="{self.value}" ignored: {self.allowed}'


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _unknown(
    where: str, annotations: Mapping[str, str], known: tuple[str, ...]
) -> list[AnnotationProblem]:
    return [
        AnnotationProblem(where, key, value, f"unknown annotation; known: {', '.join(known)}")
        for key, value in sorted(annotations.items())
        if key.startswith(PREFIX) and key not in known
    ]


def service_rps(
    where: str, annotations: Mapping[str, str]
) -> tuple[float, list[AnnotationProblem]]:
    """The request rate a Service asks for (0 when unset or invalid), and any problems."""
    problems = _unknown(where, annotations, SERVICE_ANNOTATIONS)
    text = annotations.get(RPS)
    if text is None:
        return 0.0, problems
    value = _number(text)
    if value is None or value < 0:
        problems.append(AnnotationProblem(where, RPS, text, 'expected a number ≥ 0, e.g. "50"'))
        return 0.0, problems
    return value, problems


def pod_behaviour(
    where: str, annotations: Mapping[str, str]
) -> tuple[Behaviour, list[AnnotationProblem]]:
    """The behaviour a pod's annotations ask for, every invalid field at its default."""
    problems = _unknown(where, annotations, POD_ANNOTATIONS)

    def read(
        key: str, default: float | None, allowed: str, ok: Callable[[float], bool]
    ) -> float | None:
        text = annotations.get(key)
        if text is None:
            return default
        value = _number(text)
        if value is None or not ok(value):
            problems.append(AnnotationProblem(where, key, text, allowed))
            return default
        return value

    error_rate = read(
        ERROR_RATE, 0.0, 'expected a probability from 0 to 1, e.g. "0.05"', lambda v: 0 <= v <= 1
    )
    p50 = read(
        LATENCY_P50_MS, DEFAULT_P50_MS, 'expected milliseconds > 0, e.g. "20"', lambda v: v > 0
    )
    assert p50 is not None
    p99_default = p50 * DEFAULT_P99_FACTOR
    p99 = read(
        LATENCY_P99_MS,
        p99_default,
        f'expected milliseconds ≥ the median ({p50:g}), e.g. "{p99_default:g}"',
        lambda v: v >= p50,
    )
    fast_fail = read(FAST_FAIL_MS, None, 'expected milliseconds ≥ 0, e.g. "2"', lambda v: v >= 0)
    status = read(
        ERROR_STATUS,
        500,
        "expected an HTTP status from 500 to 599",
        lambda v: v.is_integer() and 500 <= v <= 599,
    )
    behaviour = Behaviour(
        error_rate=error_rate or 0.0,
        latency_p50_ms=p50,
        latency_p99_ms=p99 if p99 is not None else p99_default,
        fast_fail_ms=fast_fail,
        error_status=int(status or 500),
    )
    return behaviour, problems
