"""PromQL: the batched counters query, template rendering, and names that try to escape."""

from __future__ import annotations

import math
from datetime import timedelta

import promql_parser
import pytest

from canary.core import promql
from canary.errors import InvalidSpec, MetricsUnavailable

INJECTIONS = [
    'a"}) or vector(1) #',
    'a"} or vector(1)',
    "a|b",
    "a.*",
    "A",
    "a b",
    "a\n",
    "-a",
    "a-",
    "",
    "a{b}",
    "a\\",
    "a'",
    "a`",
]


def test_counters_query_batches_every_rollout() -> None:
    """One query selects every namespace and Deployment, sorted and deduplicated."""
    query = promql.counters_query(
        [("ns2", "b"), ("ns1", "a"), ("ns1", "a-canary"), ("ns2", "b-canary"), ("ns1", "a")]
    )
    selectors = 'direction="inbound", namespace=~"ns1|ns2", deployment=~"a|a-canary|b|b-canary"'
    pods = "namespace, deployment, pod"
    total = f'response_latency_ms_bucket{{{selectors}, le="+Inf"}}'
    assert query == (
        f"sum by ({pods}, classification) (response_total{{{selectors}}})"
        f" or sum by ({pods}, le) (response_latency_ms_bucket{{{selectors}}})"
        f" < on ({pods}) group_left () sum by ({pods}) ({total})"
        f" or sum by ({pods}, le) ({total})"
    )
    assert promql_parser.parse(query) is not None


def test_counters_query_is_its_two_parts() -> None:
    """The counters query is its counters part or its histogram part (``bench.tick_cost``
    times each), each a query of its own."""
    pairs = [("ns1", "a"), ("ns1", "a-canary")]
    totals, histogram = promql.totals_query(pairs), promql.histogram_query(pairs)
    assert promql.counters_query(pairs) == f"{totals} or {histogram}"
    assert totals.startswith("sum by (namespace, deployment, pod, classification) (response_total{")
    assert "response_total" not in histogram
    assert "response_latency_ms_bucket" not in totals
    assert promql_parser.parse(totals) is not None
    assert promql_parser.parse(histogram) is not None
    with pytest.raises(ValueError, match="no targets"):
        promql.histogram_query([])


def test_counters_query_escapes_dots() -> None:
    """A dot in a Deployment name matches only a dot (escaped for RE2 inside a PromQL string)."""
    query = promql.counters_query([("ns", "web.v2")])
    assert 'deployment=~"web\\\\.v2"' in query


def test_counters_query_needs_targets() -> None:
    """Asking for no targets is a programming error, not an empty selector."""
    with pytest.raises(ValueError, match="no targets"):
        promql.counters_query([])


@pytest.mark.parametrize("name", INJECTIONS)
def test_names_that_are_not_kubernetes_names_are_rejected(name: str) -> None:
    """Anything but a DNS-1123 name is refused before it reaches a query."""
    with pytest.raises(InvalidSpec):
        promql.counters_query([("ns", name)])
    with pytest.raises(InvalidSpec):
        promql.counters_query([(name, "web")])
    with pytest.raises(InvalidSpec):
        promql.render("up", namespace="ns", target=name, canary="c", interval=timedelta(1))
    with pytest.raises(InvalidSpec):
        promql.render("up", namespace="ns", target="t", canary=name, interval=timedelta(1))
    with pytest.raises(InvalidSpec):
        promql.render("up", namespace=name, target="t", canary="c", interval=timedelta(1))


def test_name_limits() -> None:
    """Namespaces are labels (63 characters, no dots); Deployments subdomains (253, dots)."""
    assert promql.namespace_name("a" * 63) == "a" * 63
    with pytest.raises(InvalidSpec):
        promql.namespace_name("a" * 64)
    assert promql.deployment_name("a.b-1." + "c" * 200) == "a.b-1." + "c" * 200
    with pytest.raises(InvalidSpec):
        promql.namespace_name("a.b")
    with pytest.raises(InvalidSpec):
        promql.deployment_name("a" * 254)
    with pytest.raises(InvalidSpec):
        promql.deployment_name("a..b")


def test_render_fills_every_placeholder() -> None:
    """Each placeholder, with or without inner spaces, is replaced by its checked value."""
    query = (
        'sum(rate(x{namespace="{{namespace}}", deployment=~"{{ target }}|{{canary}}"}'
        "[{{interval}}]))"
    )
    rendered = promql.render(
        query, namespace="shop", target="web", canary="web-canary", interval=timedelta(seconds=30)
    )
    # The parser that confines the query to its namespace writes it back in canonical form.
    assert rendered == 'sum(rate(x{deployment=~"web|web-canary",namespace="shop"}[30s]))'


@pytest.mark.parametrize(
    ("interval", "text"),
    [
        (timedelta(seconds=15), "15s"),
        (timedelta(minutes=2), "120s"),
        (timedelta(milliseconds=1500), "1500ms"),
    ],
)
def test_interval_becomes_a_promql_duration(interval: timedelta, text: str) -> None:
    """Whole seconds print as seconds, anything finer as milliseconds."""
    assert promql.duration(interval) == text


@pytest.mark.parametrize("interval", [timedelta(0), timedelta(microseconds=10), timedelta(-1)])
def test_interval_must_be_positive(interval: timedelta) -> None:
    """An interval shorter than a millisecond cannot be a PromQL range."""
    with pytest.raises(InvalidSpec, match="interval"):
        promql.duration(interval)


def test_unknown_placeholders_are_rejected() -> None:
    """A misspelt placeholder is reported by name rather than sent to Prometheus."""
    with pytest.raises(InvalidSpec, match=r"\{\{namspace\}\}"):
        promql.render(
            "x{namespace='{{namspace}}'}",
            namespace="ns",
            target="t",
            canary="c",
            interval=timedelta(seconds=1),
        )


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ([], None),
        ([1700000000.0, "2.5"], 2.5),
        ([{"metric": {}, "value": [1700000000.0, "99.5"]}], 99.5),
        ([{"metric": {}, "value": [1700000000.0, "NaN"]}], None),
        ([1700000000.0, "+Inf"], math.inf),
    ],
)
def test_single_value(result: object, expected: float | None) -> None:
    """A scalar or a one-sample vector is a number; empty or NaN is no number."""
    assert promql.single_value(result) == expected


@pytest.mark.parametrize(
    "result",
    [
        [{"value": [1, "1"]}, {"value": [1, "2"]}],
        [1700000000.0, "text"],
        [1700000000.0, None],
        [{"metric": {}}],
        "nonsense",
        [1, 2, 3],
    ],
)
def test_answers_that_are_not_one_number_are_unavailable(result: object) -> None:
    """Several series, text or a malformed answer is a metrics problem, never a breach."""
    with pytest.raises(MetricsUnavailable):
        promql.single_value(result)
