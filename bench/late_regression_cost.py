"""Why a regression that starts at a later step costs more failed requests than the same
regression from the start: the test's share and the loop's share (issue 15; docs/analysis.md,
"A canary that turns bad later").

The error comparison conditions on the failures both arms served in the same windows: under the
null a failure falls on the canary with the canary's share ``q`` of the requests, under a ratio
``κ`` with ``κq / (κq + 1 − q)``. So each canary failure carries less evidence the larger the
canary's share — at 50% a failure on the canary is at most twice as likely under the
alternative as under the null, at 5% about ten times — and a later step's restart of the test
has a smaller prior weight in the e-detector (``sequential.change_point_weight``), so a higher
bar. For each step this prints:

- the bar the restarted comparison must reach in a settled window (``judge.errors_limit`` over
  the change-point weight of a regression starting at that step);
- the information per canary failure, ``KL(alternative ‖ null)`` per failure over the chance
  that a failure is the canary's, for the true ratio;
- the canary failures an oracle needs on average (Wald's approximation: the log bar over
  that information, the ratio known), and the mean the judge's own e-value needs
  (``sequential.comparison_log_e`` with its mixture of ratios), simulated failure by failure
  with every failure seen at once — no settle, scrape, tick or route change (means: the
  count is lumpy, a median jumps between the few counts at which the e-value can cross);
- the failed requests the twin measured for the scenario, the loop included (mean and
  median over the rolled-back runs): the difference of the means is the loop's share.

``python -m bench.late_regression_cost [--seeds N] [--draws N]`` (about a CPU minute).
"""

from __future__ import annotations

import argparse
import functools
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bench import twin
from bench.scenarios import BY_KEY
from canary.core import judge, plan, sequential
from canary.model.policy import PolicyFields

RATIO = 20.0
"""The regression: the canary fails 20x as often as the stable (0.1% → 2%)."""


@dataclass(frozen=True)
class Case:
    """One regression: the step (0-based) at which it starts, that step's weight, and the twin
    scenario that measures it."""

    step: int
    weight: float
    scenario: str


CASES = (
    Case(0, 5.0, "S3-20x-0.1%"),
    Case(1, 10.0, "S8-20x-after1"),
    Case(2, 20.0, "S8-20x-after2"),
    Case(3, 50.0, "S8-20x-after3"),
)


def canary_chance(share: float, ratio: float) -> float:
    """The chance that a failure is the canary's, the canary serving ``share`` of the requests
    and failing ``ratio`` times as often as the stable."""
    return share * ratio / (share * ratio + 1.0 - share)


def bar(thresholds: judge.Thresholds, step: int) -> float:
    """The e-value the comparison restarted at ``step`` must reach alone to fail a settled
    window: the e-detector sums ``w_j·E_j``, so ``E_step`` must reach the bar over ``w_step``."""
    return judge.errors_limit(thresholds) / sequential.change_point_weight(step)


def information(share: float, ratio: float) -> float:
    """Expected log-likelihood ratio per canary failure, the true ratio known."""
    alternative = canary_chance(share, ratio)
    null = canary_chance(share, 1.0)
    return sequential.bernoulli_kl(alternative, null) / alternative


def judge_failures(share: float, ratio: float, limit: float, draws: int, seed: int) -> float:
    """The mean canary failures the judge's mixture e-value needs to reach ``limit``, every
    failure seen as it happens."""
    rng = random.Random(seed)
    chance = canary_chance(share, ratio)
    threshold = math.log(limit)
    needed: list[int] = []
    for _ in range(draws):
        canary = stable = 0
        while True:
            if rng.random() < chance:
                canary += 1
            else:
                stable += 1
            log_e = sequential.comparison_log_e(
                [(canary, stable, share)], 1.0, sequential.ERROR_MIXTURE
            )
            if log_e >= threshold:
                needed.append(canary)
                break
    return statistics.fmean(needed)


@dataclass(frozen=True)
class Cost:
    """What the test alone needs for a regression starting at one step."""

    bar: float
    per_failure: float
    oracle: float
    judge: float


@functools.cache
def cost(case: Case, draws: int = 2000) -> Cost:
    """The bar, the information per canary failure, and the canary failures the oracle and the
    judge's e-value need on average, at the benchmark's default analysis."""
    thresholds = plan.thresholds(PolicyFields.model_validate({"analysis": twin.ANALYSIS}))
    share = case.weight / 100.0
    limit = bar(thresholds, case.step)
    per_failure = information(share, RATIO)
    test = judge_failures(share, RATIO, limit, draws, seed=case.step)
    return Cost(limit, per_failure, math.log(limit) / per_failure, test)


def measured(key: str, seeds: int) -> tuple[list[float], int]:
    """The twin's failed requests over the rolled-back runs, and how many runs were not."""
    runs = [twin.run(BY_KEY[key], seed) for seed in range(seeds)]
    back = [run for run in runs if run.phase in twin.ROLLED_BACK]
    return [float(run.world.canary_failures()) for run in back], len(runs) - len(back)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200, help="twin runs per scenario")
    parser.add_argument("--draws", type=int, default=2000, help="simulated failure sequences")
    args = parser.parse_args(argv)
    twin.quiet()
    print(
        "| starts at | bar | nats per canary failure | oracle (mean) | judge's e-value (mean) "
        "| twin, loop included (mean / median) | not rolled back |"
    )
    print("|---|---|---|---|---|---|---|")
    for case in CASES:
        found = cost(case, args.draws)
        failed, missed = measured(case.scenario, args.seeds)
        shown = f"{statistics.fmean(failed):.1f} / {statistics.median(failed):g}" if failed else "—"
        print(
            f"| step {case.step + 1} ({case.weight:g}%, {case.scenario}) | {found.bar:,.0f} "
            f"| {found.per_failure:.2f} | {found.oracle:.1f} | {found.judge:.1f} | {shown} "
            f"| {missed} of {args.seeds} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
