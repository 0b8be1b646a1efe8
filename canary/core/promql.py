"""PromQL that canary writes: the tick's batched counters query and users' metric templates.

Called by the Prometheus metrics adapter (``canary.adapters.metrics.prometheus``). Pure: it only
builds strings and reads answers. Every name that goes into a query is first checked against
the Kubernetes name rules (namespaces are DNS-1123 labels, Deployments DNS-1123 subdomains) and
rejected with ``InvalidSpec`` otherwise, so no name can close a string, add a matcher or append
an expression: such names contain only ``a-z``, ``0-9``, ``-`` and ``.``.

The counters query asks for raw cumulative per-pod counters (``canary.core.evidence`` turns
them into per-tick deltas)::

    sum by (namespace, deployment, pod, classification) (response_total{<selectors>})
    or
    sum by (namespace, deployment, pod, le) (response_latency_ms_bucket{<selectors>})

with ``direction="inbound"`` and ``namespace=~``/``deployment=~`` alternations of every active
rollout's names, regex-escaped, so one query per tick serves every rollout.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import timedelta

from canary.errors import InvalidSpec, MetricsUnavailable, Problem

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
PLACEHOLDERS = ("namespace", "target", "canary", "interval")
"""What a custom metric query may refer to."""


def _invalid(path: str, message: str, hint: str) -> InvalidSpec:
    return InvalidSpec([Problem(path, message, hint)])


def namespace_name(value: str) -> str:
    """``value`` when it is a valid namespace name (a DNS-1123 label); else InvalidSpec."""
    if len(value) > 63 or not _LABEL.fullmatch(value):
        raise _invalid(
            "metadata.namespace",
            f"{value!r} is not a namespace name",
            "lower-case letters, digits and '-', at most 63 characters",
        )
    return value


def deployment_name(value: str) -> str:
    """``value`` when it is a valid Deployment name (a DNS-1123 subdomain); else InvalidSpec."""
    if len(value) > 253 or not all(_LABEL.fullmatch(part) for part in value.split(".")):
        raise _invalid(
            "spec.targetRef.name",
            f"{value!r} is not a Deployment name",
            "lower-case letters, digits, '-' and '.', at most 253 characters",
        )
    return value


def _alternation(names: Iterable[str]) -> str:
    # Inside a PromQL string a regex's backslash is itself escaped: \\. matches a literal dot.
    return "|".join(name.replace(".", "\\\\.") for name in sorted(set(names)))


def counters_query(targets: Sequence[tuple[str, str]]) -> str:
    """The one query for the inbound counters of every ``(namespace, deployment)`` in
    ``targets`` (which must not be empty)."""
    if not targets:
        raise ValueError("no targets to query")
    namespaces = _alternation(namespace_name(ns) for ns, _ in targets)
    deployments = _alternation(deployment_name(name) for _, name in targets)
    selectors = f'direction="inbound", namespace=~"{namespaces}", deployment=~"{deployments}"'
    return (
        f"sum by (namespace, deployment, pod, classification) (response_total{{{selectors}}})"
        f" or sum by (namespace, deployment, pod, le) "
        f"(response_latency_ms_bucket{{{selectors}}})"
    )


def duration(interval: timedelta) -> str:
    """A positive interval as a PromQL duration (``"30s"``, ``"1500ms"``)."""
    milliseconds = interval // timedelta(milliseconds=1)
    if milliseconds <= 0:
        raise _invalid(
            "spec.analysis.interval",
            f"{interval} is not a positive interval",
            "use at least 1s",
        )
    return f"{milliseconds // 1000}s" if milliseconds % 1000 == 0 else f"{milliseconds}ms"


def render(query: str, *, namespace: str, target: str, canary: str, interval: timedelta) -> str:
    """A custom metric query with ``{{namespace}}``, ``{{target}}`` (the stable Deployment),
    ``{{canary}}`` (the canary Deployment) and ``{{interval}}`` filled in.

    Names go in as they are (checked, not regex-escaped: a template may use them in ``=`` as
    well as ``=~`` matchers, where a ``.`` then matches any one character). Raises InvalidSpec
    for an invalid name or a placeholder it does not know."""
    values = {
        "namespace": namespace_name(namespace),
        "target": deployment_name(target),
        "canary": deployment_name(canary),
        "interval": duration(interval),
    }
    unknown = sorted({m[1] for m in _PLACEHOLDER.finditer(query)} - values.keys())
    if unknown:
        raise _invalid(
            "spec.analysis.metrics",
            f"unknown placeholder(s) {', '.join('{{' + u + '}}' for u in unknown)}",
            f"use {', '.join('{{' + p + '}}' for p in PLACEHOLDERS)}",
        )
    return _PLACEHOLDER.sub(lambda m: values[m[1]], query)


def single_value(result: object) -> float | None:
    """The number a custom query's ``result`` holds: a scalar ``[time, "v"]`` or an instant
    vector of at most one sample. None for an empty vector or NaN; MetricsUnavailable for an
    answer with several series or one that is not a number."""
    if isinstance(result, list) and not result:
        return None
    if isinstance(result, list) and all(isinstance(item, dict) for item in result):
        if len(result) > 1:
            raise MetricsUnavailable(
                f"the query returned {len(result)} series instead of one number; "
                "aggregate it (for example with sum(...))"
            )
        result = result[0].get("value")
    if not isinstance(result, list | tuple) or len(result) != 2 or not isinstance(result[1], str):
        # Prometheus writes a sample as [<time>, "<value as a string>"].
        raise MetricsUnavailable(f"the query did not return a number: {result!r:.200}")
    try:
        number = float(result[1])
    except ValueError as error:
        raise MetricsUnavailable(
            f"the query did not return a number: {result[1]!r:.200}"
        ) from error
    return None if math.isnan(number) else number
