"""The Grafana dashboard of canary, generated with ``grafana-foundation-sdk`` so that it cannot
drift from the metric names: ``python -m canary.grafana --write charts/canary/dashboards``
writes ``canary.json`` (``make grafana``), ``--check`` fails when the file is stale.

Four rows: the promotion history (outcomes over time, rollbacks by reason, release durations,
Rollouts by phase) from the controller's metrics (``canary.api.metrics``); live rollouts
(canary weight, step, the judge's evidence against its limits); for the Rollout chosen at the
top, Linkerd's golden signals of the canary beside the stable, from the proxies' inbound
``response_total``, ``request_total`` and ``response_latency_ms_bucket`` (LINKERD.md), with the
queries of Linkerd's own deployment dashboard; and the controller's own load (how long verdicts
wait for a worker, the work queue's backlog, the measuring query's time). The stable pods are
the target Deployment's, the canary pods ``<target>-canary``'s (``canary.core.plan``). A
development tool: the controller never imports it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import (
    bargauge,
    stat,
    timeseries,
)
from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

FILE = "canary.json"
UID = "canary-rollouts"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "[$__rate_interval]"
LIVE = 'namespace=~"$namespace"'
ARMS = 'namespace="$namespace", deployment=~"$target|$target-canary", direction="inbound"'
"""The inbound traffic of the selected Rollout's stable and canary pods."""
ARM_LEGEND = "{{deployment}}"


def _query(expr: str, legend: str = "", ref: str = "A") -> prom.Dataquery:
    return prom.Dataquery().expr(expr).legend_format(legend or "__auto").ref_id(ref)


def _quantiles(buckets: str, legend: str, *quantiles: float) -> list[prom.Dataquery]:
    """One ``histogram_quantile`` query a quantile of ``buckets`` (a rate summed by ``le``),
    legends ``p50 <legend>`` and so on, refs A, B, C..."""
    return [
        _query(f"histogram_quantile({q:g}, {buckets})", f"p{q * 100:g} {legend}".strip(), ref)
        for q, ref in zip(quantiles, "ABCDEFGH", strict=False)
    ]


def _series(
    title: str, description: str, unit: str, *queries: prom.Dataquery, width: int = 12
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(8)
        .fill_opacity(10)
    )
    for query in queries:
        panel = panel.with_target(query)
    return panel


def _history() -> list[Any]:
    outcomes = "canary_rollout_outcomes_total"
    return [
        gd.Row("Promotion history"),
        stat.Panel()
        .title("Promoted")
        .description("Releases promoted in the time range.")
        .datasource(DATASOURCE)
        .span(4)
        .height(4)
        .with_target(_query(f'sum(increase({outcomes}{{result="promoted"}}[$__range]))')),
        stat.Panel()
        .title("Rolled back")
        .description("Releases rolled back in the time range, for any reason.")
        .datasource(DATASOURCE)
        .span(4)
        .height(4)
        .with_target(_query(f'sum(increase({outcomes}{{result="rolled_back"}}[$__range]))')),
        stat.Panel()
        .title("Aborted or failed")
        .description("Releases people aborted, or the controller could not carry out.")
        .datasource(DATASOURCE)
        .span(4)
        .height(4)
        .with_target(_query(f'sum(increase({outcomes}{{result=~"aborted|failed"}}[$__range]))')),
        _series(
            "Outcomes over time",
            "How releases ended, by result.",
            "short",
            _query(f"sum by (result) (increase({outcomes}{RATE}))", "{{result}}"),
        ).draw_style(common.GraphDrawStyle.BARS),
        bargauge.Panel()
        .title("Rollbacks by reason")
        .description(
            "Why releases were rolled back in the time range: analysis (the judge), no_data, "
            "approval_timeout, progress_deadline, other."
        )
        .datasource(DATASOURCE)
        .span(12)
        .height(8)
        .with_target(
            _query(
                f'sum by (reason) (increase({outcomes}{{result="rolled_back"}}[$__range]))',
                "{{reason}}",
            ).instant()
        ),
        _series(
            "Release duration",
            "Median and 90th percentile time from start to promotion or rollback.",
            "s",
            *_quantiles(
                f"sum by (le, result) (rate(canary_release_duration_seconds_bucket{RATE}))",
                "{{result}}",
                0.5,
                0.9,
            ),
        ),
        _series(
            "Rollouts by phase",
            "Rollouts the controller sees, by phase.",
            "short",
            _query(f"sum by (phase) (canary_rollouts{{{LIVE}}})", "{{phase}}"),
        ),
    ]


def _live() -> list[Any]:
    labels = "{{namespace}}/{{rollout}}"
    return [
        gd.Row("Live rollouts"),
        _series(
            "Canary weight",
            "The share of traffic routed to each active Rollout's canary.",
            "percentunit",
            _query(f"canary_rollout_canary_weight_ratio{{{LIVE}}}", labels),
            width=8,
        )
        .min(0)
        .max(1),
        _series(
            "Step",
            "The step each active Rollout is at (0-based).",
            "short",
            _query(f"canary_rollout_step_index{{{LIVE}}}", labels),
            width=8,
        ).min(0),
        _series(
            "Evidence against the canary, as a share of its limit",
            "Each check's value divided by the limit at which the judge fails the step (1 = "
            "the limit).",
            "percentunit",
            _query(
                f"canary_rollout_check_value{{{LIVE}}} / canary_rollout_check_limit{{{LIVE}}}",
                labels + " {{check}}",
            ),
            width=8,
        ),
    ]


