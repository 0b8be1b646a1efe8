"""The ``sim.canary.dev/*`` annotations that tell the mesh emulator how much load to send and how
each pod behaves.

Who calls it: ``canary.emulator.topology`` for every Service and Pod it sees. A bad value never
stops the emulator: the field falls back to its default and an :class:`AnnotationProblem` says
which object, which annotation, which value, and what is allowed.

On a Service (the apex the clients call):

- ``sim.canary.dev/rps`` — requests per second to send to it (a number ≥ 0).
- ``sim.canary.dev/paths`` — which paths those requests ask for, a JSON object of path →
  relative share, e.g. ``{"/api/list": 50, "/api/vote": 50}`` (default: paths do not matter).

On a Pod (set them in the Deployment's pod template):

- ``sim.canary.dev/error-rate`` — probability that a request fails, 0–1 (default 0).
- ``sim.canary.dev/latency-p50-ms`` — median latency in ms, > 0 (default 10).
- ``sim.canary.dev/latency-p99-ms`` — 99th percentile in ms, ≥ the median (default 5 × median).
- ``sim.canary.dev/fast-fail-ms`` — if set, failures answer after exactly this many ms.
- ``sim.canary.dev/error-status`` — HTTP status of a failure, 500–599 (default 500).
- ``sim.canary.dev/protocol`` — ``http`` (default) or ``grpc``: a gRPC server answers HTTP 200
  with a ``grpc-status``.
- ``sim.canary.dev/grpc-error-status`` — gRPC status of a failure, 1–16 (default 2, UNKNOWN).
- ``sim.canary.dev/path-error-rates`` — a JSON object of path → probability: requests for that
  path fail at that rate, other paths at ``error-rate``.
"""

from __future__ import annotations

import json
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
PROTOCOL = PREFIX + "protocol"
GRPC_ERROR_STATUS = PREFIX + "grpc-error-status"
PATH_ERROR_RATES = PREFIX + "path-error-rates"
PATHS = PREFIX + "paths"

POD_ANNOTATIONS = (
    ERROR_RATE,
    LATENCY_P50_MS,
    LATENCY_P99_MS,
    FAST_FAIL_MS,
    ERROR_STATUS,
    PROTOCOL,
    GRPC_ERROR_STATUS,
    PATH_ERROR_RATES,
)
SERVICE_ANNOTATIONS = (RPS, PATHS)
PROTOCOLS = ("http", "grpc")

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


def _path_numbers(text: str, ok: Callable[[float], bool]) -> tuple[tuple[str, float], ...] | None:
    """A JSON object of path → number, every number ``ok``; None when it is not one."""
    try:
        found = json.loads(text)
    except ValueError:
        return None
    if not isinstance(found, dict) or not found:
        return None
    pairs: list[tuple[str, float]] = []
    for path, value in found.items():
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if number is None or not math.isfinite(number) or not ok(number):
            return None
        pairs.append((path, float(number)))
    return tuple(pairs)


def service_paths(
    where: str, annotations: Mapping[str, str]
) -> tuple[tuple[tuple[str, float], ...], list[AnnotationProblem]]:
    """The paths a Service's clients ask for, as ``(path, share)`` pairs (empty when unset or
    invalid), and any problem. Unknown keys are reported by :func:`service_rps`."""
    text = annotations.get(PATHS)
    if text is None:
        return (), []
    paths = _path_numbers(text, lambda v: v >= 0)
    if paths is None or not any(share > 0 for _, share in paths):
        allowed = (
            'expected a JSON object of path → share ≥ 0, e.g. {"/api/list": 50, "/api/vote": 50}'
        )
        return (), [AnnotationProblem(where, PATHS, text, allowed)]
    return paths, []


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
    protocol = annotations.get(PROTOCOL, "http")
    if protocol not in PROTOCOLS:
        problems.append(AnnotationProblem(where, PROTOCOL, protocol, 'expected "http" or "grpc"'))
    grpc_status = read(
        GRPC_ERROR_STATUS,
        2,
        'expected a gRPC status from 1 to 16, e.g. "2" (UNKNOWN)',
        lambda v: v.is_integer() and 1 <= v <= 16,
    )
    path_rates: tuple[tuple[str, float], ...] = ()
    text = annotations.get(PATH_ERROR_RATES)
    if text is not None:
        found_rates = _path_numbers(text, lambda v: 0 <= v <= 1)
        if found_rates is None:
            allowed = (
                'expected a JSON object of path → probability from 0 to 1, e.g. {"/api/vote": 0.16}'
            )
            problems.append(AnnotationProblem(where, PATH_ERROR_RATES, text, allowed))
        else:
            path_rates = found_rates
    behaviour = Behaviour(
        error_rate=error_rate or 0.0,
        latency_p50_ms=p50,
        latency_p99_ms=p99 if p99 is not None else p99_default,
        fast_fail_ms=fast_fail,
        error_status=int(status or 500),
        grpc=protocol == "grpc",
        grpc_error_status=int(grpc_status or 2),
        path_error_rates=path_rates,
    )
    return behaviour, problems
