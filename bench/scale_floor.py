"""The scale benchmark's bad release on the twin: its reaction when nothing costs any time
(issue 16; docs/benchmarks.md).

``bench.scale`` times each bad Rollout from the first sample of its canary's failures in
Prometheus to its route back at 0% canary. Part of that is the evidence: at 20 req/s, 5% of
them to a canary failing 30%, a failure comes every 3.3 s on average, and Prometheus sees them
in batches every 10 s. The rest is the machine: Prometheus' query, the tick, the queue, the
reconcile, the route write. Here the real controller (``bench.twin``) releases the same bad
canary in virtual time, with the same policy (``bench.scale.scale_analysis``), tick (5 s),
settle, steps and traffic, on a machine where nothing takes time. What it prints is the
reaction no number of Rollouts, and no faster machine, can beat at this traffic; the live
figures at N = 10, 100 and 1000 are read against it.

Timed per seed, as ``bench.scale`` does: from the first scrape holding a canary failure to the
controller's write of the route back at 0 (the harness reads the route's spec); and, for the
evidence alone, from that scrape to the scrape holding the canary's 6th failure.

    python -m bench.scale_floor                # 2,000 seeds, about a minute
    python -m bench.scale_floor --rps 100      # a busier app
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bench import twin
from bench.scale import BAD_ERROR_RATE, STABLE_ERROR_RATE, Setup, quantile, scale_analysis
from bench.scenarios import Scenario
from bench.world import CANARY, World
from canary.sim.traffic import Behaviour

FAILURES = 6
"""The evidence column's count, the one run V's live split used (1st → 6th failure, p99 30.1 s):
about what the judge needs at 30% against 0.1% (62 of 3,000 twin runs rolled back on fewer)."""

BLOCKS = ((10, 100), (100, 1000))
"""Seeds per block, and the N whose bad Rollouts they are as many as: ``bench.scale``'s p99
over that many values is the most of them."""


@dataclass(frozen=True)
class Reaction:
    """One seed's bad release: seconds from its first visible failure to the route written back
    at 0, and to the scrape holding its ``FAILURES``-th failure (None: never that many)."""

    reaction: float
    evidence: float | None


def scenario(rps: float) -> Scenario:
    """The scale benchmark's bad release: stable failing 0.1%, canary 30%, ``rps`` req/s."""
    return Scenario(
        key="scale-bad",
        title=f"canary {BAD_ERROR_RATE:.0%} errors, {rps:g} req/s",
        stable=Behaviour(error_rate=STABLE_ERROR_RATE),
        canary=Behaviour(error_rate=BAD_ERROR_RATE),
        bad=True,
        rps=rps,
    )


def canary_failures_at(world: World) -> list[tuple[float, int]]:
    """Each scrape's time and the canary's failures it holds (cumulative)."""
    canary = [pod for pod, deployment in world.deployment.items() if deployment == CANARY]
    return [(at, sum(pods[p].failures for p in canary if p in pods)) for at, pods in world.scrapes]


def route_back_at(run: twin.TwinRun) -> float | None:
    """When the controller wrote the route back at 0% canary after it began rolling back."""
    rolling = False
    for decided in run.trace:
        rolling = rolling or decided.phase in twin.ROLLED_BACK
        if rolling and decided.weight == 0:
            return decided.seconds
    return None


def measure(
    seed: int, rps: float, interval: str, tick: timedelta, *, staggered: bool = False
) -> Reaction | None:
    """One bad release on the twin; None if it was not rolled back (a missed regression) or
    showed no failure. With ``staggered``, Prometheus scrapes each pod at its own moment."""
    run = twin.run(
        scenario(rps), seed, analysis=scale_analysis(interval), tick=tick, staggered=staggered
    )
    back = route_back_at(run)
    if run.phase not in twin.ROLLED_BACK or back is None:
        return None
    seen = [(at, failures) for at, failures in canary_failures_at(run.world) if failures > 0]
    if not seen:
        return None
    first = seen[0][0]
    enough = next((at for at, failures in seen if failures >= FAILURES), None)
    return Reaction(back - first, None if enough is None else enough - first)


def row(label: str, values: list[float]) -> str:
    """A table row: median, p90, p99 and the most, in seconds."""
    cells = (statistics.median(values), *(quantile(values, q) for q in (0.9, 0.99, 1.0)))
    return f"| {label} | " + " | ".join(f"{v:.1f}" for v in cells) + " |"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2000, help="bad releases (2000)")
    parser.add_argument("--rps", type=float, default=Setup.rps, help="the app's req/s (20)")
    parser.add_argument("--interval", default=Setup.interval, help="analysis interval (15s)")
    parser.add_argument("--tick", type=float, default=5.0, help="measuring tick, s (5)")
    parser.add_argument(
        "--staggered-scrapes",
        action="store_true",
        help="Prometheus scrapes each pod at its own moment (default: all pods at once)",
    )
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    twin.quiet()
    began = time.monotonic()
    results = [
        measure(
            seed,
            args.rps,
            args.interval,
            timedelta(seconds=args.tick),
            staggered=args.staggered_scrapes,
        )
        for seed in range(args.seeds)
    ]
    rolled = [r for r in results if r is not None]
    if not rolled:
        print("no seed was rolled back", file=sys.stderr)
        return 1
    evidence = [r.evidence for r in rolled if r.evidence is not None]
    print(
        f"`python -m bench.scale_floor --seeds {args.seeds} --rps {args.rps:g} "
        f"--interval {args.interval} --tick {args.tick:g}"
        f"{' --staggered-scrapes' if args.staggered_scrapes else ''}`, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{time.monotonic() - began:.0f} s. {len(rolled)} of {args.seeds} rolled back; "
        f"{len(evidence)} showed {FAILURES} failures first.\n"
    )
    print("| seconds from the first failure in Prometheus | median | p90 | p99 | most |")
    print("|---|---|---|---|---|")
    reactions = [r.reaction for r in rolled]
    print(row("to the route written back at 0% (the reaction)", reactions))
    if evidence:
        print(row(f"to the scrape holding the {FAILURES}th failure (evidence)", evidence))
    for size, n in BLOCKS:
        blocks = [max(reactions[i : i + size]) for i in range(0, len(reactions) - size + 1, size)]
        if len(blocks) >= 2:
            print(
                f"\nThe reaction's most over each {size} seeds in turn ({len(blocks)} blocks; "
                f"`bench.scale`'s p99 at N = {n}, over {size} bad Rollouts, is their most): "
                f"median {statistics.median(blocks):.1f} s, least {min(blocks):.1f} s, "
                f"most {max(blocks):.1f} s."
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
