"""The MetricProvider contract, run against FakeMetrics and PrometheusMetrics on a real
Prometheus scraping pretend proxies, so that runtime tests on the fake mean something."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace

import pytest

from canary.core.evidence import PodCounters, PodKey
from canary.errors import InvalidSpec, MetricsUnavailable
from canary.ports import Arms, MetricProvider
from tests.fakes import FakeMetrics
from tests.integration.proxies import Pod, eventually, proxies

__all__ = ["proxies"]  # a fixture


@dataclass
class Subject:
    """A provider under contract, how to give its pods counters, and how to take it down."""

    metrics: MetricProvider
    serve: Callable[[dict[PodKey, Pod]], None]
    outage: Callable[[], AbstractContextManager[None]]


def _fake(request: pytest.FixtureRequest) -> Subject:
    fake = FakeMetrics()

    def serve(pods: dict[PodKey, Pod]) -> None:
        fake.pods.update({key: pod.expected() for key, pod in pods.items()})

    @contextmanager
    def outage() -> Iterator[None]:
        fake.available = False
        try:
            yield
        finally:
            fake.available = True

    return Subject(fake, serve, outage)


def _prometheus(request: pytest.FixtureRequest) -> Subject:
    from canary.adapters.metrics.prometheus import PrometheusMetrics

    cluster = request.getfixturevalue("cluster")
    metrics = PrometheusMetrics(cluster.prometheus_url, timeout=5)
    request.addfinalizer(metrics.close)

    @contextmanager
    def outage() -> Iterator[None]:
        cluster.stop_prometheus()
        try:
            yield
        finally:
            cluster.start_prometheus()

    return Subject(metrics, request.getfixturevalue("proxies"), outage)


@pytest.fixture(
    params=[
        pytest.param(_fake, id="fake"),
        pytest.param(_prometheus, id="prometheus", marks=pytest.mark.integration),
    ]
)
def subject(request: pytest.FixtureRequest) -> Subject:
    """Each metric provider under contract."""
    make: Callable[[pytest.FixtureRequest], Subject] = request.param
    return make(request)


def _ns() -> str:
    return f"m-{uuid.uuid4().hex[:8]}"


def test_no_targets_is_an_empty_snapshot(subject: Subject) -> None:
    """With no active rollout there is nothing to read."""
    assert subject.metrics.snapshot([]) == {}


def test_snapshot_holds_exactly_the_arms_asked_for(subject: Subject) -> None:
    """Every pod of both arms comes back with its cumulative counters; other pods do not."""
    ns = _ns()
    pods = {
        PodKey(ns, "web", "web-1"): Pod(10, 1),
        PodKey(ns, "web-canary", "web-canary-1"): Pod(4, 0),
        PodKey(ns, "other", "other-1"): Pod(5, 5),
    }
    subject.serve(pods)
    arms = [Arms(ns, "web", "web-canary")]
    wanted: dict[PodKey, PodCounters] = {
        key: pod.expected() for key, pod in pods.items() if key.deployment != "other"
    }
    eventually(lambda: dict(subject.metrics.snapshot(arms)) == wanted)


def test_buckets_come_for_the_arms_asked_for_them_only(subject: Subject) -> None:
    """Two Rollouts' arms asked for, the buckets of one: its pods come with their latency
    buckets, the other's with their requests and failures and no buckets."""
    ns = _ns()
    pods = {
        PodKey(ns, "web", "web-1"): Pod(10, 1),
        PodKey(ns, "web-canary", "web-canary-1"): Pod(4, 0),
        PodKey(ns, "api", "api-1"): Pod(7, 2),
        PodKey(ns, "api-canary", "api-canary-1"): Pod(3, 1),
    }
    subject.serve(pods)
    web, api = Arms(ns, "web", "web-canary"), Arms(ns, "api", "api-canary")
    wanted: dict[PodKey, PodCounters] = {
        key: pod.expected()
        if key.deployment.startswith("web")
        else replace(pod.expected(), buckets=())
        for key, pod in pods.items()
    }
    assert all(c.buckets for k, c in wanted.items() if k.deployment.startswith("web"))
    eventually(lambda: dict(subject.metrics.snapshot([web, api], [web])) == wanted)
    assert all(not c.buckets for c in subject.metrics.snapshot([web, api], []).values())


def test_a_name_that_is_not_a_kubernetes_name_is_invalid(subject: Subject) -> None:
    """Names that could change the query are refused before anything is asked."""
    with pytest.raises(InvalidSpec):
        subject.metrics.snapshot([Arms(_ns(), 'web"} or vector(1) #', "web-canary")])


def test_a_query_without_series_has_no_value(subject: Subject) -> None:
    """A custom query that matches nothing is None, not zero."""
    assert subject.metrics.value(f'sum(response_total{{namespace="{_ns()}"}})') is None


def test_an_outage_is_metrics_unavailable(subject: Subject) -> None:
    """While Prometheus is down both methods raise MetricsUnavailable."""
    with subject.outage():
        with pytest.raises(MetricsUnavailable):
            subject.metrics.snapshot([Arms(_ns(), "web", "web-canary")])
        with pytest.raises(MetricsUnavailable):
            subject.metrics.value("vector(1)")
