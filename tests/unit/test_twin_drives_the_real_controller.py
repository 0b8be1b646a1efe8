"""The benchmark's digital twin (``bench.twin``): the real controller in virtual time against
simulated ports. Checked end to end on fixed seeds (deterministic, so no false-failure rate to
state: a seed's run is the same on every machine), against Prometheus' JSON path, and by replay:
the measuring inputs recorded from one run, replayed without the traffic simulator, give the
same decisions at the same virtual times."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bench import gates, twin, twin_speed
from bench.scenarios import BY_KEY, SCENARIOS
from bench.world import CANARY, World
from canary.core import evidence
from canary.ports import Arms, MetricProvider
from tests.fakes import FakeClock


def test_twin_rolls_back_a_failing_canary_and_promotes_a_healthy_one() -> None:
    """100%-error canaries roll back with traffic back on stable; healthy ones reach 100%."""
    for seed in range(3):
        bad = twin.run(BY_KEY["S2-errors"], seed)
        assert bad.phase == "RolledBack"
        assert bad.world.weight == 0
        assert bad.world.canary_failures() > 0
        assert [d.weight for d in bad.trace if d.weight is not None][-1] == 0
        assert any(d.phase == "Progressing" and d.weight == 5 for d in bad.trace)
        good = twin.run(BY_KEY["S1"], seed)
        assert good.phase == "Promoting"
        assert good.world.full_at is not None
        weights = [d.weight or 0 for d in good.trace if d.phase == "Progressing"]
        assert sorted(set(weights)) == [5, 10, 20, 50, 100]


def test_twin_snapshots_equal_prometheus_json_through_evidence_parse() -> None:
    """The twin's fast snapshot equals what ``evidence.parse`` makes of the query's JSON, on
    every scrape of scenarios with a crash-looping canary, a flap and a bad stable pod."""
    for key in ("S2-crash", "S6-flapping", "S6-bad-stable-pod", "S4-fastfail"):
        world = World(BY_KEY[key], 3)
        world.set_weight(20)
        world.scale_canary(2)
        world.run_until(120)
        direct, via_json = twin.TwinMetrics(world), twin.TwinMetrics(world, as_json=True)
        assert world.scrapes
        for _, pods in world.scrapes:
            assert direct.parse(pods) == via_json.parse(pods)
        assert any(k.deployment == CANARY for k in direct.parse(world.scrapes[-1][1])) == (
            key != "S2-crash"
        )


@dataclass
class Recording:
    """A ``MetricProvider`` that records every answer of the twin's, with its time."""

    inner: MetricProvider
    clock: FakeClock
    answers: dict[datetime, evidence.Snapshot] = field(default_factory=dict)

    def snapshot(
        self, targets: Sequence[Arms], buckets: Collection[Arms] | None = None
    ) -> evidence.Snapshot:
        out = self.inner.snapshot(targets, buckets)
        self.answers[self.clock.now()] = out
        return out

    def value(self, query: str) -> float | None:
        return self.inner.value(query)


@dataclass
class Replay:
    """A ``MetricProvider`` that answers only from a recording (never from the simulator)."""

    answers: dict[datetime, evidence.Snapshot]
    clock: FakeClock

    def snapshot(
        self, targets: Sequence[Arms], buckets: Collection[Arms] | None = None
    ) -> evidence.Snapshot:
        return self.answers[self.clock.now()]

    def value(self, query: str) -> float | None:
        return None


def test_recorded_measuring_inputs_replay_to_the_same_decisions() -> None:
    """One recorded run (a 2× regression on 0.5% that passes three steps, then fails): replaying
    only its Prometheus answers gives the same phases, steps and weights at the same times."""
    recorded: list[Recording] = []

    def record(world: World, clock: FakeClock) -> MetricProvider:
        recorded.append(Recording(twin.TwinMetrics(world), clock))
        return recorded[-1]

    scenario = BY_KEY["S3-2x-0.5%"]
    live = twin.run(scenario, 10, metrics=record)
    assert live.phase == "RolledBack"
    assert max(d.step for d in live.trace) == 3  # it passed three steps before failing
    answers = recorded[0].answers
    replayed = twin.run(scenario, 10, metrics=lambda _, clock: Replay(answers, clock))
    assert replayed.trace == live.trace
    assert len(answers) > 10


def test_reduced_benchmark_runs_the_twin_end_to_end(capsys: object) -> None:
    """``bench.gates`` with the twin as 'ours', reduced: every cell present, 100% errors caught."""
    assert gates.main(["--only", "S2-errors", "--seeds", "3", "--no-write", "--workers", "1"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    rows = [line for line in out.splitlines() if line.startswith("| S2-errors |")]
    assert len(rows) == 4
    ours = next(r for r in rows if r.startswith("| S2-errors | ours |"))
    assert "missed 0.0%" in ours


def test_a_crash_looping_canary_is_rolled_back_once_no_pod_has_been_ready_for_30s() -> None:
    """S2-crash: the canary's pods are ready for a moment, then crash for good; the controller
    sees no canary pod ready while the route sends it 5% (as Kubernetes reports them) and rolls
    back 30 s later (``progressDeadline.canaryUnavailable``'s default), not at the 10-minute
    progress deadline; the requests sent to the canary meanwhile failed (about 175, where
    waiting for the deadline cost about 2,900)."""
    for seed in range(2):
        done = twin.run(BY_KEY["S2-crash"], seed)
        assert done.phase == "RolledBack"
        assert "no canary pod was ready for 30s" in done.message
        assert 30 <= done.ended_s < 90
        assert done.world.weight == 0
        assert 0 < done.world.canary_failures() < 500
        assert done.world.canary_pods == ()


def test_the_default_benchmark_runs_every_cell_with_the_seeds_its_targets_need() -> None:
    """``make bench-gates`` with no arguments: every scenario under ours and the three
    baselines; 3000 seeds wherever the target is ≤ 1% false rollbacks (every healthy
    scenario), at least 1000 elsewhere, and 1000 for the opt-in settings."""
    planned = gates.cells(gates.parser().parse_args([]), SCENARIOS)
    for scenario in SCENARIOS:
        for gate in ("ours", "flagger", "argo0", "argo3"):
            seeds = planned[(scenario.key, gate)]
            assert seeds == 3000 if not scenario.bad else seeds >= 1000
    opt_in = {cell: n for cell, n in planned.items() if cell[1] in gates.ONLY_ON}
    assert opt_in
    assert set(opt_in.values()) == {1000}


def test_the_speed_table_times_every_cell_and_projects_the_full_run(capsys: object) -> None:
    """``bench.twin_speed`` on one scenario: a row per gate with its default seeds, and the
    projection line."""
    assert twin_speed.main(["--seeds", "1", "--only", "S2-errors"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    rows = [line for line in out.splitlines() if line.startswith("| S2-errors |")]
    assert sorted(r.split(" | ")[1] for r in rows) == ["argo0", "argo3", "flagger", "ours"]
    assert all(r.split(" | ")[4] == "3000" for r in rows)
    assert "4 cells, 12000 runs" in out
