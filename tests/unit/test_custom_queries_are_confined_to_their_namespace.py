"""Every series selector of a custom query is pinned to the Rollout's namespace; what cannot be
pinned safely is refused with the field path, in the controller's render and in `canary lint`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from canary.core import lint, promql
from canary.errors import InvalidSpec


def _render(query: str) -> str:
    return promql.render(
        query, namespace="shop", target="web", canary="web-canary", interval=timedelta(seconds=30)
    )


@pytest.mark.parametrize(
    ("query", "sent"),
    [
        ("sum(up)", 'sum(up{namespace="shop"})'),
        ('{__name__=~".+"}', '{__name__=~".+",namespace="shop"}'),
        (
            'sum(rate(x{namespace="{{namespace}}"}[{{interval}}])) / sum(y offset 1m)',
            'sum(rate(x{namespace="shop"}[30s])) / sum(y{namespace="shop"} offset 1m)',
        ),
        (
            "max_over_time(sum(rate(z[1m]))[5m:1m])",
            'max_over_time(sum(rate(z{namespace="shop"}[1m]))[5m:1m])',
        ),
        (
            'histogram_quantile(0.99, sum by (le) (rate(b{deployment="{{canary}}"}[1m])))',
            'histogram_quantile(0.99, sum by (le)(rate(b{deployment="web-canary",'
            'namespace="shop"}[1m])))',
        ),
        (
            'label_replace(up, "namespace", "x", "", "")',
            'label_replace(up{namespace="shop"}, "namespace", "x", "", "")',
        ),
        ("vector(1) * 42", "vector(1) * 42"),
    ],
)
def test_every_selector_is_pinned(query: str, sent: str) -> None:
    """Selectors with no namespace, a name regex, in subqueries or offsets all get one."""
    assert _render(query) == sent


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('sum(up{namespace="payments"})', 'use namespace="shop"'),
        ('sum(up{namespace=~"shop|payments"})', 'use namespace="shop"'),
        ('sum(up{namespace!="shop"})', 'use namespace="shop"'),
        ('up{job="a" or job="b"}', "'or' inside a selector"),
        ("max_over_time(sum(rate(z[1m]))[5m:])", "cannot be confined"),
        ("(" * 65 + "up" + ")" * 65, "nested deeper than 64"),
        ("(" * 100_000 + "up" + ")" * 100_000, "nested deeper than 64"),
        ("sum(", "not valid PromQL"),
        ("rate(up)", "not valid PromQL"),
    ],
)
def test_what_cannot_be_pinned_is_refused(query: str, message: str) -> None:
    """Other namespaces, alternatives inside a selector, deep nesting (which would crash the
    parser's process) and invalid PromQL are InvalidSpec, never sent."""
    with pytest.raises(InvalidSpec, match=message) as refused:
        _render(query)
    assert refused.value.problems[0].path == "spec.analysis.metrics"


def test_lint_reports_an_unconfinable_query_at_its_field() -> None:
    """`canary lint` runs the same check and names the metric's query field."""
    document: dict[str, Any] = {
        "apiVersion": "canary.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "r", "namespace": "shop"},
        "spec": {
            "targetRef": {"name": "web"},
            "service": {"name": "web", "port": 80},
            "release": {"images": {"web": "web:2"}},
            "analysis": {
                "metrics": [
                    {"name": "ok", "query": "sum(up)", "min": 1},
                    {"name": "peek", "query": 'sum(up{namespace="payments"})', "min": 1},
                ]
            },
        },
    }
    (finding,) = lint.check([document])
    assert finding.problem.path == "spec.analysis.metrics[1].query"
    assert 'use namespace="shop"' in finding.problem.message


@pytest.mark.parametrize(
    "query",
    [
        # The pinned selector prints its backslash unescaped, so it no longer parses.
        'up{path="\\\\"}',
        # The parser prints this nested subquery as text it cannot parse back.
        "rate(x[5m:])[10m:]",
        # Printed unescaped, the string closes early and smuggles in another namespace's series.
        'label_replace(up, "d", "\\", \\"a\\", \\"\\") or up{namespace=\\"payments\\"} '
        'or label_replace(up, \\"d\\", \\"", "a", "")',
    ],
)
def test_a_query_whose_rewrite_does_not_read_back_pinned_is_refused(query: str) -> None:
    """A rewrite that does not parse back, or parses back with a selector outside the namespace,
    is refused rather than sent."""
    with pytest.raises(InvalidSpec, match="cannot be confined") as refused:
        _render(query)
    assert refused.value.problems[0].path == "spec.analysis.metrics"
