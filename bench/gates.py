"""Gate quality benchmark (BENCHMARK.md §1): ``make bench-gates`` or ``python -m bench.gates``.

Every gate sees the same seeded traffic (same seed → same mesh, scrapes and delays, until the
gates' decisions make the runs differ). Prints the table and writes ``docs/benchmarks.md``.

    python -m bench.gates                       # every scenario, default seeds (≥ 1000 per cell)
    python -m bench.gates --only S1 S3-20x-0.1% --seeds 200 --no-write
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from bench import twin
from bench.baselines import ArgoStyle, FlaggerStyle
from bench.report import render, splice, targets
from bench.scenarios import BY_KEY, SCENARIOS, Scenario
from bench.world import World

MAX_S = 6 * 3600.0


class Gate(Protocol):
    """What the runner needs from a gate."""

    name: str
    interval_s: float

    def start(self, world: World) -> None: ...

    def tick(self, world: World) -> str | None: ...


TWINS: dict[str, tuple[str, dict[str, object]]] = {
    "ours": ("ours", twin.ANALYSIS),
    "ours-sensitive": (
        "ours, holdAbove 0.1",
        {**twin.ANALYSIS, "compareWithStable": {"holdAbove": 0.1}},
    ),
    "ours-detect": (
        "ours, detect 2× at 0.95",
        {**twin.ANALYSIS, "detect": {"errorRatio": 2, "power": 0.95}},
    ),
}
"""canary itself, run by the digital twin (``bench.twin``): the gate's name and the Rollout's
``analysis``."""

GATES: dict[str, Callable[[], Gate]] = {
    "flagger": FlaggerStyle,
    "argo0": lambda: ArgoStyle(failure_limit=0),
    "argo3": lambda: ArgoStyle(failure_limit=3),
}
"""The baselines, re-implemented from their published rules."""

ONLY_ON: dict[str, tuple[str, ...]] = {
    "ours-sensitive": ("S1", "S3-", "S4-"),
    "ours-detect": ("S1", "S3-2x", "S9-"),
}
"""Gates run on some scenarios only (by key prefix): the sensitive setting shows the trade of
time for power where it matters, without hours-long low-traffic runs."""


OPT_IN_SEEDS = 1000
"""Seeds per cell for the sensitive and the detect settings by default: their targets (power,
time to promotion) are not ≤ 1% rates, and their long holds make them the costliest runs."""


def applies(gate: str, scenario: Scenario) -> bool:
    """Whether the default run includes this gate on this scenario."""
    prefixes = ONLY_ON.get(gate)
    return prefixes is None or scenario.key.startswith(prefixes)


@dataclass(frozen=True)
class Outcome:
    """One run: how it ended, when, and how many users the canary failed."""

    result: str
    ended_s: float
    full_s: float | None
    failed: int


def run(
    scenario: Scenario,
    gate_key: str,
    seed: int,
    loop: twin.Loop = twin.LIVE,
    *,
    staggered: bool = False,
) -> Outcome:
    """Simulate one rollout of ``scenario`` under one gate (canary's with ``loop``'s timing);
    with ``staggered``, Prometheus scrapes each pod at its own moment (``bench.world``)."""
    if gate_key in TWINS:
        return run_twin(scenario, gate_key, seed, loop, staggered=staggered)
    world = World(scenario, seed, staggered=staggered)
    world.run_until(0.0)
    gate = GATES[gate_key]()
    gate.start(world)
    tick = gate.interval_s
    result = "stuck"
    while tick <= MAX_S:
        world.run_until(tick)
        decision = gate.tick(world)
        if decision == "rollback":
            world.set_weight(0)
            result = "rolled_back"
            break
        if decision == "promote":
            result = "promoted"
            break
        tick += gate.interval_s
    while world.pending:
        world.run_until(max(at for at, _ in world.pending))
    return Outcome(result, world.now, world.full_at, world.canary_failures())


def run_twin(
    scenario: Scenario,
    gate_key: str,
    seed: int,
    loop: twin.Loop = twin.LIVE,
    *,
    staggered: bool = False,
) -> Outcome:
    """One rollout by canary's real controller in the digital twin."""
    done = twin.run(
        scenario,
        seed,
        analysis=TWINS[gate_key][1],
        settle=loop.settle,
        tick=loop.tick,
        max_s=MAX_S,
        staggered=staggered,
    )
    result = (
        "promoted"
        if done.phase in twin.PROMOTED
        else "rolled_back"
        if done.phase in twin.ROLLED_BACK
        else "stuck"
    )
    world = done.world
    return Outcome(result, done.ended_s, world.full_at, world.canary_failures())


def name_of(gate_key: str) -> str:
    """The gate's name in the table."""
    return TWINS[gate_key][0] if gate_key in TWINS else GATES[gate_key]().name


def _task(args: tuple[str, str, int, int, twin.Loop, bool]) -> list[Outcome]:
    key, gate, first, count, loop, staggered = args
    twin.quiet()
    scenario = BY_KEY[key]
    return [
        run(scenario, gate, seed, loop, staggered=staggered) for seed in range(first, first + count)
    ]


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _quantiles(values: Sequence[float]) -> str:
    if not values:
        return "—"
    ordered = sorted(values)
    median = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return f"{_fmt(median)} / {_fmt(p95)}"


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.1f}%" if n else "—"


