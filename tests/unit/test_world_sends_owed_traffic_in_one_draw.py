"""The gate benchmark's world (``bench.world``) simulates traffic lazily: the seconds are owed
until a scrape reads the counters or what shapes the traffic changes, then sent in one draw.
The owed traffic is always sent under the route and behaviours in effect when it was owed, and
what the scrapes see keeps the traffic model's law (one statistical check, its false-failure
rate stated)."""

from __future__ import annotations

import math
import statistics

from bench.scenarios import Flap, Scenario, behaviour
from bench.world import CANARY_PODS, STABLE_PODS, WARMUP_S, World

STEADY = Scenario("steady", "no errors", behaviour(0.0), behaviour(0.0), bad=False)
TURNS = Scenario(
    "turns", "fails all from 50%", behaviour(0.0), behaviour(1.0), bad=True, bad_from_weight=50
)

FLAPS = Scenario(
    "flaps",
    "a dependency failing everything in spells",
    behaviour(0.0),
    behaviour(0.0),
    bad=False,
    flap=Flap(segment_s=20.0, probability=0.5, error_rate=1.0),
)


def _requests(world: World, pods: tuple[str, ...]) -> int:
    world.flush()
    return sum(world.mesh.inbound(p).requests for p in pods)


def test_traffic_owed_before_a_weight_change_goes_by_the_old_weight() -> None:
    """Before 100% takes effect the canary gets nothing; after it the stable gets nothing,
    in every scrape, though the seconds around the change were owed and sent together."""
    for seed in range(5):
        world = World(STEADY, seed)
        world.run_until(33.0)
        at = world.set_weight(100.0)
        world.run_until(at + 60.0)
        stable_after = _requests(world, STABLE_PODS)
        for scraped_at, pods in world.scrapes:
            canary = sum(pods[p].requests for p in CANARY_PODS)
            stable = sum(pods[p].requests for p in STABLE_PODS)
            if scraped_at < at:
                assert canary == 0
            else:
                assert stable == stable_after
        assert _requests(world, CANARY_PODS) > 0


def test_traffic_owed_before_a_behaviour_change_keeps_the_old_behaviour() -> None:
    """A canary that starts failing at 50%: the requests it served at 20% all succeeded, and
    every request it served from 50% on failed."""
    for seed in range(5):
        world = World(TURNS, seed)
        world.run_until(7.0)
        world.run_until(world.set_weight(20.0) + 41.0)
        at = world.set_weight(50.0)
        world.run_until(at)
        before = _requests(world, CANARY_PODS)
        assert before > 0
        assert world.canary_failures() == 0
        world.run_until(at + 39.0)
        assert world.canary_failures() == _requests(world, CANARY_PODS) - before > 0


def test_traffic_owed_before_a_flap_keeps_the_behaviour_it_was_owed_under() -> None:
    """A shared dependency failing every request in random spells: over each spell exactly
    every request failed, and outside them none, though traffic is sent only at scrapes."""
    spells = 0
    for seed in range(5):
        world = World(FLAPS, seed)
        world.run_until(0.0)
        world.flush()
        while world.now < 300.0:
            flapping = world.flapping
            requests, failures = _counts(world)
            world.run_until(world.next_flap)
            more, failed = _counts(world)
            assert failed - failures == (more - requests if flapping else 0)
            spells += flapping
    assert spells > 10


def _counts(world: World) -> tuple[int, int]:
    world.flush()
    counters = [world.mesh.inbound(p) for p in STABLE_PODS]
    return sum(c.requests for c in counters), sum(c.failures for c in counters)


def test_scraped_requests_are_poisson_over_the_whole_time() -> None:
    """Requests counted by a world's last scrape are Poisson at 100 req/s over all the time up
    to that scrape (warm-up included): over 200 seeds the standardised counts have mean 0 and
    variance 1. False-failure rate: the mean is outside ±3.9/√200 with probability 9.6e-5, the
    variance (χ² with 199 degrees of freedom) outside [0.6, 1.45] with 7e-5; < 2e-4 in all."""
    scores = []
    for seed in range(200):
        world = World(STEADY, seed)
        world.run_until(97.0)
        scraped_at, pods = world.scrapes[-1]
        expected = 100.0 * (scraped_at + WARMUP_S)
        counted = sum(c.requests for c in pods.values())
        scores.append((counted - expected) / math.sqrt(expected))
    assert abs(statistics.fmean(scores)) < 3.9 / math.sqrt(200)
    assert 0.6 < statistics.variance(scores) < 1.45
