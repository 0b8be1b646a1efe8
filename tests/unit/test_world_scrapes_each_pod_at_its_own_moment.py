"""The gate benchmark's world with ``staggered`` scrapes (``bench.world``): Prometheus scrapes
each pod at its own phase of the interval, as it scrapes each target at an offset of its own, so
a scrape holds the counters of the pods scraped at that moment and the others' last scraped
ones (what an instant query returns). By default every pod is scraped at once, as before."""

from __future__ import annotations

import itertools

from bench.scenarios import Scenario, behaviour
from bench.world import CANARY, SCRAPE_INTERVAL_S, SCRAPE_JITTER_S, STABLE_PODS, World
from canary.sim.traffic import Counters

STEADY = Scenario("steady", "no errors", behaviour(0.0), behaviour(0.0), bad=False)


def _changes(world: World) -> list[tuple[float, set[str]]]:
    """Each scrape's time and the pods whose counters it changed from the scrape before."""
    out: list[tuple[float, set[str]]] = []
    before: dict[str, Counters] = {}
    for at, pods in world.scrapes:
        out.append((at, {p for p, c in pods.items() if before.get(p) != c}))
        before = pods
    return out


def test_each_pod_is_scraped_at_its_own_moment_every_interval() -> None:
    """Under traffic every scrape changes one pod's counters (the pods' phases differ), each
    pod's scrapes come an interval apart (give or take the jitter, or more for a lost
    scrape); the other pods keep their last scraped counters."""
    for seed in range(5):
        world = World(STEADY, seed, staggered=True)
        world.set_weight(50.0)
        world.run_until(120.0)
        changes = [(at, pods) for at, pods in _changes(world) if at > 10.0]
        assert all(len(pods) == 1 for _, pods in changes)
        for pod in world.deployment:
            times = [at for at, pods in changes if pod in pods]
            gaps = [b - a for a, b in itertools.pairwise(times)]
            assert len(times) >= 8
            for gap in gaps:
                near = min(abs(gap - k * SCRAPE_INTERVAL_S) for k in (1, 2, 3))
                assert near <= 2 * SCRAPE_JITTER_S + 1e-6, (pod, gap)


def test_a_stable_pods_requests_reach_prometheus_apart_from_the_canarys() -> None:
    """What the early look met live (docs/benchmarks.md, run H): with the canary serving,
    some scrapes bring stable requests and no canary ones. All pods at once, never."""
    canary_pod = next(p for p, d in World(STEADY, 0).deployment.items() if d == CANARY)
    for staggered, expected in ((True, True), (False, False)):
        seen = False
        for seed in range(5):
            world = World(STEADY, seed, staggered=staggered)
            world.set_weight(50.0)
            world.run_until(90.0)
            for at, pods in _changes(world):
                if at > 10.0 and pods & set(STABLE_PODS) and canary_pod not in pods:
                    seen = True
        assert seen is expected


def test_a_new_canary_pod_gets_its_own_phase_and_is_scraped_within_an_interval() -> None:
    """A canary pod made ready at 33 s is scraped within an interval (and the jitter), and the
    canary's pods are not scraped together."""
    for seed in range(5):
        world = World(STEADY, seed, staggered=True)
        world.set_weight(50.0)
        world.run_until(33.0)
        world.scale_canary(2)
        new = world.canary_pods[1]
        world.run_until(33.0 + SCRAPE_INTERVAL_S + SCRAPE_JITTER_S + 1e-6)
        assert any(new in pods for at, pods in world.scrapes if at >= 33.0)
        world.run_until(120.0)
        both = set(world.canary_pods)
        assert not any(both <= pods for at, pods in _changes(world) if at > 45.0)


def test_all_pods_are_scraped_at_once_by_default() -> None:
    """The default world, every benchmark's until now: every scrape holds every pod's
    counters of that moment."""
    world = World(STEADY, 1)
    world.set_weight(50.0)
    world.run_until(60.0)
    assert all(len(pods) == len(world.deployment) for at, pods in _changes(world) if at > 10.0)
