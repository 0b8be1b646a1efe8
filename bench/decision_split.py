"""Where each bad canary's decision went, from Prometheus' side: its samples of the canary's
failures and its query log, against the controller's log.

``bench.scale.decisions`` times a bad Rollout's failed step from the controller's log alone
(step start → the tick's first ``failing_measured`` → ``analysis_failed``). This splits the
first part further, with what only Prometheus knows:

- **step start → 1st canary failure** in Prometheus (a sample's timestamp: the scrape);
- **failures before the baseline**: the canary's failures already scraped when the query
  whose answer was the Rollout's baseline was evaluated (``canary.core.measuring``: the first
  snapshot since its pods were asked for), so the tick never counts them. The baseline is the
  first of the unbroken run of queries asking for the canary's pods (:func:`baseline`): since
  the Rollout is asked for from ``Initializing`` on, one taken before the step began, so
  nothing lost; before that change (runs up to K2), the first query after the step's start;
- for a Rollout an **early look** found failing: step start → the sample that brought the
  failures that look counted, and from that sample → the evaluation of the counters query
  whose answer the tick found failing (the next tick, or a later one);
- for every Rollout found failing: that query's **execution** (evaluated → answered, by
  Prometheus' query log) and its **answer → ``failing_measured``** (the answer read and
  parsed, the counts advanced, the looks taken).

``make bench-scale`` prints this account of its measured round itself (``bench.scale`` calls
:func:`round_splits`, and the reduced scale check in ``make test`` checks it against the real
Prometheus). To split a round again, or with one line per Rollout, after ``make bench-scale``
(the dev environment is still up), with its environment::

    set -a; . .dev/env; set +a
    .venv/bin/python -m bench.decision_split --n 1000 --version 3

(round 3 is a run's timed round after one warm-up round). Runs of 2026-12-04 (V, W) were split
by one-off scripts doing this; this is that, kept.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench import scale


@dataclass(frozen=True)
class Evaluation:
    """One counters query as Prometheus logged it: when it was evaluated (its ``time``, epoch
    seconds), when Prometheus answered (the log entry's ``ts``), and the Deployments it asked
    for."""

    at: float
    answered: float
    deployments: frozenset[str]


def evaluations(lines: Iterable[str], namespace: str) -> list[Evaluation]:
    """The controller's counters queries for ``namespace`` in Prometheus' query log, in order
    of evaluation. A line that is not JSON (one still being written) is skipped."""
    found = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        params = entry.get("params") or {}
        query = params.get("query", "")
        spaces = re.search(r'namespace=~"([^"]*)"', query)
        if "response_latency_ms_bucket" not in query or not spaces:
            continue
        if namespace not in spaces[1].split("|"):
            continue
        asked = re.search(r'deployment=~"([^"]*)"', query)
        found.append(
            Evaluation(
                _epoch(params["end"]),
                _epoch(entry["ts"]),
                frozenset(asked[1].split("|")) if asked else frozenset(),
            )
        )
    return sorted(found, key=lambda e: e.at)


Series = list[tuple[float, float]]
"""One counter series' samples: (timestamp, value)."""


def failures(series: Sequence[Series], start: float) -> Series:
    """The canary's failures since ``start``, summed over its series, at each sample's time:
    each series counts from its last sample at or before ``start`` (0 for a series born
    after it: a new pod, a new status code)."""
    times = sorted({t for samples in series for t, _ in samples if t > start})
    bases = [_last(samples, start) for samples in series]
    return [
        (at, sum(_last(samples, at) - base for samples, base in zip(series, bases, strict=True)))
        for at in times
    ]


def _last(samples: Series, at: float) -> float:
    """The last value of ``samples`` at or before ``at`` (0 before the first)."""
    before = [v for t, v in samples if t <= at]
    return before[-1] if before else 0.0


@dataclass(frozen=True)
class Split:
    """One bad Rollout's step from start to ``failing_measured``, in seconds (None: not
    known). ``lost`` is a count of failures."""

    first: float | None
    lost: float | None
    enough: float | None
    to_evaluation: float | None
    executing: float | None
    processing: float | None


RUN_GAP = 60.0
"""Counters queries asking for a Rollout's pods less than this many seconds apart are taken as
one unbroken run. The controller asks for a judged Rollout on every tick, and for one
initializing on one tick in ``measuring.WATCH_EVERY`` (5): 5 ticks of 2 s, each held by
answers of up to 12 s (runs K–L2), can pass 20 s: with 20 s, run L2's split had one bad
Rollout lose 12 failures; with 40 s or 60 s, none."""


def baseline(asked: Sequence[Evaluation], start: float) -> Evaluation | None:
    """The query whose answer was a Rollout's baseline for the step that began at ``start``,
    among ``asked`` (the queries asking for its canary's pods, in order): the first of the run
    that reaches the first query at or after ``start``, each within :data:`RUN_GAP` of the
    one before (the controller keeps its baseline while it keeps asking)."""
    at = next((i for i, e in enumerate(asked) if e.at >= start), None)
    if at is None:
        return None
    while at > 0 and asked[at].at - asked[at - 1].at <= RUN_GAP:
        at -= 1
    return asked[at]


def split(
    decision: scale.Decision, canary: str, evals: Sequence[Evaluation], counted: Series
) -> Split | None:
    """Split ``decision`` (found failing by the tick; None otherwise) with the counters
    ``evals`` and the canary's failures since the step's start (``failures``)."""
    if decision.started is None or decision.found is None:
        return None
    start = decision.started.timestamp()
    found = start + decision.found
    asked = [e for e in evals if canary in e.deployments]
    mine = [e for e in asked if e.at >= start]
    first = next((t - start for t, v in counted if v > 0), None)
    based = baseline(asked, start)
    lost = _last(counted, based.at) if based is not None else None
    answered = [e for e in mine if e.answered <= found]
    last = answered[-1] if answered else None
    enough = to_evaluation = None
    if decision.by == "early look" and decision.failures is not None and lost is not None:
        needed = lost + decision.failures
        brought = next((t for t, v in counted if v >= needed), None)
        if brought is not None:
            enough = brought - start
            if last is not None and last.at >= brought:
                to_evaluation = last.at - brought
    return Split(
        first,
        lost,
        enough,
        to_evaluation,
        last.answered - last.at if last is not None else None,
        found - last.answered if last is not None else None,
    )


PARTS = (
    ("first", "step start → 1st canary failure in Prometheus", "s"),
    ("lost", "failures before the baseline (never counted)", ""),
    ("enough", "step start → the failures an early look counted, in Prometheus", "s"),
    ("to_evaluation", "… → the counters evaluation whose answer found it", "s"),
    ("executing", "that evaluation → Prometheus' answer", "s"),
    ("processing", "the answer → failing_measured", "s"),
)


def account(splits: dict[str, Split]) -> str:
    """Median, p90 and most of each part, over the Rollouts that have it (p90 as every
    quantile of ``bench.scale``: :func:`bench.scale.quantile`)."""
    lines = [f"{len(splits)} bad Rollouts found failing by the tick, split with Prometheus:"]
    for key, label, unit in PARTS:
        values = sorted(v for s in splits.values() if (v := getattr(s, key)) is not None)
        if not values:
            lines.append(f"- {label}: none")
            continue
        lines.append(
            f"- {label} ({len(values)}): median {statistics.median(values):.1f}{unit}, p90 "
            f"{scale.quantile(values, 0.9):.1f}{unit}, most "
            f"{values[-1]:.1f}{unit}"
        )
    return "\n".join(lines)


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def canary_series(
    prometheus: str, namespace: str, canary: str, at: float, span: int
) -> list[Series]:
    """Prometheus' raw samples of ``canary``'s inbound failure counters over the ``span``
    seconds up to ``at``, one list a series."""
    query = (
        f'response_total{{namespace="{namespace}", deployment="{canary}", direction="inbound", '
        f'classification="failure"}}[{span}s]'
    )
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": query, "time": at})
    with urllib.request.urlopen(url, timeout=30) as reply:
        result = json.loads(reply.read())["data"]["result"]
    return [[(float(t), float(v)) for t, v in r["values"]] for r in result]


def round_splits(
    lines: Sequence[str],
    namespace: str,
    *,
    n: int,
    version: int,
    query_log: Path,
    prometheus: str,
    show: bool = False,
) -> dict[str, Split]:
    """Every bad Rollout of release ``version`` (of the ``n`` apps in ``namespace``) that the
    tick found failing, split: the controller's log ``lines``, Prometheus' query log and its
    samples (at ``prometheus``). ``show`` prints one line per Rollout as it goes."""
    setup = scale.Setup(n, namespace)
    bad = {f"app-{i}-v{version}" for i in range(n) if setup.bad(i)}
    decided = scale.decisions(lines, bad)
    with query_log.open(errors="replace") as logged:
        evals = evaluations(logged, namespace)
    splits = {}
    for name, decision in sorted(decided.items()):
        if decision.started is None or decision.found is None:
            continue
        canary = f"{name.rsplit('-v', 1)[0]}-canary"
        start = decision.started.timestamp()
        span = int(decision.found) + 120
        series = canary_series(prometheus, namespace, canary, start + span - 60, span)
        found = split(decision, canary, evals, failures(series, start))
        if found is not None:
            splits[name] = found
            if show:
                print(name, decision.by, found, flush=True)
    return splits


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, required=True, help="the run's number of apps")
    parser.add_argument("--version", type=int, default=3, help="the round's release")
    parser.add_argument("--namespace", help="the run's namespace (default: the controller's)")
    parser.add_argument("--controller-log", type=Path, help="default: .dev/bench-scale/N/…")
    args = parser.parse_args(argv)
    log = args.controller_log or Path(f".dev/bench-scale/{args.n}/controller.log")
    lines = log.read_text(errors="replace").splitlines()
    namespace = args.namespace or _namespace(lines)
    splits = round_splits(
        lines,
        namespace,
        n=args.n,
        version=args.version,
        query_log=Path(os.environ["PROMETHEUS_QUERY_LOG"]),
        prometheus=os.environ["PROMETHEUS_URL"],
        show=True,
    )
    print(account(splits))
    return 0


def _namespace(lines: Iterable[str]) -> str:
    for line in lines:
        if '"controller_started"' in line:
            namespace: str = json.loads(line)["namespace"]
            return namespace
    raise SystemExit("no controller_started line in the controller's log: give --namespace")


if __name__ == "__main__":
    raise SystemExit(main())
