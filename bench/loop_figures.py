"""The live loop's figures on the digital twin, for tuning it: ``python -m bench.loop_figures``.

Runs canary's real controller (``bench.twin``) with the given settle and tick on a few
scenarios and prints, per scenario, how runs ended, the time to rollback or to 100%, and the
failed requests the canary served (median / p95) — a quick before/after check, cheaper than
``make bench-gates`` (no baselines, no report).

    python -m bench.loop_figures --seeds 100 S2-errors S2-errors-10% S1
    python -m bench.loop_figures --tick 5 --seeds 100 S2-errors    # the previous default tick
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

from bench import gates, twin
from bench.scenarios import BY_KEY


def _quantiles(values: Sequence[float]) -> str:
    if not values:
        return "—"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return f"{statistics.median(ordered):.0f} / {p95:.0f}"


def main(argv: Sequence[str] | None = None) -> int:
    """Print one line per scenario."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="+", choices=sorted(BY_KEY))
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--gate", default="ours", choices=sorted(gates.TWINS))
    parser.add_argument("--settle", type=float, default=twin.LIVE.settle.total_seconds())
    parser.add_argument("--tick", type=float, default=twin.LIVE.tick.total_seconds())
    args = parser.parse_args(argv)
    twin.quiet()
    loop = twin.Loop(timedelta(seconds=args.settle), timedelta(seconds=args.tick))
    print("| scenario | seeds | outcomes | rollback s | failed requests | to 100% s | CPU s |")
    print("|---|---|---|---|---|---|---|")
    for key in args.scenarios:
        started = time.process_time()
        runs = [gates.run(BY_KEY[key], args.gate, seed, loop) for seed in range(args.seeds)]
        ends = Counter(r.result for r in runs)
        back = [r for r in runs if r.result == "rolled_back"]
        full = [r.full_s for r in runs if r.result == "promoted" and r.full_s is not None]
        print(
            f"| {key} | {args.seeds} | "
            + ", ".join(f"{k} {v}" for k, v in sorted(ends.items()))
            + f" | {_quantiles([r.ended_s for r in back])} | "
            f"{_quantiles([r.failed for r in back])} | {_quantiles(full)} | "
            f"{time.process_time() - started:.1f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
