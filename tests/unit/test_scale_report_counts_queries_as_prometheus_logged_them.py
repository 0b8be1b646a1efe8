"""The scale benchmark counts the controller's counters queries in Prometheus' own query log
(what Prometheus ran, not what the controller thinks it sent), and reads their timings there.

The lines are in the layout Prometheus 2.42 writes (``params``, ``stats.timings``); the real
log is read by tests/integration/test_scale_keeps_reads_cached_and_queries_batched.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import scale


def _line(query: str, total: float) -> str:
    timings = {
        "evalTotalTime": total * 0.9,
        "resultSortTime": 0,
        "queryPreparationTime": total * 0.05,
        "innerEvalTime": total * 0.8,
        "execQueueTime": total * 0.05,
        "execTotalTime": total,
    }
    entry = {
        "httpRequest": {"clientIP": "127.0.0.1", "method": "POST", "path": "/api/v1/query"},
        "params": {"query": query, "step": 0},
        "stats": {"timings": timings, "samples": {"totalQueryableSamples": 0}},
        "ts": "2026-12-03T11:26:31.358Z",
    }
    return json.dumps(entry) + "\n"


def _counters(namespace: str) -> str:
    return (
        f'sum by (namespace, deployment, pod, classification) (response_total{{namespace=~"'
        f'{namespace}"}}) or sum by (namespace, deployment, pod, le) '
        f'(response_latency_ms_bucket{{namespace=~"{namespace}"}})'
    )


def test_only_this_runs_counters_queries_after_the_offset_count(tmp_path: Path) -> None:
    """Lines before the round's offset, other namespaces' queries, the harness's own looks and
    a line still being written are not counted; the timings are Prometheus'."""
    log = tmp_path / "queries.log"
    log.write_text(_line(_counters("scale-10-1"), 9.0))
    offset = scale.query_log_size(str(log))
    with log.open("a") as out:
        out.write(_line(_counters("scale-10-1"), 2.0))
        out.write(_line(_counters("scale-10-2"), 5.0))
        out.write(_line('sum by (deployment) (response_total{namespace="scale-10-1"}) > 0', 1.0))
        out.write(_line(_counters("scale-10-1"), 4.0))
        out.write(_line(_counters("scale-10-1"), 3.0)[:40])
    found = scale.counters_queries(str(log), offset, "scale-10-1")
    assert [t["execTotalTime"] for t in found or []] == [2.0, 4.0]

    report = scale.Report(10, snapshots=2, query_seconds=7.0, prometheus_snapshots=found)
    account = scale.prometheus_account(report)
    assert "Prometheus logged 2 counters queries" in account
    assert "the controller counted 2 answered" in account
    assert "total 3.000 / 4.000" in account
    assert "waited 3.500 s" in account


def test_without_a_query_log_nothing_is_counted(tmp_path: Path) -> None:
    """No log configured, or none written yet: None, and the account says so."""
    missing = str(tmp_path / "none.log")
    assert scale.query_log_size(missing) == 0
    assert scale.query_log_size(None) == 0
    assert scale.counters_queries(missing, 0, "ns") is None
    assert scale.counters_queries(None, 0, "ns") is None
    assert "none" in scale.prometheus_account(scale.Report(10))
