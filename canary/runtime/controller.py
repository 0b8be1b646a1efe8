"""The controller loop: a work queue of Rollouts, one worker, and the measuring tick.

Wakes a Rollout on watch events (at once), on its requeue time, and on the measuring tick,
which runs ONE Prometheus query for every Rollout being judged and hands each its share.
Reconciles run one at a time in the worker thread, so a Rollout is never reconciled twice at
once. Used by ``canary run`` (through ``canary.cli``); talks to the world only through ports.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from canary.core import evidence, judge, promql
from canary.core.plan import Plan
from canary.errors import CanaryError, MetricsUnavailable
from canary.ports import Arms, Change, Clock, MetricProvider, Ref, RolloutStore, StopSignal
from canary.runtime.reconciler import Measurement, Reconciler, Result

log = structlog.get_logger("canary.controller")

JUDGED_PHASES = frozenset({"Progressing", "Paused", "WaitingApproval"})


@dataclass(order=True)
class _Item:
    due: datetime
    ref: Ref = field(compare=False)


class WorkQueue:
    """Rollouts waiting to be reconciled, each at most once, soonest first; a measurement
    waiting for a Rollout rides along with it."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._heap: list[_Item] = []
        self._due: dict[Ref, datetime] = {}
        self._measurements: dict[Ref, Measurement] = {}
        self._cond = threading.Condition()

    def add(
        self, ref: Ref, after: timedelta = timedelta(0), measurement: Measurement | None = None
    ) -> None:
        """Reconcile ``ref`` after ``after`` (sooner if it is already queued sooner)."""
        due = self._clock.now() + after
        with self._cond:
            if measurement is not None:
                self._measurements[ref] = measurement
            if ref in self._due and self._due[ref] <= due:
                return
            self._due[ref] = due
            heapq.heappush(self._heap, _Item(due, ref))
            self._cond.notify()

    def get(self, stop: StopSignal, idle: float = 1.0) -> tuple[Ref, Measurement | None] | None:
        """The next due Rollout and its measurement; None when stopping."""
        with self._cond:
            while not stop.is_set():
                while self._heap and self._due.get(self._heap[0].ref) != self._heap[0].due:
                    heapq.heappop(self._heap)  # superseded by an earlier entry
                if self._heap:
                    wait = (self._heap[0].due - self._clock.now()).total_seconds()
                    if wait <= 0:
                        item = heapq.heappop(self._heap)
                        del self._due[item.ref]
                        return item.ref, self._measurements.pop(item.ref, None)
                    self._cond.wait(min(wait, idle))
                else:
                    self._cond.wait(idle)
        return None

    def __len__(self) -> int:
        with self._cond:
            return len(self._due)


