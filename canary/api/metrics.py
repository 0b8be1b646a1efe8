"""The controller's own Prometheus metrics, on a ``prometheus_client`` registry of its own.

The composition root makes one ``ControllerMetrics`` and feeds it: every reconcile's result
(``observe_reconcile``), every Prometheus query (through ``InstrumentedMetrics``, a decorator of
``ports.MetricProvider``), every notification delivery (``observe_delivery``) and every command
given through the API (``commands``). What describes Rollouts *now* (how many per phase, the
weight, step and latest evidence of each active one) is read from the ``RolloutStore`` at
scrape time by ``RolloutCollector``, so a Rollout that finishes or is deleted leaves no series
behind: label sets per Rollout exist only for active Rollouts (bounded cardinality).
``canary.api.app`` serves ``exposition()`` at ``/metrics``.

Only ``canary.api`` imports ``prometheus_client`` (an import-linter contract).
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from canary.core import evidence, history
from canary.errors import CanaryError, MetricsUnavailable
from canary.model.status import TERMINAL_PHASES
from canary.ports import Arms, MetricProvider, RolloutStore

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The media type of ``exposition()``: the text format 0.0.4, which every Prometheus reads
(canary's names need none of 1.0.0's UTF-8)."""

# A release lasts from seconds (a broken canary rolled back at once) to hours (approval gates).
RELEASE_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0)
QUERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = (1, 10, 100, 1_000, 10_000, 100_000)
KUBE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds of one request to the API server (client-go's own are 5 ms to 60 s)."""
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds a Rollout waited past its due time: a verdict late by an analysis interval (15 s
by default) or more is a backlog a person should see."""

__all__ = [
    "CONTENT_TYPE",
    "CacheCollector",
    "ControllerMetrics",
    "InstrumentedMetrics",
    "RolloutCollector",
]

CacheSizes = Callable[[], Mapping[str, tuple[int, int]]]
"""Each cache's kind → (objects held, index keys held), read at a scrape."""


class RolloutCollector(Collector):
    """Gauges computed from the store at each scrape: Rollouts by namespace and phase, and for
    each active Rollout its canary weight, its step and the latest evidence of each check."""

    def __init__(self, store: RolloutStore) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        """The families, read now. A store error is reported by ``canary_store_up 0``."""
        up = GaugeMetricFamily("canary_store_up", "Whether the Rollouts could be read.")
        try:
            rollouts = self._store.list()
        except CanaryError:
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        phases = GaugeMetricFamily(
            "canary_rollouts", "Rollouts by namespace and phase.", labels=["namespace", "phase"]
        )
        for (namespace, phase), count in sorted(
            Tally((r.metadata.namespace, r.status.phase) for r in rollouts).items()
        ):
            phases.add_metric([namespace, phase], float(count))
        yield phases
        per = ["namespace", "rollout", "target"]
        weight = GaugeMetricFamily(
            "canary_rollout_canary_weight_ratio",
            "Share of traffic routed to the canary of an active Rollout (0 to 1).",
            labels=per,
        )
        step = GaugeMetricFamily(
            "canary_rollout_step_index",
            "Index (from 0) of the step an active Rollout is at.",
            labels=per,
        )
        value = GaugeMetricFamily(
            "canary_rollout_check_value",
            "Latest figure of each check of an active Rollout's current step.",
            labels=[*per, "check"],
        )
        limit = GaugeMetricFamily(
            "canary_rollout_check_limit",
            "The limit each check's figure is compared with.",
            labels=[*per, "check"],
        )
        for rollout in rollouts:
            status = rollout.status
            if status.phase in TERMINAL_PHASES:
                continue
            labels = [
                rollout.metadata.namespace,
                rollout.metadata.name,
                rollout.spec.target_ref.name,
            ]
            weight.add_metric(labels, status.canary_weight / 100)
            step.add_metric(labels, float(status.current_step_index))
            current = history.current_step(status)
            for check in current.checks if current is not None else ():
                if check.value is not None:
                    value.add_metric([*labels, check.name], check.value)
                if check.limit is not None:
                    limit.add_metric([*labels, check.name], check.limit)
        yield from (weight, step, value, limit)


class CacheCollector(Collector):
    """The controller's caches at each scrape, by kind: the objects they hold and their index
    keys (what shows that deleted objects leave them: the soak reads these)."""

    def __init__(self, sizes: CacheSizes) -> None:
        self._sizes = sizes

    def collect(self) -> Iterator[Metric]:
        """The two families, read now."""
        objects = GaugeMetricFamily(
            "canary_cache_objects", "Objects held in the controller's caches.", labels=["kind"]
        )
        keys = GaugeMetricFamily(
            "canary_cache_index_keys",
            "Keys of a cache's index (Rollouts: one per target Deployment that has one).",
            labels=["kind"],
        )
        for kind, (held, indexed) in sorted(self._sizes().items()):
            objects.add_metric([kind], held)
            keys.add_metric([kind], indexed)
        yield objects
        yield keys


class ControllerMetrics:
    """Every series the controller exports, on its own registry."""

    def __init__(
        self,
        store: RolloutStore | None = None,
        caches: CacheSizes | None = None,
        queue: Callable[[], int] | None = None,
        asking: Callable[[], int] | None = None,
    ) -> None:
        """``queue``: how many Rollouts are due and not yet taken; ``asking``: how many windows
        wait for their custom metric queries; both read at each scrape."""
        # The *_created samples only double the series count. (Untyped in prometheus_client.)
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)
        GCCollector(registry=reg)
        if store is not None:
            reg.register(RolloutCollector(store))
        if caches is not None:
            reg.register(CacheCollector(caches))
        self.reconciles = Counter("canary_reconcile", "Reconciles run.", registry=reg)
        self.reconcile_errors = Counter(
            "canary_reconcile_errors",
            "Reconciles that ended in an error, by error class.",
            ["error"],
            registry=reg,
        )
        self.reconcile_duration = Histogram(
            "canary_reconcile_duration_seconds", "Time one reconcile took.", registry=reg
        )
        self.outcomes = Counter(
            "canary_rollout_outcomes",
            "Releases finished, by result (promoted, rolled_back, aborted, failed, superseded) "
            "and reason (why it rolled back or failed).",
            ["result", "reason"],
            registry=reg,
        )
        self.release_duration = Histogram(
            "canary_release_duration_seconds",
            "Time from a release's start to its promotion or its rollback, by result.",
            ["result"],
            buckets=RELEASE_BUCKETS,
            registry=reg,
        )
        self.query_duration = Histogram(
            "canary_prometheus_query_duration_seconds",
            "Time a Prometheus query took, by kind (snapshot: the batched counters; value: a "
            "custom metric).",
            ["query"],
            buckets=QUERY_BUCKETS,
            registry=reg,
        )
        self.snapshot_rollouts = Histogram(
            "canary_prometheus_snapshot_rollouts",
            "Rollouts measured by one snapshot query (the measuring tick runs one for all).",
            buckets=SIZE_BUCKETS,
            registry=reg,
        )
        self.snapshot_bucketed = Histogram(
            "canary_prometheus_snapshot_bucketed_rollouts",
            "Rollouts whose latency buckets one snapshot query asked for (a window of theirs "
            "may begin or close on it; the others' requests and failures only).",
            buckets=SIZE_BUCKETS,
            registry=reg,
        )
        self.snapshot_series = Histogram(
            "canary_prometheus_snapshot_pods",
            "Pods (series of counters) one snapshot query answered with.",
            buckets=SIZE_BUCKETS,
            registry=reg,
        )
        self.query_failures = Counter(
            "canary_prometheus_query_failures",
            "Prometheus queries that failed, by kind.",
            ["query"],
            registry=reg,
        )
        self.deliveries = Counter(
            "canary_notification_deliveries",
            "Notifications sent, by type (slack, msteams, webhook) and result (ok, failed).",
            ["type", "result"],
            registry=reg,
        )
        self.deleted = Counter(
            "canary_rollouts_deleted",
            "Finished Rollouts deleted by retention (--keep-finished).",
            registry=reg,
        )
        self.queue_wait = Histogram(
            "canary_workqueue_wait_seconds",
            "Time a Rollout waited past its due time before a worker took it, by work "
            "(failing: an early look or a window the tick found failing, a rollback; verdict: "
            "a window's counts to judge; routine: a requeue or a watch event); counts that "
            "joined a Rollout already waiting are timed from their arrival.",
            ["work"],
            buckets=WAIT_BUCKETS,
            registry=reg,
        )
        self.queue_depth = Gauge(
            "canary_workqueue_depth",
            "Rollouts due for a reconcile that no worker has taken yet.",
            registry=reg,
        )
        if queue is not None:
            self.queue_depth.set_function(queue)
        self.asking = Gauge(
            "canary_custom_queries_waiting",
            "Rollouts' windows waiting for their custom metric queries (or being asked).",
            registry=reg,
        )
        if asking is not None:
            self.asking.set_function(asking)
        request = ["verb", "resource", "subresource"]
        self.kube_requests = Counter(
            "canary_kube_requests",
            "Requests to the Kubernetes API server, by verb, resource, subresource and HTTP "
            "status code (error: no answer), as the API server's apiserver_request_total "
            "labels them.",
            [*request, "code"],
            registry=reg,
        )
        self.kube_request_duration = Histogram(
            "canary_kube_request_duration_seconds",
            "Time from sending a request to the Kubernetes API server to its answer's headers, "
            "by verb, resource and subresource (watches are left out: they stay open).",
            request,
            buckets=KUBE_BUCKETS,
            registry=reg,
        )
        self.kube_throttled = Histogram(
            "canary_kube_rate_limiter_wait_seconds",
            "Time a request to the Kubernetes API server waited for the client-side rate limit "
            "(--kube-qps, --kube-burst) before it was sent.",
            buckets=KUBE_BUCKETS,
            registry=reg,
        )
        self.events_dropped = Counter(
            "canary_events_dropped",
            "Kubernetes Events about Rollouts that were not written, by why (write_failed: the "
            "API server refused or did not answer; stopped: waiting when the controller "
            "stopped).",
            ["why"],
            registry=reg,
        )
        self.events_inline = Counter(
            "canary_events_inline",
            "Kubernetes Events a reconcile wrote itself because 1000 were waiting to be written "
            "(the Event writers are behind the API server).",
            registry=reg,
        )
        self.event_queue = Gauge(
            "canary_event_queue_depth",
            "Kubernetes Events recorded and waiting to be written (outside the reconciles).",
            registry=reg,
        )
        self.commands = Counter(
            "canary_api_commands",
            "Commands given through the HTTP API, by kind.",
            ["kind"],
            registry=reg,
        )

    def observe_reconcile(
        self, seconds: float, error: str | None, finished: history.Finished | None
    ) -> None:
        """Count one reconcile: its duration, its error class, and the release it finished."""
        self.reconciles.inc()
        self.reconcile_duration.observe(seconds)
        if error is not None:
            self.reconcile_errors.labels(error=error).inc()
        if finished is not None:
            self.outcomes.labels(result=finished.result, reason=finished.reason).inc()
            if finished.duration is not None and finished.result in ("promoted", "rolled_back"):
                self.release_duration.labels(result=finished.result).observe(
                    finished.duration.total_seconds()
                )

    def observe_wait(self, seconds: float, work: str) -> None:
        """How late one Rollout was handed to a worker, and what it carried (failing,
        verdict or routine)."""
        self.queue_wait.labels(work=work).observe(seconds)

    def observe_kube_request(
        self, request: tuple[str, str, str], code: str, seconds: float, waited: float
    ) -> None:
        """Count one request to the Kubernetes API server (its verb, resource and subresource):
        its answer, how long it took, and how long the client-side rate limit held it back."""
        self.kube_requests.labels(*request, code).inc()
        if request[0] != "WATCH":
            self.kube_request_duration.labels(*request).observe(seconds)
        self.kube_throttled.observe(waited)

    def observe_delivery(self, type_: str, ok: bool) -> None:
        """Count one notification delivery."""
        self.deliveries.labels(type=type_, result="ok" if ok else "failed").inc()

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


