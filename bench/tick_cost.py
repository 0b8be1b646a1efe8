"""What one measuring tick's counters query costs at a benchmark's scale: Prometheus' answer
(time, bytes, series by family) and the controller's CPU to read it.

Run after ``make bench-scale`` (the dev environment and its Prometheus are still up), with its
environment::

    set -a; . .dev/env; set +a
    .venv/bin/python -m bench.tick_cost --n 1000

It asks for what the controller's tick asks for when all ``--n`` apps of the round's namespace
are being judged (``promql.counters_query`` over each app's stable and canary Deployments), as
an instant query at ``--at`` (default: now; give a time inside the round when Prometheus has
since dropped the series from its lookback). First the raw answer, once: seconds, bytes and
series by family (the latency buckets against the success/failure counters). Then, ``--repeat``
times, ``PrometheusMetrics.snapshot`` as the tick calls it (streamed, parsed into per-pod
counters) on that same answer, served again from this process (``bench.snapshot_memory.serve``)
so that ``--at`` holds, with the
CPU seconds of the calling thread: the median is the tick's own reading cost
(``measuring.advance`` and the looks come after it and are not timed here). Last, ``--repeat``
times each, Prometheus' own time (its ``stats``) for the whole query and for each of its two
parts (``promql.totals_query``: the success/failure counters; ``promql.histogram_query``: the
latency buckets), at the same evaluation time: what each part costs Prometheus.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from bench import snapshot_memory
from canary.adapters.metrics.prometheus import PrometheusMetrics
from canary.core import promql

FAMILIES = ("latency bucket", "response counter", "other")


def family(labels: Mapping[str, object]) -> str:
    """Which part of the counters query a sample of its answer came from, by its labels."""
    if "le" in labels:
        return FAMILIES[0]
    if "classification" in labels:
        return FAMILIES[1]
    return FAMILIES[2]


def breakdown(result: Iterable[Mapping[str, object]]) -> tuple[Counter[str], int]:
    """Series by family, and the distinct pods they are for, in a counters answer's
    ``data.result``."""
    families: Counter[str] = Counter()
    pods = set()
    for sample in result:
        labels = sample.get("metric")
        if not isinstance(labels, Mapping):
            families[FAMILIES[2]] += 1
            continue
        families[family(labels)] += 1
        if "pod" in labels:
            pods.add((labels.get("namespace"), labels.get("deployment"), labels["pod"]))
    return families, len(pods)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, required=True, help="the round's number of apps")
    parser.add_argument("--namespace", help="the round's namespace (default: the newest scale-N-*)")
    parser.add_argument("--at", type=float, help="evaluation time, epoch seconds (default: now)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    url = os.environ["PROMETHEUS_URL"]
    namespace = args.namespace or _newest_namespace(url, args.n)
    targets = snapshot_memory.arms(args.n, namespace)
    arms = sorted({(a.namespace, d) for a in targets for d in (a.stable, a.canary)})
    query = promql.counters_query(arms)
    at = args.at if args.at is not None else time.time()
    form = {"query": query, "time": str(at)}
    started = time.monotonic()
    with urllib.request.urlopen(
        f"{url}/api/v1/query", data=urllib.parse.urlencode(form).encode(), timeout=120
    ) as reply:
        body = reply.read()
    seconds = time.monotonic() - started
    families, pods = breakdown(json.loads(body)["data"]["result"])
    total = sum(families.values())
    print(
        f"{namespace}, {args.n} apps: Prometheus answered in {seconds:.2f} s with "
        f"{len(body) / 1e6:.1f} MB, {total} series for {pods} pods: "
        + ", ".join(
            f"{name} {families[name]} ({100 * families[name] / max(total, 1):.0f}%)"
            for name in FAMILIES
            if families[name]
        )
    )
    httpd, replay = snapshot_memory.serve(body)  # its thread's CPU is not this thread's
    metrics = PrometheusMetrics(replay, timeout=120)
    cpu = []
    try:
        for _ in range(args.repeat):
            before = time.thread_time()
            found = metrics.snapshot(targets)
            cpu.append(time.thread_time() - before)
    finally:
        metrics.close()
        httpd.shutdown()
        httpd.server_close()
    print(
        f"the tick's read (PrometheusMetrics.snapshot: stream and parse) of {len(found)} pods' "
        f"counters: median {statistics.median(cpu):.2f} CPU s of {args.repeat} "
        f"({', '.join(f'{c:.2f}' for c in cpu)})"
    )
    print(parts_table(url, arms, at, args.repeat))
    return 0


PARTS = (
    ("the counters query (both parts)", promql.counters_query),
    ("its counters part (`totals_query`)", promql.totals_query),
    ("its histogram part (`histogram_query`)", promql.histogram_query),
)


def parts_table(url: str, arms: Sequence[tuple[str, str]], at: float, repeat: int) -> str:
    """Prometheus' own time for the counters query and each of its parts over ``arms``,
    evaluated at ``at``, ``repeat`` times each: medians, as a Markdown table."""
    rows = [
        "| query | series | MB | Prometheus' evaluation s (median) | of it preparing "
        "(selecting series) | of it evaluating | the answer's wall time s (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, build in PARTS:
        form = urllib.parse.urlencode({"query": build(arms), "time": str(at), "stats": "all"})
        took: list[dict[str, float]] = []
        walls: list[float] = []
        for _ in range(repeat):
            started = time.monotonic()
            with urllib.request.urlopen(
                f"{url}/api/v1/query", data=form.encode(), timeout=120
            ) as r:
                body = r.read()
            walls.append(time.monotonic() - started)
            data = json.loads(body)["data"]
            took.append(data["stats"]["timings"])
        median = {k: statistics.median(t[k] for t in took) for k in took[0]}
        rows.append(
            f"| {name} | {len(data['result'])} | {len(body) / 1e6:.2f} "
            f"| {median['evalTotalTime']:.3f} | {median['queryPreparationTime']:.3f} "
            f"| {median['innerEvalTime']:.3f} | {statistics.median(walls):.3f} |"
        )
    return "\n".join(rows)


def _newest_namespace(url: str, n: int) -> str:
    query = urllib.parse.urlencode({"match[]": 'response_total{direction="inbound"}'})
    with urllib.request.urlopen(f"{url}/api/v1/label/namespace/values?{query}") as reply:
        names = json.loads(reply.read())["data"]
    rounds = sorted(
        (int(name.rsplit("-", 1)[1]), name)
        for name in names
        if name.startswith(f"scale-{n}-") and name.rsplit("-", 1)[1].isdigit()
    )
    if not rounds:
        raise SystemExit(f"no scale-{n}-* namespace in Prometheus: give --namespace")
    newest: str = rounds[-1][1]
    return newest


if __name__ == "__main__":
    sys.exit(main())