class Controller:
    """Owns the queue, the worker and the measuring state (the counters' baseline)."""

    def __init__(
        self,
        reconciler: Reconciler,
        store: RolloutStore,
        metrics: MetricProvider,
        clock: Clock,
        *,
        namespace: str | None = None,
        settle: timedelta = timedelta(seconds=12),
        on_result: Callable[[Result, float], None] = lambda _result, _seconds: None,
    ) -> None:
        self._reconciler = reconciler
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._namespace = namespace
        self._settle = settle
        self._on_result = on_result
        self.queue = WorkQueue(clock)
        self._lock = threading.Lock()
        self._judged: dict[Ref, Plan] = {}
        self._targets: dict[tuple[str, str], Ref] = {}
        self._pending: dict[Ref, judge.Evidence] = {}
        self._window: dict[Ref, datetime] = {}
        self._weights: dict[Ref, int] = {}
        self._changed: dict[Ref, datetime] = {}
        self._canary_ready: dict[Ref, int] = {}
        self._baseline: evidence.Snapshot | None = None
        self.reconciles = 0

    # -- waking Rollouts -------------------------------------------------------------------

    def on_change(self, change: Change) -> None:
        """A watch event: wake the Rollout it concerns."""
        if change.kind == "Rollout":
            self.queue.add(Ref(change.namespace, change.name))
            return
        ref = self._targets.get((change.namespace, change.name))
        owner = (change.labels or {}).get("canary.dev/rollout")
        if owner:
            ref = Ref(change.namespace, owner)
        if ref is not None:
            self.queue.add(ref)

    def resync(self) -> None:
        """Wake every Rollout (a safety net under the watches)."""
        try:
            rollouts = self._store.list(self._namespace)
        except CanaryError as error:
            log.warning("resync_failed", error=str(error))
            return
        for rollout in rollouts:
            self.queue.add(Ref(rollout.metadata.namespace, rollout.metadata.name))

    # -- the worker ------------------------------------------------------------------------

    def run_worker(self, stop: StopSignal) -> None:
        """Reconcile queued Rollouts one at a time until ``stop``."""
        while (item := self.queue.get(stop)) is not None:
            ref, measurement = item
            started = time.perf_counter()
            result = self._reconciler.reconcile(ref, measurement)
            self.reconciles += 1
            self._on_result(result, time.perf_counter() - started)
            self._remember(ref, result)
            if result.requeue_after is not None:
                self.queue.add(ref, result.requeue_after)

    def _remember(self, ref: Ref, result: Result) -> None:
        with self._lock:
            self._canary_ready[ref] = result.canary_ready
            if result.plan is not None:
                self._targets[(ref.namespace, result.plan.target)] = ref
                self._targets[(ref.namespace, result.plan.canary_deployment)] = ref
            if result.plan is not None and result.phase in JUDGED_PHASES:
                if ref not in self._judged:
                    self._changed[ref] = self._clock.now()
                self._judged[ref] = result.plan
            else:
                self._judged.pop(ref, None)
                self._pending.pop(ref, None)
                self._window.pop(ref, None)
            if result.weight_set is not None and self._weights.get(ref) != result.weight_set:
                # Counts served at the old weight must not be credited to the new step.
                self._weights[ref] = result.weight_set
                self._pending.pop(ref, None)
                self._changed[ref] = self._clock.now()

    # -- measuring -------------------------------------------------------------------------

    def measure(self) -> None:
        """One Prometheus query for every Rollout being judged; wake those whose analysis
        interval has passed, with the counts they served since they were last judged."""
        with self._lock:
            judged = dict(self._judged)
        if not judged:
            return
        now = self._clock.now()
        arms = {
            ref: Arms(ref.namespace, p.target, p.canary_deployment) for ref, p in judged.items()
        }
        try:
            snapshot = self._metrics.snapshot(sorted(set(arms.values()), key=str))
        except MetricsUnavailable as error:
            log.warning("metrics_unavailable", error=str(error))
            for ref in judged:
                self.queue.add(ref, measurement=Measurement(error=str(error)))
            return
        ready: list[Ref] = []
        with self._lock:
            self._baseline, deltas = evidence.advance(self._baseline, snapshot)
            for ref, arm in arms.items():
                if now - self._changed.get(ref, now - self._settle) < self._settle:
                    # Right after the weight changed (or judging began) the counters Prometheus
                    # holds were scraped, in part, at the old weight: wait a scrape interval.
                    self._window[ref] = now
                    continue
                tick = judge.Evidence(
                    canary=deltas.get((arm.namespace, arm.canary), judge.Arm()),
                    stable=deltas.get((arm.namespace, arm.stable), judge.Arm()),
                )
                before = self._pending.get(ref)
                self._pending[ref] = (
                    tick
                    if before is None
                    else judge.Evidence(before.canary + tick.canary, before.stable + tick.stable)
                )
                # Prometheus scrapes each pod at its own moment: only a window at least one
                # scrape interval long holds every pod's share, and only once every ready
                # canary pod is scraped at all does stable's count have its counterpart.
                visible = sum(1 for key in snapshot if key.target == (arm.namespace, arm.canary))
                long_enough = max(judged[ref].interval, self._settle)
                started = self._window.setdefault(ref, now)
                if now - started >= long_enough and visible >= self._canary_ready.get(ref, 0):
                    self._window[ref] = now
                    ready.append(ref)
        for ref in ready:
            self._wake_measured(ref, judged[ref])

    def _wake_measured(self, ref: Ref, plan: Plan) -> None:
        with self._lock:
            counts = self._pending.pop(ref, None) or judge.Evidence(judge.Arm(), judge.Arm())
        custom: dict[str, float | None] = {}
        try:
            for metric in plan.custom_metrics:
                query = promql.render(
                    metric.query,
                    namespace=ref.namespace,
                    target=plan.target,
                    canary=plan.canary_deployment,
                    interval=plan.interval,
                )
                custom[metric.name] = self._metrics.value(query)
        except MetricsUnavailable as error:
            self.queue.add(ref, measurement=Measurement(error=str(error)))
            return
        except CanaryError as error:
            log.warning("custom_metric_rejected", rollout=ref.name, error=str(error))
        tick = judge.Evidence(counts.canary, counts.stable, custom)
        self.queue.add(ref, measurement=Measurement(evidence=tick))


def start_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """Run ``target`` in a daemon thread."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread
