"""/metrics: the controller's series in the Prometheus text format, parsed with
prometheus_client's own parser; per-Rollout label sets exist only while a Rollout is active."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from canary.api.metrics import ControllerMetrics, InstrumentedMetrics
from canary.core import evidence, history
from canary.errors import MetricsUnavailable
from canary.model.status import RolloutStatus
from canary.ports import Arms, Ref
from tests.api.conftest import Served, call
from tests.fake_store import make

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """Every sample of /metrics by (name, labels), as prometheus_client parses it."""
    reply = call(url + "/metrics")
    assert reply.status == 200
    assert reply.content_type.startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(reply.body)
        for s in family.samples
    }


def labels(**pairs: str) -> frozenset[tuple[str, str]]:
    return frozenset(pairs.items())


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def test_rollouts_by_phase_and_the_active_ones_weight_and_step(served: Served) -> None:
    """canary_rollouts counts by namespace and phase; weight and step only for active ones."""
    samples = scrape(served.url)
    assert samples["canary_rollouts", labels(namespace="test", phase="WaitingApproval")] == 1
    assert samples["canary_rollouts", labels(namespace="other", phase="Progressing")] == 1
    web2 = labels(namespace="test", rollout="web-2", target="podinfo")
    assert samples["canary_rollout_canary_weight_ratio", web2] == 0.2
    assert samples["canary_rollout_step_index", web2] == 0
    finished = labels(namespace="test", rollout="web-1", target="podinfo")
    assert ("canary_rollout_canary_weight_ratio", finished) not in samples
    assert samples["canary_store_up", labels()] == 1
    assert {"process_cpu_seconds_total", "python_info"} <= names(samples)


def test_a_finished_or_deleted_rollout_leaves_no_series(served: Served) -> None:
    """When web-2 finishes and api-7 is deleted, their per-Rollout series disappear."""
    served.store.rollouts[Ref("test", "web-2")] = make("web-2", phase="RolledBack")
    del served.store.rollouts[Ref("other", "api-7")]
    samples = scrape(served.url)
    per_rollout = {
        "canary_rollout_canary_weight_ratio",
        "canary_rollout_step_index",
        "canary_rollout_check_value",
        "canary_rollout_check_limit",
    }
    assert not per_rollout & names(samples)
    assert samples["canary_rollouts", labels(namespace="test", phase="RolledBack")] == 1


def test_the_judges_latest_evidence_is_exported_per_check(served: Served) -> None:
    """Each check of the current step exports its figure and its limit."""
    status = RolloutStatus.model_validate(
        {
            "phase": "Progressing",
            "canaryWeight": 10,
            "currentStepIndex": 1,
            "steps": [
                {"index": 0, "startedAt": "2026-11-21T08:00:00Z", "verdict": "Passed"},
                {
                    "index": 1,
                    "startedAt": "2026-11-21T08:01:00Z",
                    "checks": [
                        {"name": "success-rate", "verdict": "Pass", "value": 99.5, "limit": 99},
                        {
                            "name": "errors-evalue",
                            "verdict": "Inconclusive",
                            "value": 3.2,
                            "limit": 20,
                        },
                        {"name": "no-figure", "verdict": "NoData"},
                    ],
                },
            ],
        }
    )
    ref = Ref("test", "web-2")
    served.store.rollouts[ref] = served.store.rollouts[ref].model_copy(update={"status": status})
    samples = scrape(served.url)
    web2 = {"namespace": "test", "rollout": "web-2", "target": "podinfo"}
    assert samples["canary_rollout_step_index", labels(**web2)] == 1
    assert samples["canary_rollout_check_value", labels(**web2, check="errors-evalue")] == 3.2
    assert samples["canary_rollout_check_limit", labels(**web2, check="errors-evalue")] == 20
    assert samples["canary_rollout_check_value", labels(**web2, check="success-rate")] == 99.5
    assert ("canary_rollout_check_value", labels(**web2, check="no-figure")) not in samples


def test_reconciles_outcomes_and_durations_are_counted(served: Served) -> None:
    """Reconciles, their errors and duration; outcomes by result and reason; release times."""
    metrics = served.api.metrics
    metrics.observe_reconcile(0.02, None, None)
    metrics.observe_reconcile(0.5, "Conflict", None)
    metrics.observe_reconcile(
        0.01, None, history.Finished("rolled_back", "analysis", timedelta(seconds=90))
    )
    metrics.observe_reconcile(0.01, None, history.Finished("aborted", "aborted_by_person", None))
    samples = scrape(served.url)
    assert samples["canary_reconcile_total", labels()] == 4
    assert samples["canary_reconcile_errors_total", labels(error="Conflict")] == 1
    assert samples["canary_reconcile_duration_seconds_count", labels()] == 4
    assert samples["canary_reconcile_duration_seconds_sum", labels()] == pytest.approx(0.54)
    outcome = labels(result="rolled_back", reason="analysis")
    assert samples["canary_rollout_outcomes_total", outcome] == 1
    assert (
        samples[
            "canary_rollout_outcomes_total", labels(result="aborted", reason="aborted_by_person")
        ]
        == 1
    )
    rolled = labels(result="rolled_back", le="120.0")
    assert samples["canary_release_duration_seconds_bucket", rolled] == 1
    assert (
        samples["canary_release_duration_seconds_bucket", labels(result="rolled_back", le="60.0")]
        == 0
    )
    assert not any(name.endswith("_created") for name in names(samples))


class Down:
    """A MetricProvider whose Prometheus is unreachable."""

    def snapshot(
        self, targets: Sequence[Arms], buckets: Collection[Arms] | None = None
    ) -> evidence.Snapshot:
        raise MetricsUnavailable("connection refused")

    def value(self, query: str) -> float | None:
        raise MetricsUnavailable("connection refused")


class Up:
    """A MetricProvider that answers at once."""

    def snapshot(
        self, targets: Sequence[Arms], buckets: Collection[Arms] | None = None
    ) -> evidence.Snapshot:
        return {}

    def value(self, query: str) -> float | None:
        return 1.0


def test_prometheus_queries_and_notifications_are_timed_and_counted(served: Served) -> None:
    """Each query is timed by kind, each failure counted; deliveries counted by result."""
    metrics: ControllerMetrics = served.api.metrics
    assert InstrumentedMetrics(Up(), metrics).value("up") == 1.0
    assert InstrumentedMetrics(Up(), metrics).snapshot([]) == {}
    web, api = Arms("shop", "web", "web-canary"), Arms("shop", "api", "api-canary")
    assert InstrumentedMetrics(Up(), metrics).snapshot([web, api], [api]) == {}
    with pytest.raises(MetricsUnavailable):
        InstrumentedMetrics(Down(), metrics).snapshot([])
    with pytest.raises(MetricsUnavailable):
        InstrumentedMetrics(Down(), metrics).value("up")
    metrics.observe_delivery("slack", True)
    metrics.observe_delivery("webhook", False)
    samples = scrape(served.url)
    assert samples["canary_prometheus_query_duration_seconds_count", labels(query="snapshot")] == 3
    assert samples["canary_prometheus_query_duration_seconds_count", labels(query="value")] == 2
    assert samples["canary_prometheus_query_failures_total", labels(query="snapshot")] == 1
    assert samples["canary_prometheus_query_failures_total", labels(query="value")] == 1
    # Sized only when answered: one snapshot of no Rollouts and no pods.
    assert samples["canary_prometheus_snapshot_rollouts_count", labels()] == 2
    assert samples["canary_prometheus_snapshot_rollouts_sum", labels()] == 2
    assert samples["canary_prometheus_snapshot_bucketed_rollouts_sum", labels()] == 1
    assert samples["canary_prometheus_snapshot_pods_sum", labels()] == 0
    assert samples["canary_notification_deliveries_total", labels(type="slack", result="ok")] == 1
    assert (
        samples["canary_notification_deliveries_total", labels(type="webhook", result="failed")]
        == 1
    )
