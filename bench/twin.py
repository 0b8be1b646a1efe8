"""The digital twin: canary's real controller, run in virtual time against a simulated cluster.

The benchmark's "ours" is not a model of the controller: it is ``canary.runtime.controller``'s
``Controller`` (its work queue, measuring tick and ``canary.core.measuring`` windows) driving the
real ``Reconciler``, which runs the real ``machine.decide`` and ``judge`` on a real ``Rollout``.
Only the ports are simulated, each over ``bench.world.World`` (``canary.sim.traffic``'s mesh and
Prometheus-like scrapes every 10 s with jitter and loss):

- the Rollout store is ``canary.runtime.memory``'s contract-tested ``MemoryRolloutStore``;
- the router is the contract-tested ``MemoryRouter`` with a mesh that accepts a changed route
  when the new weight takes effect in the world (after the world's 1–3 s actuation delay);
- the workloads report the stable Deployment, the canary Deployment (its pods start
  ``POD_START_S`` after they are asked for, then take traffic) and the Services;
- the metric provider answers the one counters query from the newest scrape, in Prometheus'
  JSON shape, through ``evidence.parse`` as ``PrometheusMetrics`` does;
- the clock is virtual: the driver jumps from one due thing to the next (a queued reconcile, the
  measuring tick, the resync, a pod becoming ready, a route accepted).

Watch events are delivered as the live feed would: a Deployment change wakes its Rollout.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import structlog

from bench.baselines import P99_MAX_MS, STEPS, SUCCESS_RATE_MIN
from bench.scenarios import Scenario
from bench.world import CANARY, NAMESPACE, STABLE, World, samples
from canary.core import evidence, measuring
from canary.core.plan import Plan
from canary.core.vocabulary import (
    Action,
    CanaryState,
    EnsureCanary,
    EnsureServices,
    Event,
    PromoteStable,
    RouteState,
    ScaleCanaryToZero,
    TargetState,
)
from canary.model.rollout import ROLLOUT_LABEL, Rollout
from canary.ports import Arms, Change, MetricProvider, WorkloadState
from canary.runtime.controller import Controller
from canary.runtime.memory import MemoryRolloutStore, MemoryRouter, VirtualClock
from canary.runtime.reconciler import Reconciler
from canary.runtime.recording import (
    RecordingMetrics,
    RecordingReconciler,
    RecordingRouter,
    RecordingStore,
    RecordingWorkloads,
    Tape,
)
from canary.sim.traffic import Counters

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ROLLOUT = "podinfo-2"
STABLE_REPLICAS = 3
POD_START_S = 5.0
"""Seconds from asking for canary pods (or a new stable template) to their being ready."""
CRASH_S = 5.0
"""Seconds a crash-looping canary's pods (a scenario whose canary serves nothing) stay ready
before they crash for good."""
TICK = timedelta(seconds=2)
"""``canary run --tick``'s default."""
RESYNC_S = 60.0


@dataclass(frozen=True)
class Loop:
    """The live loop's timing knobs (``canary run --settle/--tick``), to tune on the twin."""

    settle: timedelta = measuring.SETTLE
    tick: timedelta = TICK


LIVE = Loop()
"""``canary run``'s defaults."""
MAX_S = 6 * 3600.0

ANALYSIS: dict[str, Any] = {
    "successRate": {"min": SUCCESS_RATE_MIN},
    "latency": {"percentile": 99, "maxMs": int(P99_MAX_MS)},
}
"""The default analysis (``minRequestsPerStep`` left to its weight-scaled default), with the
same absolute SLOs the baselines are given."""