def _golden_signals() -> list[Any]:
    total = f"sum by (deployment) (rate(response_total{{{ARMS}}}{RATE}))"
    good = f'sum by (deployment) (rate(response_total{{{ARMS}, classification!="failure"}}{RATE}))'
    buckets = f"sum by (le, deployment) (rate(response_latency_ms_bucket{{{ARMS}}}{RATE}))"
    return [
        gd.Row("Golden signals of $rollout: canary ($target-canary) vs stable ($target)"),
        _series(
            "Success rate",
            "Share of inbound responses not classified as failures, per arm (Linkerd proxies).",
            "percentunit",
            _query(f"{good} / {total}", ARM_LEGEND),
            width=8,
        ).max(1),
        _series(
            "Request volume",
            "Inbound requests per second, per arm.",
            "reqps",
            _query(f"sum by (deployment) (rate(request_total{{{ARMS}}}{RATE}))", ARM_LEGEND),
            width=8,
        ),
        _series(
            "Latency",
            "Inbound latency percentiles, per arm.",
            "ms",
            *_quantiles(buckets, ARM_LEGEND, 0.5, 0.95, 0.99),
            width=8,
        ),
    ]


def _controller() -> list[Any]:
    wait = (
        f'sum by (le, work) (rate(canary_workqueue_wait_seconds_bucket{{work!="routine"}}{RATE}))'
    )
    query = (
        "sum by (le) "
        f'(rate(canary_prometheus_query_duration_seconds_bucket{{query="snapshot"}}{RATE}))'
    )
    writes = (
        "sum by (le, verb) (rate(canary_kube_request_duration_seconds_bucket"
        f'{{verb=~"POST|PUT|PATCH|DELETE"}}{RATE}))'
    )
    return [
        gd.Row("Controller"),
        _series(
            "Verdicts' wait for a worker",
            "How long past its due time a Rollout with counts to judge waited for a worker, "
            "by work: failing (the tick found its early look or its window failing: time added "
            "to a rollback) and verdict (a window's counts). Lasting above the analysis interval, "
            "the workers are behind: too few --workers, the client-side --kube-qps limit, or "
            "too little CPU.",
            "s",
            *_quantiles(wait, "{{work}}", 0.5, 0.99),
            width=6,
        ).min(0),
        _series(
            "Work queue backlog",
            "Rollouts due for a reconcile that no worker has taken yet, and windows waiting for "
            "their Rollouts' custom metric queries (lasting: too few --custom-query-workers, or "
            "slow queries).",
            "short",
            _query("sum(canary_workqueue_depth)", "due, not taken"),
            _query("sum(canary_custom_queries_waiting)", "custom metric queries waiting", "B"),
            width=6,
        ).min(0),
        _series(
            "Measuring query",
            "Time of the one Prometheus query a tick makes for every Rollout being judged. "
            "Near the tick (--tick, 5 s by default), counts arrive late.",
            "s",
            *_quantiles(query, "", 0.5, 0.99),
            width=6,
        ).min(0),
        _series(
            "API server writes",
            "p99 time of the controller's writes to the Kubernetes API server, by verb: a "
            "worker waits this long for each. Seconds, not milliseconds, mean a saturated API "
            "server; every reconcile that writes, and so every rollback, takes that long more.",
            "s",
            _query(f"histogram_quantile(0.99, {writes})", "p99 {{verb}}"),
            width=6,
        ).min(0),
    ]


def _variable(name: str, label: str, query: str, *, hidden: bool = False) -> gd.QueryVariable:
    variable = (
        gd.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )
    return variable.hide(model.VariableHide.HIDE_VARIABLE) if hidden else variable


def build() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model."""
    board = (
        gd.Dashboard("canary: progressive delivery")
        .uid(UID)
        .description("Promotion history, live rollouts, and canary vs stable golden signals.")
        .tags(["canary", "linkerd", "progressive-delivery"])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(gd.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(
            _variable("namespace", "Namespace", "label_values(canary_rollouts, namespace)")
        )
        .with_variable(
            _variable(
                "rollout",
                "Rollout",
                'label_values(canary_rollout_canary_weight_ratio{namespace="$namespace"}, rollout)',
            )
        )
        .with_variable(
            _variable(
                "target",
                "Target",
                'label_values(canary_rollout_canary_weight_ratio{namespace="$namespace", '
                'rollout="$rollout"}, target)',
                hidden=True,
            )
        )
    )
    for panel in (*_history(), *_live(), *_golden_signals(), *_controller()):
        board = board.with_row(panel) if isinstance(panel, gd.Row) else board.with_panel(panel)
    document: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return document


def render() -> str:
    """The dashboard file's text."""
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the dashboard into a directory, or check that the one there is current."""
    parser = argparse.ArgumentParser(prog="python -m canary.grafana", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", metavar="DIR", type=Path)
    mode.add_argument("--check", metavar="DIR", type=Path)
    args = parser.parse_args(argv)
    text = render()
    if args.write is not None:
        args.write.mkdir(parents=True, exist_ok=True)
        (args.write / FILE).write_text(text)
        return 0
    path = args.check / FILE
    if not path.exists() or path.read_text() != text:
        print(f"{path} is stale: run `make grafana`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