class InstrumentedMetrics:
    """A ``ports.MetricProvider`` that times and counts the queries of the one it wraps."""

    def __init__(self, inner: MetricProvider, metrics: ControllerMetrics) -> None:
        self._inner, self._metrics = inner, metrics

    def snapshot(
        self, targets: Sequence[Arms], buckets: Collection[Arms] | None = None
    ) -> evidence.Snapshot:
        """The wrapped provider's snapshot, timed and sized."""
        started = time.perf_counter()
        try:
            found = self._inner.snapshot(targets, buckets)
            self._metrics.snapshot_rollouts.observe(len(targets))
            self._metrics.snapshot_bucketed.observe(len(targets if buckets is None else buckets))
            self._metrics.snapshot_series.observe(len(found))
            return found
        except MetricsUnavailable:
            self._metrics.query_failures.labels(query="snapshot").inc()
            raise
        finally:
            self._metrics.query_duration.labels(query="snapshot").observe(
                time.perf_counter() - started
            )

    def value(self, query: str) -> float | None:
        """The wrapped provider's value, timed."""
        started = time.perf_counter()
        try:
            return self._inner.value(query)
        except MetricsUnavailable:
            self._metrics.query_failures.labels(query="value").inc()
            raise
        finally:
            self._metrics.query_duration.labels(query="value").observe(
                time.perf_counter() - started
            )
