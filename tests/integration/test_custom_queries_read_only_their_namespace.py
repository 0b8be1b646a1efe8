"""A custom PromQL check, run against the real Prometheus, sees only the series of its
Rollout's namespace, however it is written; a query that names another namespace is refused."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest

from canary.adapters.metrics.prometheus import PrometheusMetrics
from canary.core import promql
from canary.core.evidence import PodKey
from canary.errors import InvalidSpec
from tests.integration.conftest import Cluster
from tests.integration.proxies import Pod, eventually, proxies

__all__ = ["proxies"]  # a fixture

pytestmark = pytest.mark.integration


def _render(query: str, namespace: str) -> str:
    return promql.render(
        query,
        namespace=namespace,
        target="web",
        canary="web-canary",
        interval=timedelta(seconds=30),
    )


def test_custom_queries_are_confined_to_the_rollouts_namespace(
    cluster: Cluster, proxies: Callable[[dict[PodKey, Pod]], None]
) -> None:
    """Another tenant's counters are scraped too, yet selectors without a namespace, by
    __name__ regex, or inside a subquery count only the Rollout's own."""
    own, other = f"own-{uuid.uuid4().hex[:6]}", f"other-{uuid.uuid4().hex[:6]}"
    proxies(
        {
            PodKey(own, "web", "web-1"): Pod(99, 1),
            PodKey(own, "web", "web-2"): Pod(50, 0),
            PodKey(other, "web", "web-1"): Pod(1000, 0),
        }
    )
    metrics = PrometheusMetrics(cluster.prometheus_url)
    everyone = f'sum(response_total{{namespace=~"{own}|{other}", direction="inbound"}})'
    eventually(lambda: metrics.value(everyone) == 1150.0)
    for query in (
        'sum(response_total{direction="inbound"})',
        'sum({__name__="response_total", direction="inbound"})',
        'sum(max_over_time(response_total{direction="inbound"}[1m:1s]))',
        'sum(response_total{namespace="{{namespace}}", direction="inbound"})',
    ):
        # Waited for, not read once: a subquery's steps are aligned to whole seconds, so a
        # sample scraped within the last second is not in it yet. Unconfined, every one of
        # these would read 1150 (the other tenant's 1000 included) and never 150.
        rendered = _render(query, own)
        eventually(lambda q=rendered: metrics.value(q) == 150.0, seconds=20)  # type: ignore[misc]
        assert metrics.value(rendered) == 150.0, query
    with pytest.raises(InvalidSpec, match="reads only its own namespace"):
        _render(f'sum(response_total{{namespace="{other}"}})', own)
    with pytest.raises(InvalidSpec, match="reads only its own namespace"):
        _render(f'sum(response_total{{namespace=~"{own}|{other}"}})', own)
    metrics.close()