def quiet() -> None:
    """The benchmark runs thousands of rollouts: keep the controller's logs below critical."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


def rollout(analysis: dict[str, Any] | None = None, steps: Sequence[int] = STEPS) -> Rollout:
    """The Rollout of podinfo the twin releases: the given steps (the benchmark's by default)
    and analysis."""
    return Rollout.model_validate(
        {
            "metadata": {"name": ROLLOUT, "namespace": NAMESPACE, "generation": 1},
            "spec": {
                "targetRef": {"name": STABLE},
                "release": {"images": {STABLE: "podinfo:6.1.0"}},
                "service": {"name": STABLE, "port": 9898},
                "steps": [{"setWeight": w} for w in steps],
                "analysis": ANALYSIS if analysis is None else analysis,
            },
        }
    )


class Timers:
    """Things the simulated cluster will do at a virtual time."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._n = 0

    def at(self, when: float, do: Callable[[], None]) -> None:
        """Do ``do`` at ``when``."""
        self._n += 1
        heapq.heappush(self._heap, (when, self._n, do))

    def next(self) -> float | None:
        """When the next thing is due."""
        return self._heap[0][0] if self._heap else None

    def fire(self, now: float) -> None:
        """Do everything due by ``now``."""
        while self._heap and self._heap[0][0] <= now:
            heapq.heappop(self._heap)[2]()


@dataclass
class TwinWorkloads:
    """``ports.Workloads`` over the world: Deployments whose pods start after a delay."""

    world: World
    timers: Timers
    notify: Callable[[str], None]
    canary_replicas: int = 0
    canary_ready: int = 0
    canary_exists: bool = False
    services: bool = False
    has_release: bool = False
    stable_ready: bool = True

    def observe(self, namespace: str, rollout: str, plan: Plan) -> WorkloadState:
        """The Deployments and Services as they are now."""
        canary = (
            CanaryState(self.canary_replicas, self.canary_ready, current=True)
            if self.canary_exists
            else None
        )
        target = TargetState(STABLE_REPLICAS, self.stable_ready, self.has_release)
        return WorkloadState(target, True, canary, self.services)

    def apply(self, namespace: str, rollout: str, plan: Plan, action: Action) -> None:
        """Carry out one workload action; pods become ready ``POD_START_S`` later."""
        now = self.world.now
        match action:
            case EnsureServices():
                self.services = True
            case EnsureCanary(replicas=replicas) if replicas != self.canary_replicas:
                self.canary_exists = True
                self.canary_replicas = replicas
                self.canary_ready = min(self.canary_ready, replicas)
                self.world.scale_canary(self.canary_ready)
                self.timers.at(now + POD_START_S, lambda: self._ready(replicas))
            case ScaleCanaryToZero():
                self.canary_replicas = self.canary_ready = 0
                self.world.scale_canary(0)
            case PromoteStable() if not self.has_release:
                self.has_release, self.stable_ready = True, False
                self.timers.at(now + POD_START_S, self._stable_ready)
            case _:
                pass

    def _ready(self, replicas: int) -> None:
        if self.canary_replicas == replicas:
            self.canary_ready = replicas
            self.world.scale_canary(replicas)
            self.notify(CANARY)
            if not self.world.scenario.canary_serves:
                self.timers.at(self.world.now + CRASH_S, lambda: self._crashed(replicas))

    def _crashed(self, replicas: int) -> None:
        """A crash-looping canary's pods stop being ready (CrashLoopBackOff) and never stay
        ready again: as with Kubernetes, a pod that serves nothing is not a ready pod."""
        if self.canary_replicas == replicas and self.canary_ready:
            self.canary_ready = 0
            self.world.scale_canary(0)
            self.notify(CANARY)

    def _stable_ready(self) -> None:
        self.stable_ready = True
        self.notify(STABLE)


@dataclass
class TwinRouter:
    """``ports.TrafficRouter``: the contract-tested ``MemoryRouter``, whose pretend mesh accepts
    a changed route when the world's weight takes effect."""

    world: World
    timers: Timers
    routes: MemoryRouter = field(default_factory=lambda: MemoryRouter(auto_accept=False))
    writes: int = 0

    def observe(self, namespace: str, plan: Plan) -> RouteState | None:
        """The live weights."""
        return self.routes.observe(namespace, plan)

    def set_weights(self, namespace: str, plan: Plan, canary: int) -> None:
        """Write the weight; the mesh applies it after the actuation delay.

        As with Linkerd, a new route is accepted once the mesh has it, and a weight change never
        withdraws acceptance: the controller's settle time covers the delay."""
        before = self.routes.observe(namespace, plan)
        self.routes.set_weights(namespace, plan, canary)
        if before is None or before.canary_weight != canary:
            self.writes += 1
            at = self.world.set_weight(float(canary))
            if before is None:
                self.timers.at(at, lambda: self.routes.accept(namespace, plan))


def _pairs(targets: Iterable[Arms]) -> set[tuple[str, str]]:
    return {(a.namespace, name) for a in targets for name in (a.stable, a.canary)}


@dataclass
class TwinMetrics:
    """``ports.MetricProvider``: the counters query answered from the newest scrape.

    By default the snapshot is built straight from the scraped counters; with ``as_json`` it
    goes through Prometheus' JSON shape and ``evidence.parse``, as ``PrometheusMetrics`` does
    (a test checks the two agree; the direct way is several times faster)."""

    world: World
    as_json: bool = False
    _answer: tuple[float, frozenset[Arms], frozenset[Arms] | None, evidence.Snapshot] | None = None
    """The last answer: the scrape's time, the targets and buckets asked for, the snapshot."""

    def snapshot(
        self, targets: Sequence[Arms], buckets: Collection[Arms] | None = None
    ) -> evidence.Snapshot:
        """What Prometheus returns for the counters query now, buckets only for ``buckets``
        (None: all) (the same answer, not worked out again, until a newer scrape or other
        targets: the controller asks every tick)."""
        scrape = self.world.latest(self.world.now)
        if scrape is None:
            return {}
        asked = frozenset(targets)
        with_buckets = None if buckets is None else frozenset(buckets)
        if self._answer is None or self._answer[:3] != (scrape[0], asked, with_buckets):
            wanted = _pairs(asked)
            keep = wanted if with_buckets is None else _pairs(with_buckets)
            parsed = self.parse(scrape[1])
            self._answer = (
                scrape[0],
                asked,
                with_buckets,
                {
                    k: v if k.target in keep else replace(v, buckets=())
                    for k, v in parsed.items()
                    if k.target in wanted
                },
            )
        return self._answer[3]

    def parse(self, pods: Mapping[str, Counters]) -> evidence.Snapshot:
        """The snapshot of one scrape."""
        deployment = self.world.deployment
        if self.as_json:
            return evidence.parse(samples(pods, deployment))
        out: dict[evidence.PodKey, evidence.PodCounters] = {}
        for pod, counters in pods.items():
            if counters.requests == 0:
                continue
            failures = counters.failures
            out[evidence.PodKey(NAMESPACE, deployment[pod], pod)] = evidence.PodCounters(
                requests=counters.successes + failures,
                failures=failures,
                buckets=counters.latency_total.buckets,
            )
        return out

    def value(self, query: str) -> float | None:
        """No custom metrics in the benchmark."""
        return None


class NoEvents:
    """``ports.EventRecorder`` that drops Events."""

    def record(self, rollout: Rollout, event: Event) -> None:
        """Drop it."""


class Decided(NamedTuple):
    """What the controller had decided after a reconcile: phase, step, route weight."""

    seconds: float
    phase: str
    step: int
    weight: int | None


@dataclass(frozen=True)
class TwinRun:
    """How one twin run ended: the phase reached, when (virtual seconds), the world."""

    phase: str
    ended_s: float
    """Virtual seconds; for a rollback, until traffic was back on stable."""
    world: World
    reconciles: int
    trace: tuple[Decided, ...] = ()
    """Every change of phase, step or route weight, with its virtual time."""
    message: str = ""
    """The Rollout's status message when the run ended (why it rolled back)."""
    rollout: Rollout | None = None
    """The Rollout as the store held it when the run ended, status and all."""


ROLLED_BACK = frozenset({"RollingBack", "RolledBack", "Aborted", "Failed"})
PROMOTED = frozenset({"Promoting", "Succeeded"})


def _controller(
    store: MemoryRolloutStore,
    workloads: TwinWorkloads,
    router: TwinRouter,
    provider: MetricProvider,
    clock: VirtualClock,
    *,
    settle: timedelta,
    tick: timedelta,
    record: Callable[[str], object] | None,
) -> Controller:
    """The real controller and reconciler over the twin's ports (recorded with ``record``)."""
    if record is None:
        reconciler = Reconciler(store, workloads, {"HTTPRoute": router}, NoEvents(), clock)
        return Controller(reconciler, store, provider, clock, settle=settle, tick=tick)
    tape = Tape(record, clock)
    tape.note("started", tick=tick.total_seconds(), settle=settle.total_seconds())
    recorded = Reconciler(
        RecordingStore(store, tape),
        RecordingWorkloads(workloads, tape),
        {"HTTPRoute": RecordingRouter(router, tape)},
        NoEvents(),
        clock,
    )
    return Controller(
        RecordingReconciler(recorded, tape),
        store,
        RecordingMetrics(provider, tape),
        clock,
        settle=settle,
        tick=tick,
    )


def run(
    scenario: Scenario,
    seed: int,
    *,
    analysis: dict[str, Any] | None = None,
    steps: Sequence[int] = STEPS,
    settle: timedelta = measuring.SETTLE,
    tick: timedelta = TICK,
    max_s: float = MAX_S,
    metrics: Callable[[World, VirtualClock], MetricProvider] | None = None,
    record: Callable[[str], object] | None = None,
    staggered: bool = False,
) -> TwinRun:
    """Release ``scenario``'s canary with the real controller until it rolls back (and traffic
    is back on stable) or starts promoting, or ``max_s`` passes. With ``record``, the ports
    are wrapped in ``canary run --record``'s recorders, which hand ``record`` each line of the
    run's tape (``bench.replay`` reads it back). With ``staggered``, Prometheus scrapes each
    pod at its own moment (``bench.world.World``)."""
    world = World(scenario, seed, staggered=staggered)
    world.run_until(0.0)
    timers = Timers()
    clock = VirtualClock(T0)
    store = MemoryRolloutStore()
    ref = store.add(rollout(analysis, steps))
    controller: Controller

    def notify(deployment: str) -> None:
        controller.on_change(Change("Deployment", NAMESPACE, deployment, {ROLLOUT_LABEL: ROLLOUT}))

    workloads = TwinWorkloads(world, timers, notify)
    router = TwinRouter(world, timers)
    provider = TwinMetrics(world) if metrics is None else metrics(world, clock)
    controller = _controller(
        store, workloads, router, provider, clock, settle=settle, tick=tick, record=record
    )
    controller.on_change(Change("Rollout", NAMESPACE, ROLLOUT))
    tick_s = tick.total_seconds()
    next_tick, next_resync = tick_s, RESYNC_S
    phase = ""
    trace: list[Decided] = []
    while True:
        due = controller.queue.next_due()
        candidates = [next_tick, next_resync, max_s]
        if due is not None:
            candidates.append((due - T0).total_seconds())
        if (timer := timers.next()) is not None:
            candidates.append(timer)
        now = max(world.now, min(candidates))
        world.run_until(now)
        clock.current = T0 + timedelta(seconds=now)
        timers.fire(now)
        if now >= next_tick:
            controller.measure()
            next_tick += tick_s
        if now >= next_resync:
            controller.resync()
            next_resync += RESYNC_S
        if controller.run_due():
            status = store.rollouts[ref].status
            phase = status.phase or ""
            route = router.routes.routes.get((NAMESPACE, STABLE))
            decided = Decided(
                round(now, 6),
                phase,
                status.current_step_index,
                None if route is None else route.canary_weight,
            )
            if not trace or trace[-1][1:] != decided[1:]:
                trace.append(decided)
        if phase in PROMOTED or phase in ROLLED_BACK - {"RollingBack"} or now >= max_s:
            break
    while world.pending:  # the route written last takes effect after the actuation delay
        world.run_until(max(at for at, _ in world.pending))
    final = store.rollouts[ref]
    # A rollback's time is until traffic is back on stable, not until the drained canary is
    # scaled to zero (machine.CANARY_DRAIN later): it serves nothing meanwhile.
    back = world.stable_since if phase in ROLLED_BACK else None
    ended = world.now if back is None else back
    return TwinRun(
        phase, ended, world, controller.reconciles, tuple(trace), final.status.message, final
    )