def row(scenario: Scenario, gate_name: str, outcomes: Sequence[Outcome]) -> list[str]:
    """One table row: the figures BENCHMARK.md §1 asks for."""
    n = len(outcomes)
    rolled = [o for o in outcomes if o.result == "rolled_back"]
    promoted = [o for o in outcomes if o.result == "promoted"]
    stuck = n - len(rolled) - len(promoted)
    if scenario.bad:
        verdict = f"missed {_pct(len(promoted) + stuck, n)}"
        times = _quantiles([o.ended_s for o in rolled])
        failed = _quantiles([o.failed for o in rolled])
        to_full = "—"
    else:
        lo, hi = wilson(len(rolled), n)
        verdict = f"false rollback {_pct(len(rolled), n)} [{100 * lo:.1f}–{100 * hi:.1f}]"
        times = "—"
        failed = "—"
        to_full = _quantiles([o.full_s for o in promoted if o.full_s is not None])
    floor = scenario.floor
    return [
        scenario.key,
        gate_name,
        str(n),
        verdict + (f", stuck {stuck}" if stuck else ""),
        to_full,
        times,
        failed,
        "—" if floor is None or gate_name != "ours" else f"{floor:.1f}",
    ]


HEADER = [
    "scenario",
    "gate",
    "seeds",
    "outcome",
    "time to 100% s (median / p95)",
    "time to rollback s (median / p95)",
    "failed requests before rollback (median / p95)",
    "floor",
]


def markdown(rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="scenario keys (default: all)")
    parser.add_argument("--gates", nargs="*", default=[*TWINS, *GATES], choices=[*TWINS, *GATES])
    parser.add_argument("--seeds", type=int, help="seeds per cell (default: the scenario's)")
    parser.add_argument(
        "--others",
        type=int,
        help="seeds per cell outside the key scenarios S1–S3 (default: the scenario's)",
    )
    parser.add_argument(
        "--sensitive-seeds",
        type=int,
        help=f"seeds per cell for the sensitive and the detect settings (default {OPT_IN_SEEDS})",
    )
    parser.add_argument(
        "--settle", type=float, default=twin.LIVE.settle.total_seconds(), help="canary's settle, s"
    )
    parser.add_argument(
        "--tick", type=float, default=twin.LIVE.tick.total_seconds(), help="canary's tick, s"
    )
    parser.add_argument(
        "--staggered-scrapes",
        action="store_true",
        help="Prometheus scrapes each pod at its own moment (default: all pods at once)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--out", default="docs/benchmarks.md")
    return parser


def cells(args: argparse.Namespace, chosen: Sequence[Scenario]) -> dict[tuple[str, str], int]:
    """Every (scenario, gate) cell to run, with its number of seeds."""
    out: dict[tuple[str, str], int] = {}
    for scenario in chosen:
        for gate in args.gates:
            if not applies(gate, scenario):
                continue
            seeds = args.seeds or scenario.seeds
            if args.others and not scenario.key.startswith(("S1", "S2", "S3")):
                seeds = min(seeds, args.others)
            if gate in ONLY_ON:
                seeds = min(seeds, args.sensitive_seeds or OPT_IN_SEEDS)
            out[(scenario.key, gate)] = seeds
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print (and write) the table."""
    args = parser().parse_args(argv)
    chosen = [BY_KEY[k] for k in args.only] if args.only else list(SCENARIOS)
    started = time.monotonic()
    loop = twin.Loop(timedelta(seconds=args.settle), timedelta(seconds=args.tick))
    seeds_of = cells(args, chosen)
    tasks = [
        (key, gate, s, min(50, seeds - s), loop, args.staggered_scrapes)
        for (key, gate), seeds in seeds_of.items()
        for s in range(0, seeds, 50)
    ]
    results: dict[tuple[str, str], list[Outcome]] = {}
    with multiprocessing.get_context("fork").Pool(max(1, min(args.workers, 2))) as pool:
        finished = pool.imap(_task, tasks)
        for done, ((key, gate, *_), outcomes) in enumerate(zip(tasks, finished, strict=True), 1):
            results.setdefault((key, gate), []).extend(outcomes)
            if done % 20 == 0 or done == len(tasks):
                spent = time.monotonic() - started
                print(f"{done}/{len(tasks)} tasks, {spent:.0f} s", file=sys.stderr, flush=True)
    rows: list[list[str]] = []
    for scenario in chosen:
        for gate in args.gates:
            if not applies(gate, scenario):
                continue
            name = name_of(gate)
            rows.append(row(scenario, name, results[(scenario.key, gate)]))
    elapsed = time.monotonic() - started
    table = markdown(rows)
    print(table)
    print(f"\n{len(tasks)} tasks, {elapsed:.0f} s", file=sys.stderr)
    baselines = {g: name_of(g) for g in args.gates if g in GATES}
    for line in targets(results, chosen, baselines):
        print(line)
    if not args.no_write:
        command = "python -m bench.gates " + " ".join(argv if argv is not None else sys.argv[1:])
        seeds = {s.key: seeds_of[(s.key, "ours")] for s in chosen if (s.key, "ours") in seeds_of}
        machine = (
            f"{platform.machine()}, {os.cpu_count()} cores (shared), "
            f"Python {platform.python_version()}, {args.workers} worker processes"
        )
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        text = render(
            table=table,
            scenarios=chosen,
            results=results,
            command=command.strip(),
            machine=machine,
            when=when,
            elapsed=elapsed,
            seeds=seeds,
            baselines=baselines,
        )
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(splice(out.read_text() if out.exists() else "", text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
