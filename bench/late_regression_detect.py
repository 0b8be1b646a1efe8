"""What ``analysis.detect: {errorRatio: 20}`` buys against a canary that turns bad at the 50%
step, and what it costs a healthy release, on the twin (issue 15; docs/analysis.md, "Power on
request").

With the defaults the 50% step may pass on its first judged window, and the 100% step has no
stable traffic left to compare with, so a canary that turns 20x worse at 50% (S8-20x-after3) is
sometimes promoted. ``detect`` holds the last shared step (50%) until it has served the canary
requests that catch the given ratio with the given power. For each scenario this releases the
same seeds under the benchmark's default analysis and under the default plus ``detect``, and
prints how many were promoted and rolled back, the virtual seconds until 100% of the traffic
was on the canary (promoted runs: median / p95), and, over the rolled-back runs, the seconds
until traffic was back on stable and the failed requests the canary served (median / p95).

``python -m bench.late_regression_detect`` (about 6 CPU minutes with the default seeds).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

from bench import twin
from bench.gates import _quantiles
from bench.scenarios import BY_KEY

DETECT: dict[str, Any] = {"detect": {"errorRatio": 20, "power": 0.95}}

SEEDS: dict[str, int] = {
    "S8-20x-after3": 300,
    "S3-20x-0.1%": 200,
    "S1": 300,
    "S6-flapping": 300,
    "S5-healthy-5rps": 30,
    "S5-healthy-1rps": 30,
}


def _row(key: str, label: str, runs: Sequence[twin.TwinRun], cpu_s: float) -> str:
    promoted = [run for run in runs if run.phase in twin.PROMOTED]
    back = [run for run in runs if run.phase in twin.ROLLED_BACK]
    reached = (next((d.seconds for d in run.trace if d.weight == 100), None) for run in promoted)
    full = [seconds for seconds in reached if seconds is not None]
    text = f"{key:16} {label:10} promoted {len(promoted):3} rolled back {len(back):3}"
    if full:
        text += f" | s to 100% {_quantiles(full)}"
    if back:
        failed = [float(run.world.canary_failures()) for run in back]
        text += f" | s to rollback {_quantiles([run.ended_s for run in back])}"
        text += f", failed {_quantiles(failed)}"
    return f"{text} | {cpu_s:.0f} CPU s"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("keys", nargs="*", default=list(SEEDS), help="scenarios (all above)")
    parser.add_argument("--seeds", type=int, help="seeds per scenario (default: as above)")
    args = parser.parse_args(argv)
    twin.quiet()
    for key in args.keys:
        seeds = args.seeds or SEEDS.get(key, 100)
        for label, analysis in (("default", twin.ANALYSIS), ("detect 20×", twin.ANALYSIS | DETECT)):
            started = time.process_time()
            runs = [twin.run(BY_KEY[key], seed, analysis=analysis) for seed in range(seeds)]
            print(_row(key, label, runs, time.process_time() - started), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
