"""Replay a tape of the live controller through the digital twin's controller.

``canary run --record FILE`` (``canary.runtime.recording``) notes, in the order they happened,
every batched Prometheus answer of a measuring tick, every reconcile (with the measurement it
was handed) and what it observed of the Deployments and the route, and every decision (status
written, weight set). :func:`replay` runs canary's real ``Controller`` (its measuring state and
``canary.core.measuring`` windows) and real ``Reconciler`` (machine, judge) in virtual time, as
the twin does (``bench.twin``): the Rollout lives in the contract-tested
``MemoryRolloutStore``, the clock is a ``VirtualClock`` set to the recorded times, and the
Deployments, the route and Prometheus answer what the tape says they answered, and a write
that failed live (lost a race, refused or failed by the API server) fails alike. The replay's
own decisions are noted by the same recorders, so the two lists compare line for line.

Used by ``tests/unit/test_twin_replays_live_releases.py`` on the tapes committed under
``tests/unit/replays`` and by the e2e test that records them
(``tests/integration/e2e/test_twin_replays_live_releases.py``; ``make record-replay``).
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.twin import NoEvents
from canary.core import evidence, measuring
from canary.core.plan import Plan
from canary.core.vocabulary import Action, RouteState
from canary.errors import ApiUnavailable, Conflict, MetricsUnavailable, Problem, WriteRefused
from canary.model.rollout import Rollout, RolloutPolicy
from canary.model.status import RolloutStatus
from canary.ports import Arms, Ref, WorkloadState
from canary.runtime.controller import Controller
from canary.runtime.memory import MemoryRolloutStore, VirtualClock
from canary.runtime.reconciler import Measurement, Reconciler, Result
from canary.runtime.recording import (
    MEASUREMENT,
    ROUTE,
    WORKLOADS,
    RecordingReconciler,
    RecordingRouter,
    RecordingStore,
    RecordingWorkloads,
    Tape,
    buckets_json,
    failed,
    pods_from,
    stamp,
)

Entry = dict[str, Any]


class Diverged(AssertionError):
    """The replay asked the world something the live controller did not ask at that point."""


def load(path: Path) -> list[Entry]:
    """A tape's entries, in order."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class Decided:
    """One decision: a status written (phase, step, its weight) or a route weight set."""

    seconds: float
    """When the reconcile that took it began, since the tape began."""
    kind: str
    what: tuple[Any, ...]


def decisions(entries: Iterable[Entry], began: datetime) -> list[Decided]:
    """The decisions a tape records: statuses written and route weights set (not the writes
    that failed)."""
    out = []
    began_on: dict[str | None, float] = {}  # by the worker thread that noted it
    for e in entries:
        if e["kind"] == "reconcile":
            began_on[e.get("thread")] = (stamp(e["at"]) - began).total_seconds()
        seconds = began_on.get(e.get("thread"), 0.0)
        if e["kind"] == "status" and not failed(e):
            out.append(Decided(seconds, "status", (e["phase"], e["step"], e["weight"])))
        elif e["kind"] == "weight" and not failed(e):
            out.append(Decided(seconds, "weight", (e["canary"],)))
    return out


@dataclass
class _World:
    """What the tape says the cluster and Prometheus answered, each kind in its order."""

    workloads: dict[str, deque[WorkloadState]] = field(default_factory=lambda: defaultdict(deque))
    routes: dict[str, deque[RouteState | None]] = field(default_factory=lambda: defaultdict(deque))
    snapshots: deque[Entry] = field(default_factory=deque)
    values: deque[Entry] = field(default_factory=deque)

    @classmethod
    def of(cls, entries: Iterable[Entry]) -> _World:
        """The answers on a tape."""
        world = cls()
        for e in entries:
            match e["kind"]:
                case "workloads":
                    world.workloads[e["rollout"]].append(WORKLOADS.validate_python(e["state"]))
                case "route":
                    world.routes[e["route"]].append(ROUTE.validate_python(e["state"]))
                case "snapshot":
                    world.snapshots.append(e)
                case "value":
                    world.values.append(e)
        return world


class _TapeStore(MemoryRolloutStore):
    """The replay's Rollouts, whose status writes fail where the live ones did."""

    def __init__(self) -> None:
        super().__init__()
        self.failures: deque[Exception] = deque()

    def write_status(self, rollout: Rollout, status: RolloutStatus) -> None:
        if self.failures:
            raise self.failures.popleft()
        super().write_status(rollout, status)


def _failure(e: Entry) -> Exception:
    """The error a failed write's entry notes (``failure_fields`` read back)."""
    what = e.get("rollout") or e.get("route")
    if e.get("conflict"):
        return Conflict(f"{what}: the live write lost a race")
    if "refused" in e:
        return WriteRefused([Problem("", e["refused"])])
    return ApiUnavailable(e["unavailable"])


@dataclass
class _TapeWorkloads:
    world: _World
    failures: dict[str, deque[Exception]] = field(default_factory=lambda: defaultdict(deque))
    """By Rollout: how the next actions failed live, in order."""

    def observe(self, namespace: str, rollout: str, plan: Plan) -> WorkloadState:
        answers = self.world.workloads[f"{namespace}/{rollout}"]
        if not answers:
            raise Diverged(f"{namespace}/{rollout}: the replay observed workloads, live did not")
        return answers.popleft()

    def apply(self, namespace: str, rollout: str, plan: Plan, action: Action) -> None:
        """The live controller's action already happened in the cluster the tape recorded
        (or failed: then it fails alike)."""
        failures = self.failures[f"{namespace}/{rollout}"]
        if failures:
            raise failures.popleft()


@dataclass
class _TapeRouter:
    world: _World
    failures: dict[str, deque[Exception]] = field(default_factory=lambda: defaultdict(deque))
    """By route: how the next weight writes failed live, in order."""

    def observe(self, namespace: str, plan: Plan) -> RouteState | None:
        answers = self.world.routes[f"{namespace}/{plan.route_name}"]
        if not answers:
            raise Diverged(
                f"{namespace}/{plan.route_name}: the replay read the route, live did not"
            )
        return answers.popleft()

    def set_weights(self, namespace: str, plan: Plan, canary: int) -> None:
        """Taken, unless the live write in this reconcile failed: then it fails alike. What
        the route then looked like is on the tape."""
        failures = self.failures[f"{namespace}/{plan.route_name}"]
        if failures:
            raise failures.popleft()


@dataclass
class _TapeMetrics:
    """The tape's snapshots, in order: the clock at the time each was sent when the replay
    asks (``_Replay._tick``), and at the time it was answered when it returns."""

    world: _World
    clock: VirtualClock

    def snapshot(
        self, targets: Sequence[Arms], buckets: Collection[Arms] | None = None
    ) -> evidence.Snapshot:
        if not self.world.snapshots:
            raise Diverged("the replay queried Prometheus where the live controller did not")
        answer = self.world.snapshots.popleft()
        if (asked := buckets_json(buckets)) != answer.get("buckets", asked):
            raise Diverged(
                f"the replay asked for the buckets of {asked}, the live controller for "
                f"{answer['buckets']}"
            )
        self.clock.current = stamp(answer["at"])
        if "error" in answer:
            raise MetricsUnavailable(answer["error"])
        return pods_from(answer["pods"])

    def value(self, query: str) -> float | None:
        """The first answer on the tape to ``query`` not given yet. By query, not in tape order:
        live, the askers ask Rollouts' custom queries at once, so one Rollout's may come before
        another's that the replay asks first."""
        answer = next((e for e in self.world.values if e["query"] == query), None)
        if answer is None:
            raise Diverged(f"the replay asked {query!r} where the live controller did not")
        self.world.values.remove(answer)
        if "error" in answer:
            raise MetricsUnavailable(answer["error"])
        value: float | None = answer["value"]
        return value


@dataclass
class _Timed:
    """The reconciler with the clock at the recorded start, then at the recorded end (when
    the live controller updated its measuring state)."""

    inner: RecordingReconciler
    clock: VirtualClock
    ends_at: datetime | None = None

    def reconcile(self, ref: Ref, measurement: Measurement | None = None) -> Result:
        result = self.inner.reconcile(ref, measurement)
        if self.ends_at is not None:
            self.clock.current = self.ends_at
        return result


@dataclass(frozen=True)
class Replayed:
    """The live and replayed decisions, and each reconcile whose measurement differed."""

    live: list[Decided]
    replayed: list[Decided]
    measurement_differences: list[tuple[float, Any, Any]]
    reconciles: int
    snapshots: int
    deferred: int = 0
    """Measurements the live worker found only at the next reconcile: it took the Rollout
    between a tick's answer and that tick's measurement reaching the queue."""


def replay(entries: Sequence[Entry]) -> Replayed:
    """Run the real controller over ``entries`` (a tape); raise :class:`Diverged` when the
    replay's controller asks the world something the live one did not."""
    return _Replay(entries).run()


