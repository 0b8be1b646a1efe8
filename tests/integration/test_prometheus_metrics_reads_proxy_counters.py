"""PrometheusMetrics against the real Prometheus, scraping proxies that serve Linkerd's format.

The proxies are ``tests.integration.proxies``: a loopback server in the Linkerd proxies' format,
listed for Prometheus with the target labels linkerd-viz's relabelling gives real proxies.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable

import pytest
import requests

from canary.adapters.metrics.prometheus import PrometheusMetrics
from canary.core import promql
from canary.core.evidence import PodCounters, PodKey
from canary.errors import MetricsUnavailable
from canary.ports import Arms
from tests.integration.conftest import Cluster
from tests.integration.proxies import Pod, eventually, proxies

__all__ = ["proxies"]  # a fixture

pytestmark = pytest.mark.integration


def test_snapshot_reads_every_rollouts_counters_in_one_query(
    cluster: Cluster, proxies: Callable[[dict[PodKey, Pod]], None]
) -> None:
    """Both arms of two rollouts in two namespaces come back per pod, exactly; pods of names
    not asked for (another Deployment, or a name asked for only in the other namespace) do not."""
    ns1, ns2 = f"a-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"
    pods = {
        PodKey(ns1, "web", "web-1"): Pod(90, 0),
        PodKey(ns1, "web", "web-2"): Pod(80, 2),
        PodKey(ns1, "web-canary", "web-canary-1"): Pod(15, 5),
        PodKey(ns2, "api", "api-1"): Pod(40, 1),
        PodKey(ns2, "api-canary", "api-canary-1"): Pod(3, 0),
        PodKey(ns1, "db", "db-1"): Pod(7, 7),
        PodKey(ns2, "web", "web-9"): Pod(9, 9),
    }
    proxies(pods)
    metrics = PrometheusMetrics(cluster.prometheus_url)
    arms = [Arms(ns1, "web", "web-canary"), Arms(ns2, "api", "api-canary")]
    wanted = {k: p.expected() for k, p in pods.items() if k.deployment != "db" and k.pod != "web-9"}
    snapshots: list[dict[PodKey, PodCounters]] = []

    def scraped() -> bool:
        snapshots.append(dict(metrics.snapshot(arms)))
        return snapshots[-1] == wanted

    eventually(scraped)
    metrics.close()
    # Prometheus left out each pod's buckets equal to its +Inf bucket: web-1 answered all 90 in
    # 10 ms, so of its 26 only the five below 10 ms (0) and +Inf came; web-2's 80 in 10 ms and 2
    # in 50 ms add 10–40 ms (80 of 82).
    pairs = [(ns1, "web"), (ns1, "web-canary"), (ns2, "api"), (ns2, "api-canary")]
    at = time.time()
    whole = _answer(cluster, promql.counters_query(pairs), at)
    bounds: dict[str, list[float]] = {}
    for labels in map(dict, whole):
        if "le" in labels:
            bounds.setdefault(labels["pod"], []).append(float(labels["le"]))
    assert sorted(bounds["web-1"]) == [1, 2, 3, 4, 5, math.inf]
    assert sorted(bounds["web-2"]) == [1, 2, 3, 4, 5, 10, 20, 30, 40, math.inf]
    # Its two parts, asked for on their own at the same time (bench.tick_cost times each), are
    # the whole answer between them: the counters from one, the buckets from the other.
    totals = _answer(cluster, promql.totals_query(pairs), at)
    histogram = _answer(cluster, promql.histogram_query(pairs), at)
    assert {k: v for k, v in whole.items() if "classification" in dict(k)} == totals != {}
    assert {k: v for k, v in whole.items() if "le" in dict(k)} == histogram != {}
    assert len(whole) == len(totals) + len(histogram)


def _answer(cluster: Cluster, query: str, at: float) -> dict[tuple[tuple[str, str], ...], str]:
    """An instant query's answer at ``at``: each series' labels and value."""
    reply = requests.post(
        f"{cluster.prometheus_url}/api/v1/query", data={"query": query, "time": at}, timeout=30
    )
    reply.raise_for_status()
    return {
        tuple(sorted(sample["metric"].items())): sample["value"][1]
        for sample in reply.json()["data"]["result"]
    }


def test_value_answers_custom_queries(
    cluster: Cluster, proxies: Callable[[dict[PodKey, Pod]], None]
) -> None:
    """A one-number query is that number; nothing or NaN is None; several series or bad PromQL
    are MetricsUnavailable."""
    ns = f"v-{uuid.uuid4().hex[:6]}"
    proxies({PodKey(ns, "web", "web-1"): Pod(99, 1), PodKey(ns, "web", "web-2"): Pod(50, 0)})
    metrics = PrometheusMetrics(cluster.prometheus_url)
    total = f'sum(response_total{{namespace="{ns}", direction="inbound"}})'
    eventually(lambda: metrics.value(total) == 150.0)
    assert metrics.value("vector(1) * 42") == 42.0
    assert metrics.value("scalar(vector(2.5))") == 2.5
    assert metrics.value(f'response_total{{namespace="{ns}-none"}}') is None
    assert metrics.value("0 / 0") is None
    with pytest.raises(MetricsUnavailable, match="2 series"):
        metrics.value(f'sum by (pod) (response_total{{namespace="{ns}"}})')
    with pytest.raises(MetricsUnavailable, match="parse error"):
        metrics.value("sum(")
    metrics.close()


def test_a_stopped_prometheus_is_unavailable_then_answers_again(cluster: Cluster) -> None:
    """While Prometheus is down both methods raise MetricsUnavailable quickly; once it is back
    the same adapter answers."""
    metrics = PrometheusMetrics(cluster.prometheus_url, timeout=5)
    arms = [Arms(f"s-{uuid.uuid4().hex[:6]}", "web", "web-canary")]
    cluster.stop_prometheus()
    try:
        started = time.monotonic()
        with pytest.raises(MetricsUnavailable, match="cannot reach Prometheus"):
            metrics.snapshot(arms)
        with pytest.raises(MetricsUnavailable, match="cannot reach Prometheus"):
            metrics.value("vector(1)")
        assert time.monotonic() - started < 10
    finally:
        cluster.start_prometheus()
    assert metrics.value("vector(1)") == 1.0
    assert metrics.snapshot(arms) == {}
    metrics.close()


def test_prometheus_takes_the_evaluation_timeout_it_is_sent(cluster: Cluster) -> None:
    """Both queries carry Prometheus' ``timeout`` parameter (a fractional number of seconds
    here: 2.250, 90% of 2.5 s); Prometheus answers 400 "invalid parameter" for one it cannot
    parse, so these answers show it took it."""
    metrics = PrometheusMetrics(cluster.prometheus_url, timeout=2.5)
    assert metrics.value("vector(1)") == 1.0
    assert metrics.snapshot([Arms(f"t-{uuid.uuid4().hex[:6]}", "web", "web-canary")]) == {}
    metrics.close()
