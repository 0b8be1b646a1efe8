"""canary's own gate, driven the way the controller drives it.

Each tick: the tick query's result (built from the newest scrape, in Prometheus' JSON shape) →
``evidence.parse`` → ``evidence.advance`` against the previous tick's baseline → per-Deployment
deltas added to the current step's arms → ``judge.evaluate``. The verdict acts as the state
machine does: FAIL rolls back at once, PASS moves to the next step (evidence starts afresh; the
finished step's counts go into ``Evidence.earlier``) or promotes after the last, INCONCLUSIVE
keeps collecting, NO_DATA holds and rolls back after the no-data timeout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.baselines import P99_MAX_MS, STEPS, SUCCESS_RATE_MIN
from bench.world import CANARY, NAMESPACE, STABLE, World, samples
from canary.core import evidence, judge

DEFAULT_THRESHOLDS = judge.Thresholds(
    min_requests=200,
    success_rate_min=SUCCESS_RATE_MIN,
    latency_percentile=99.0,
    latency_max_ms=P99_MAX_MS,
)
"""Default analysis settings, with the same absolute SLOs the baselines are given."""

NO_DATA_TIMEOUT_S = 600.0


@dataclass
class Ours:
    """The controller's loop around the judge."""

    thresholds: judge.Thresholds = DEFAULT_THRESHOLDS
    name: str = "ours"
    interval_s: float = 15.0
    step: int = 0
    baseline: dict[evidence.PodKey, evidence.PodCounters] | None = None
    canary: judge.Arm = field(default_factory=judge.Arm)
    stable: judge.Arm = field(default_factory=judge.Arm)
    earlier: list[judge.Evidence] = field(default_factory=list)
    no_data_since: float | None = None
    last: judge.Judgement | None = None

    def _read(self, world: World) -> dict[tuple[str, str], judge.Arm]:
        scrape = world.latest(world.now)
        snapshot = evidence.parse(samples(scrape[1], world.deployment)) if scrape else {}
        self.baseline, deltas = evidence.advance(self.baseline, snapshot)
        return deltas

    def start(self, world: World) -> None:
        self._read(world)
        world.set_weight(STEPS[0])

    def tick(self, world: World) -> str | None:
        deltas = self._read(world)
        self.canary = self.canary + deltas.get((NAMESPACE, CANARY), judge.Arm())
        self.stable = self.stable + deltas.get((NAMESPACE, STABLE), judge.Arm())
        now = judge.Evidence(
            canary=self.canary,
            stable=self.stable,
            canary_weight=float(STEPS[self.step]),
            earlier=tuple(self.earlier),
        )
        self.last = result = judge.evaluate(self.thresholds, now)
        if result.verdict == judge.Verdict.FAIL:
            return "rollback"
        if result.verdict == judge.Verdict.NO_DATA:
            if self.no_data_since is None:
                self.no_data_since = world.now
            return "rollback" if world.now - self.no_data_since >= NO_DATA_TIMEOUT_S else None
        self.no_data_since = None
        if result.verdict == judge.Verdict.INCONCLUSIVE:
            return None
        if self.step == len(STEPS) - 1:
            return "promote"
        self.earlier.append(now)
        self.step += 1
        self.canary, self.stable = judge.Arm(), judge.Arm()
        world.set_weight(STEPS[self.step])
        return None
