"""What a set ``minRequestsPerStep`` costs a healthy release at 1 req/s, on the twin (issue 15;
docs/analysis.md, "How long a step takes").

The real controller on the twin releases scenario S5-healthy-1rps (a canary as good as stable,
0.1% errors, default steps) under three analyses: the benchmark's default (no minimum set: the
four-minute rule applies and a step does not hold on weak evidence), ``minRequestsPerStep: 200``,
and the same with ``compareWithStable.holdAbove: 10000``. It prints, per analysis, how the runs
ended and the virtual seconds until the controller started promoting (median / p95 / max), and
how many were still at a step when the twin's six hours ran out.

``python -m bench.low_traffic_minimum --seeds 100`` (about 11 CPU minutes).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from bench import twin
from bench.gates import _quantiles
from bench.scenarios import BY_KEY

ANALYSES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("default minimum", {}),
    ("minRequestsPerStep: 200", {"minRequestsPerStep": 200}),
    (
        "minRequestsPerStep: 200, holdAbove: 10000",
        {"minRequestsPerStep": 200, "compareWithStable": {"holdAbove": 10000}},
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100, help="seeds per analysis (100)")
    args = parser.parse_args(argv)
    twin.quiet()
    scenario = BY_KEY["S5-healthy-1rps"]
    for label, extra in ANALYSES:
        started = time.process_time()
        runs = [
            twin.run(scenario, seed, analysis={**twin.ANALYSIS, **extra})
            for seed in range(args.seeds)
        ]
        ended = [run.ended_s for run in runs]
        phases = Counter(run.phase for run in runs)
        print(
            f"{label}: {dict(phases)} of {args.seeds}; s until promoting (median / p95) "
            f"{_quantiles(ended)}, slowest {max(ended):.0f}; "
            f"{time.process_time() - started:.0f} CPU s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
