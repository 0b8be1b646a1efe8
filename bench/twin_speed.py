"""What a full ``make bench-gates`` costs: CPU seconds per run of every cell, and the projection.

Run: ``python -m bench.twin_speed --seeds 8`` (one process; a few minutes). For every cell the
default ``make bench-gates`` runs (``bench.gates.cells``: every scenario under canary's twin,
its opt-in settings and the three baselines), it times ``--seeds`` runs (seeds 0, 1, …) in
process CPU time, then multiplies by the cell's default number of seeds. The projected wall time
assumes the runner's 2 worker processes each get a whole core; on a shared machine it is longer.
Prints a Markdown table, costliest cells first.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from bench import gates, twin
from bench.scenarios import BY_KEY, SCENARIOS

WORKERS = 2


def cost(key: str, gate: str, seeds: int) -> float:
    """CPU seconds per run of one cell, over seeds ``0 … seeds − 1``."""
    scenario = BY_KEY[key]
    started = time.process_time()
    for seed in range(seeds):
        gates.run(scenario, gate, seed)
    return (time.process_time() - started) / seeds


def main(argv: Sequence[str] | None = None) -> int:
    """Time every cell and print the table and the projection."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8, help="runs timed per cell")
    parser.add_argument("--only", nargs="*", help="scenario keys (default: all)")
    args = parser.parse_args(argv)
    twin.quiet()
    chosen = [BY_KEY[k] for k in args.only] if args.only else list(SCENARIOS)
    planned = gates.cells(gates.parser().parse_args([]), chosen)
    gates.run(BY_KEY["S1"], "flagger", 0)  # the latency tables, as each worker builds once
    rows: list[tuple[float, str, str, float, int]] = []
    for (key, gate), seeds in planned.items():
        per_run = cost(key, gate, args.seeds)
        rows.append((per_run * seeds, key, gate, per_run, seeds))
    rows.sort(reverse=True)
    print("| scenario | gate | CPU s per run | runs per CPU s | seeds | CPU min |")
    print("|---|---|---|---|---|---|")
    for total, key, gate, per_run, seeds in rows:
        print(
            f"| {key} | {gate} | {per_run:.3f} | {1 / per_run:.1f} | {seeds} | {total / 60:.1f} |"
        )
    by_gate: dict[str, float] = {}
    for total, _, gate, _, _ in rows:
        by_gate[gate] = by_gate.get(gate, 0.0) + total
    spent = sum(by_gate.values())
    print()
    print("; ".join(f"{gate} {total / 60:.1f}" for gate, total in by_gate.items()) + " CPU min")
    print(
        f"{len(rows)} cells, {sum(r[4] for r in rows)} runs: {spent / 60:.1f} CPU min, "
        f"≈ {spent / 60 / WORKERS:.0f} min with {WORKERS} workers on 2 free cores"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
