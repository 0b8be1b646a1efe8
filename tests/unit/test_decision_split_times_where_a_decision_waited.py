"""bench.decision_split splits a bad canary's step, from its start to the tick finding it
failing, with Prometheus' failure samples and query log: the failures scraped before the
Rollout's baseline (never counted), when Prometheus held the failures an early look counted,
the wait for the counters query that found them, its execution, and the tick's processing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bench import decision_split as ds
from bench import scale

START = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
T = START.timestamp()


def _logged(at: float, took: float, deployments: str, namespace: str = "ns") -> str:
    query = (
        f'sum by (namespace, deployment, pod, classification) (response_total{{direction="inbound",'
        f' namespace=~"{namespace}", deployment=~"{deployments}"}}) or sum by (namespace, '
        f"deployment, pod, le) (response_latency_ms_bucket{{...}})"
    )

    def stamp(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")

    return json.dumps({"params": {"end": stamp(at), "query": query}, "ts": stamp(at + took)})


def test_counters_queries_are_read_from_prometheus_query_log() -> None:
    lines = [
        _logged(T + 10, 0.5, "app-1|app-1-canary"),
        '{"params": {"query": "up"}, "ts": "2026-12-04T10:00:00Z"}',  # not a counters query
        _logged(T + 5, 0.25, "app-2|app-2-canary"),
        _logged(T + 7, 0.25, "app-1|app-1-canary", namespace="other"),
        '{"params": {"end": "2026-12-04T1',  # still being written
    ]
    assert ds.evaluations(lines, "ns") == [
        ds.Evaluation(T + 5, T + 5.25, frozenset({"app-2", "app-2-canary"})),
        ds.Evaluation(T + 10, T + 10.5, frozenset({"app-1", "app-1-canary"})),
    ]


def test_failures_are_summed_over_series_from_the_steps_start() -> None:
    """A series that existed at the start counts from its value then; one born after it (a
    new pod, a new status code) from 0; samples before the start are not counted."""
    old = [(T - 10, 4.0), (T + 10, 6.0), (T + 20, 9.0)]
    born = [(T + 15, 2.0), (T + 25, 3.0)]
    assert ds.failures([old, born], T) == [
        (T + 10, 2.0),
        (T + 15, 4.0),
        (T + 20, 7.0),
        (T + 25, 8.0),
    ]


def test_an_early_look_is_split_from_its_start_to_the_ticks_log_line() -> None:
    """Failures scraped at +8 s (1), +18 s (3), +28 s (7) and +38 s (10); the first counters
    query after the start (+12 s) is the baseline, holding 1 failure never counted; the look
    found 6 more, so Prometheus held them at +28 s; the query evaluated at +32 s answered at
    +35 s and the tick logged the failure at +36.5 s."""
    counted = [(T + 8, 1.0), (T + 18, 3.0), (T + 28, 7.0), (T + 38, 10.0)]
    asked = frozenset({"app-1", "app-1-canary"})
    evals = [
        ds.Evaluation(T - 90, T - 89, asked),  # long before the step: not its baseline
        ds.Evaluation(T + 12, T + 13, asked),
        ds.Evaluation(T + 22, T + 23, frozenset({"app-2-canary"})),  # not asked for
        ds.Evaluation(T + 27, T + 28.5, asked),  # before the 6th failure was scraped
        ds.Evaluation(T + 32, T + 35, asked),
        ds.Evaluation(T + 37, T + 40, asked),  # answered after the tick logged it
    ]
    decision = scale.Decision(40.0, 36.5, "early look", 1, START, 6)
    assert ds.split(decision, "app-1-canary", evals, counted) == ds.Split(
        first=8.0, lost=1.0, enough=28.0, to_evaluation=4.0, executing=3.0, processing=1.5
    )
    by_window = scale.Decision(40.0, 36.5, "window", 1, START, 5)
    assert ds.split(by_window, "app-1-canary", evals, counted) == ds.Split(
        first=8.0, lost=1.0, enough=None, to_evaluation=None, executing=3.0, processing=1.5
    )
    assert ds.split(scale.Decision(40.0, started=START), "app-1-canary", evals, counted) is None


def test_the_baseline_is_the_first_query_of_the_unbroken_run_asking_for_the_canary() -> None:
    """Asked for from Initializing on, a Rollout's baseline was taken before its step began:
    no failure is lost. A run broken by more than RUN_GAP (an earlier release's queries) is
    not its baseline; nor is a query that did not ask for its canary."""
    asked = frozenset({"app-1", "app-1-canary"})
    watched = [
        ds.Evaluation(T - 120, T - 119, asked),  # an earlier release's
        ds.Evaluation(T - 7, T - 6, asked),
        ds.Evaluation(T - 3, T - 2, asked),
        ds.Evaluation(T + 12, T + 13, asked),
        ds.Evaluation(T + 27, T + 28.5, asked),
    ]
    assert ds.baseline(watched, T) == watched[1]
    assert ds.baseline(watched[:1] + watched[3:], T) == watched[3]
    assert ds.baseline(watched[:3], T) is None  # never asked for after the step began
    counted = [(T + 8, 1.0), (T + 18, 3.0), (T + 28, 7.0)]
    decision = scale.Decision(40.0, 30.0, "early look", 1, START, 6)
    part = ds.split(decision, "app-1-canary", watched, counted)
    assert part is not None
    assert (part.lost, part.enough) == (0.0, 28.0)  # 6 failures, all counted: held at +28 s
    assert ds.split(decision, "app-1-canary", watched[:1] + watched[3:], counted) == ds.Split(
        first=8.0, lost=1.0, enough=28.0, to_evaluation=None, executing=1.5, processing=1.5
    )


def test_the_account_gives_each_parts_median_p90_and_most() -> None:
    """p90 as every quantile of bench.scale: of 20 values, the one at 0-based rank 18."""
    splits = {
        f"app-{i}-v3": ds.Split(float(i), 0.0, None, None, 1.0, float(20 - i)) for i in range(20)
    }
    text = ds.account(splits)
    assert "20 bad Rollouts found failing by the tick" in text
    assert "- step start → 1st canary failure in Prometheus (20): median 9.5s, p90 18.0s" in text
    assert "most 19.0s" in text
    assert "early look counted, in Prometheus: none" in text
    assert "- the answer → failing_measured (20): median 10.5s, p90 19.0s, most 20.0s" in text


def test_decisions_carry_their_start_for_the_split() -> None:
    line = {"rollout": "a-v3", "timestamp": "2026-12-04T10:00:00Z"}
    lines = [
        json.dumps({**line, "event": "step_advanced"}),
        json.dumps(
            {**line, "event": "failing_measured", "by": "early look", "canary": "6/20 failed"}
            | {"timestamp": "2026-12-04T10:00:30Z"}
        ),
        json.dumps({**line, "event": "analysis_failed"} | {"timestamp": "2026-12-04T10:00:31Z"}),
    ]
    (decision,) = scale.decisions(lines, {"a-v3"}).values()
    assert decision.started == START
    assert decision.failures == 6
    assert decision.found == 30.0
