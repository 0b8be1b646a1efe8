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
      < on (namespace, deployment, pod) group_left ()
      sum by (namespace, deployment, pod) (response_latency_ms_bucket{<selectors>, le="+Inf"})
    or
    sum by (namespace, deployment, pod, le) (response_latency_ms_bucket{<selectors>, le="+Inf"})

with ``direction="inbound"`` and ``namespace=~``/``deployment=~`` alternations of every active
rollout's names, regex-escaped, so one query per tick serves every rollout; the buckets' part
names only the rollouts whose latency buckets the tick needs (``canary.core.measuring.bucketed``:
a window may begin or end), or is left out when none does. A pod's buckets that
already hold all its responses (equal to its ``+Inf`` bucket: every bucket above its slowest
response) are left out, and the ``+Inf`` bucket kept: most of the 26 for a service answering in
tens of milliseconds, so the answer is about half as long for the controller to read, for a
little more of Prometheus' time (docs/benchmarks.md, "The buckets equal to ``+Inf`` left
out"). ``canary.core.evidence.parse`` fills them back from the ``+Inf`` bucket.

A custom metric query is written by a Rollout's author and its result lands in the Rollout's
status, which its author can read; so :func:`confine` pins every series selector of it to the
Rollout's namespace (``namespace="<ns>"``) by parsing it (``promql_parser``), rewriting each
selector, and checking the text that will be sent once more. What cannot be confined that way
(``or`` inside a selector, a ``namespace`` matcher for another namespace, nesting deeper than
:data:`MAX_NESTING`, anything that does not parse back) is refused with InvalidSpec.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import timedelta

import promql_parser

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


def _matchers(targets: Sequence[tuple[str, str]]) -> str:
    if not targets:
        raise ValueError("no targets to query")
    namespaces = _alternation(namespace_name(ns) for ns, _ in targets)
    deployments = _alternation(deployment_name(name) for _, name in targets)
    return f'direction="inbound", namespace=~"{namespaces}", deployment=~"{deployments}"'


_PODS = "namespace, deployment, pod"


def totals_query(targets: Sequence[tuple[str, str]]) -> str:
    """The counters query's first part: each pod's requests by classification (success,
    failure)."""
    return _totals(_matchers(targets))


def histogram_query(targets: Sequence[tuple[str, str]]) -> str:
    """The counters query's second part: each pod's latency buckets, less those equal to its
    ``+Inf`` bucket (``canary.core.evidence`` restores them), and the ``+Inf`` bucket."""
    return _histogram(_matchers(targets))


def _totals(selectors: str) -> str:
    return f"sum by ({_PODS}, classification) (response_total{{{selectors}}})"


def _histogram(selectors: str) -> str:
    everything = f"response_latency_ms_bucket{{{selectors}}}"
    total = f'response_latency_ms_bucket{{{selectors}, le="+Inf"}}'
    return (
        f"sum by ({_PODS}, le) ({everything})"
        f" < on ({_PODS}) group_left () sum by ({_PODS}) ({total})"
        f" or sum by ({_PODS}, le) ({total})"
    )


def counters_query(
    targets: Sequence[tuple[str, str]], buckets: Sequence[tuple[str, str]] | None = None
) -> str:
    """The one query for the inbound counters of every ``(namespace, deployment)`` in
    ``targets`` (which must not be empty): :func:`totals_query` of them or
    :func:`histogram_query` of ``buckets`` (those whose latency buckets are wanted; None:
    every target; empty: the totals only)."""
    selectors = _matchers(targets)
    if buckets is None:
        return f"{_totals(selectors)} or {_histogram(selectors)}"
    if not buckets:
        return _totals(selectors)
    return f"{_totals(selectors)} or {_histogram(_matchers(buckets))}"


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
    return confine(_PLACEHOLDER.sub(lambda m: values[m[1]], query), values["namespace"])


MAX_NESTING = 64
"""Brackets a custom query may nest: the parser recurses per level (and crashes the process
far below Python's own limits)."""
_QUERY_PATH = "spec.analysis.metrics"
_QUOTED = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`""")


def _nesting(query: str) -> int:
    deepest = depth = 0
    for char in _QUOTED.sub("", query):
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    return deepest


def _selectors(expr: promql_parser.Expr) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(expr, pre_visit=visit)
    return found


def _parse(query: str) -> promql_parser.Expr:
    if _nesting(query) > MAX_NESTING:
        raise _invalid(_QUERY_PATH, f"nested deeper than {MAX_NESTING} brackets", "simplify it")
    try:
        return promql_parser.parse(query)
    except ValueError as error:
        raise _invalid(_QUERY_PATH, f"not valid PromQL: {str(error)[:200]}", "") from None


def confine(query: str, namespace: str) -> str:
    """``query`` with every series selector limited to ``namespace``. Raises InvalidSpec when
    the query does not parse or cannot be confined safely."""
    namespace = namespace_name(namespace)
    refused: list[str] = []

    def pin(node: promql_parser.Expr) -> promql_parser.Expr | None:
        if not isinstance(node, promql_parser.VectorSelector):
            return None
        if node.matchers.or_matchers:
            refused.append("'or' inside a selector cannot be confined to one namespace")
            return None
        own = [m for m in node.matchers.matchers if m.name == "namespace"]
        if any(m.op != promql_parser.MatchOp.Equal or m.value != namespace for m in own):
            refused.append(f'a query reads only its own namespace: use namespace="{namespace}"')
            return None
        kept = [m for m in node.matchers.matchers if m.name != "namespace"]
        pinned = promql_parser.Matcher(promql_parser.MatchOp.Equal, "namespace", namespace)
        node.matchers = promql_parser.Matchers([*kept, pinned])
        return promql_parser.parse(str(node))

    parsed = _parse(query)
    unsafe = _invalid(
        _QUERY_PATH,
        "cannot be confined to the Rollout's namespace safely",
        "write subqueries with an explicit step ([5m:1m]) and plain label values",
    )
    try:
        rewritten = str(promql_parser.transform(parsed, post_visit=pin))
    except ValueError:
        raise unsafe from None
    if refused:
        raise _invalid(_QUERY_PATH, refused[0], "")
    # Check what will be sent, not what was meant to be.
    try:
        sent = promql_parser.parse(rewritten)
    except ValueError:
        raise unsafe from None
    for selector in _selectors(sent):
        own = [m for m in selector.matchers.matchers if m.name == "namespace"]
        if selector.matchers.or_matchers or [(m.op, m.value) for m in own] != [
            (promql_parser.MatchOp.Equal, namespace)
        ]:
            raise unsafe
    return rewritten


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