class _Replay:
    """The real controller and reconciler over a tape's answers, its own decisions noted."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = entries
        self.began = stamp(entries[0]["at"])
        started = next((e for e in entries if e["kind"] == "started"), {})
        settle = timedelta(seconds=started.get("settle", measuring.SETTLE.total_seconds()))
        tick = timedelta(seconds=started.get("tick", 2.0))
        self.clock = VirtualClock(self.began)
        self.world = _World.of(entries)
        self.noted: list[Entry] = []
        tape = Tape(lambda line: self.noted.append(json.loads(line)), self.clock)
        self.store = _TapeStore()
        self.workloads = _TapeWorkloads(self.world)
        self.router = _TapeRouter(self.world)
        router = RecordingRouter(self.router, tape)
        reconciler = Reconciler(
            RecordingStore(self.store, tape),
            RecordingWorkloads(self.workloads, tape),
            {"HTTPRoute": router, "TrafficSplit": router},
            NoEvents(),
            self.clock,
        )
        self.timed = _Timed(RecordingReconciler(reconciler, tape), self.clock)
        metrics = _TapeMetrics(self.world, self.clock)
        self.controller = Controller(
            self.timed, self.store, metrics, self.clock, settle=settle, tick=tick
        )
        self.pending: dict[str, tuple[datetime, Measurement | None, Any]] = {}
        self.differences: list[tuple[float, Any, Any]] = []
        self.reconciles = self.snapshots = self.deferred = 0

    def run(self) -> Replayed:
        for e in self.entries:
            match e["kind"]:
                case "rollout":
                    self.store.add(Rollout.model_validate(e["object"]))
                case "policy":
                    namespace, name = e["policy"].split("/", 1)
                    policy = RolloutPolicy.model_validate(e["object"])
                    self.store.policies[Ref(namespace, name)] = policy
                case "snapshot":
                    self._tick(e)
                case "reconcile":
                    self._begin(e)
                # A write that failed live fails alike at the same call of that reconcile
                # (noted before the reconcile ends, which is when the replay runs it).
                case "status" if failed(e):
                    self.store.failures.append(_failure(e))
                case "weight" if failed(e):
                    self.router.failures[e["route"]].append(_failure(e))
                case "apply" if failed(e):
                    self.workloads.failures[e["rollout"]].append(_failure(e))
                case "reconciled":
                    self._reconcile(e)
        live = decisions(self.entries, self.began)
        mine = decisions(self.noted, self.began)
        return Replayed(
            live, mine, self.differences, self.reconciles, self.snapshots, self.deferred
        )

    def _tick(self, e: Entry) -> None:
        self.clock.current = stamp(e.get("sent") or e["at"])
        before = len(self.world.snapshots)
        self.controller.measure()
        self.controller.ask_now()  # live, the askers did so meanwhile
        if len(self.world.snapshots) == before:
            raise Diverged(f"{e['at']}: live queried Prometheus, the replay did not")
        self.snapshots += 1

    def _begin(self, e: Entry) -> None:
        """Hand the Rollout out of the queue, as the live worker did when it began."""
        self.clock.current = stamp(e["at"])
        measurement = _take(self.controller, _ref(e))
        if measurement is not None and e["measurement"] is None:
            # The live worker took the Rollout in the moment between the tick's answer (on the
            # tape) and its measurement reaching the queue: the measurement waited for the
            # next reconcile, as it does here.
            self.controller.queue.add(_ref(e), measurement=measurement)
            measurement = None
            self.deferred += 1
        self.pending[e["rollout"]] = (self.clock.current, measurement, e["measurement"])

    def _reconcile(self, e: Entry) -> None:
        start, measurement, recorded = self.pending.pop(e["rollout"])
        given = MEASUREMENT.dump_python(measurement, mode="json")
        # A tape recorded before a field was added holds its default (read as the live
        # controller of that day had it).
        recorded = MEASUREMENT.dump_python(MEASUREMENT.validate_python(recorded), mode="json")
        if given != recorded:
            self.differences.append(((start - self.began).total_seconds(), recorded, given))
        self.clock.current, self.timed.ends_at = start, stamp(e["at"])
        self.controller.serve(_ref(e), measurement)
        self.reconciles += 1


def _ref(e: Entry) -> Ref:
    return Ref(*e["rollout"].split("/", 1))


def _take(controller: Controller, ref: Ref) -> Measurement | None:
    """Hand ``ref`` out of the controller's queue as its worker would, with the measurement
    waiting for it (other Rollouts due are put back)."""
    controller.queue.add(ref)
    others = []
    while (item := controller.queue.pop_due()) is not None and item[0] != ref:
        others.append(item)
    for other, measurement in others:
        controller.queue.done(other)
        controller.queue.add(other, measurement=measurement)
    if item is None:
        raise Diverged(f"{ref} was not due")
    return item[1]


def agree(live: Sequence[Decided], replayed: Sequence[Decided]) -> bool:
    """Whether the replay took the live controller's decisions, in order, each in the
    reconcile that began at the same moment."""
    return list(live) == list(replayed)


def explain(result: Replayed) -> str:
    """The two lists of decisions side by side, for a failure message."""
    rows = [f"{'live':<40} replayed"]
    for i in range(max(len(result.live), len(result.replayed))):
        a = result.live[i] if i < len(result.live) else None
        b = result.replayed[i] if i < len(result.replayed) else None
        rows.append(f"{_show(a):<40} {_show(b)}")
    return "\n".join(rows)


def _show(d: Decided | None) -> str:
    return "—" if d is None else f"{d.seconds:7.2f}s {d.kind} {d.what}"
