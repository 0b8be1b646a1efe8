"""What a 1% first step buys and costs, on the twin (issue 15; docs/analysis.md).

For each step list, the real controller on the twin releases a 100%-error canary, a 10%-error
one, a healthy one at 100 req/s and a healthy one at 1 req/s, and prints the failed requests
the canary served (median / p95), how many healthy runs were rolled back, and the virtual
seconds each run took to roll back or start promoting (median / p95).

``python -m bench.first_step`` (2 minutes on a quiet 2-core machine); ``--seeds 5`` for a look.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from bench import twin
from bench.gates import _quantiles
from bench.scenarios import BY_KEY

STEP_LISTS = ((5, 10, 20, 50, 100), (1, 5, 10, 20, 50, 100))
CASES = (("S2-errors", 1.0), ("S2-errors-10%", 1.0), ("S1", 1.0), ("S5-healthy-1rps", 0.2))
"""Scenario and its share of ``--seeds`` (a run at 1 req/s is long)."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=300, help="seeds per scenario (300)")
    args = parser.parse_args(argv)
    twin.quiet()
    for steps in STEP_LISTS:
        for key, share in CASES:
            started, seeds = time.monotonic(), max(1, round(args.seeds * share))
            runs = [twin.run(BY_KEY[key], seed, steps=steps) for seed in range(seeds)]
            rolled_back = sum(run.phase in twin.ROLLED_BACK for run in runs)
            print(
                f"steps {', '.join(map(str, steps))} | {key} | seeds {seeds} | rolled back "
                f"{rolled_back} | failed {_quantiles([r.world.canary_failures() for r in runs])} "
                f"| ended s {_quantiles([r.ended_s for r in runs])} "
                f"| {time.monotonic() - started:.0f} s wall",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
