"""bench.scale_floor releases bench.scale's bad canary on the twin and times it as bench.scale
does: from the first scrape holding a canary failure to the route written back at 0."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bench import scale, scale_floor, twin
from bench.twin import Decided
from bench.world import World


def _run(*trace: Decided) -> twin.TwinRun:
    world = World(scale_floor.scenario(20), 0)
    return twin.TwinRun("RolledBack", 0.0, world, 0, trace)


def test_the_route_back_is_the_first_zero_weight_after_the_rollback_began() -> None:
    """A weight of 0 before the canary got traffic is not the route back; None if never back."""
    run = _run(
        Decided(1.0, "Progressing", 0, 0),
        Decided(20.0, "Progressing", 0, 5),
        Decided(45.0, "RollingBack", 0, 5),
        Decided(46.0, "RollingBack", 0, 0),
        Decided(60.0, "RolledBack", 0, 0),
    )
    assert scale_floor.route_back_at(run) == 46.0
    assert scale_floor.route_back_at(_run(Decided(1.0, "Progressing", 0, 0))) is None


def test_the_twin_runs_the_scale_runs_release() -> None:
    """Same error rates and traffic as bench.scale; every seed here is rolled back, its route
    written back after its first failure was visible."""
    bad = scale_floor.scenario(20)
    assert (bad.stable.error_rate, bad.canary.error_rate, bad.rps) == (
        scale.STABLE_ERROR_RATE,
        scale.BAD_ERROR_RATE,
        scale.Setup.rps,
    )
    for seed in range(5):
        found = scale_floor.measure(seed, 20, "15s", timedelta(seconds=5))
        assert found is not None
        assert found.reaction > 0
        assert found.evidence is None or found.evidence >= 0


def test_the_table_prints_the_reaction_and_the_most_of_each_block(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert scale_floor.main(["--seeds", "20"]) == 0
    out = capsys.readouterr().out
    assert "20 of 20 rolled back" in out
    assert "| to the route written back at 0% (the reaction) |" in out
    assert "over each 10 seeds in turn (2 blocks" in out
