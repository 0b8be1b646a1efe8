"""The controller loop: a work queue of Rollouts, its workers, and the measuring tick.

Wakes a Rollout on watch events (at once; a change of a Deployment wakes the Rollout releasing
it, and the Succeeded one watching it for a reverted release), on its requeue time, and on the
measuring tick, which runs ONE Prometheus query for every Rollout being judged (and, on its turn,
each one initializing: the baseline of its first step) and hands each judged one its share: a
completed window's counts, or an early look's that fails (the tick takes that look itself: one
that does not fail would change nothing). The tick also judges each completed window
as its reconcile will (``canary.core.window``, with the steps the last reconcile reported): one
that fails goes to the workers before the others. Several worker threads take Rollouts from the
queue; the queue never hands out a Rollout that a worker is still reconciling (it is held back
until that reconcile is done), so a Rollout is never reconciled twice at once. The tick asks
Prometheus nothing per Rollout: a completed window's custom metric queries are asked by a few
threads of their own (:data:`ASKERS`), which then queue the window, so a slow one (a tenant's,
up to the query timeout) holds one of them, never the measuring of every Rollout nor a worker; a
window found failing goes to the workers at once. A reconcile that ends in an error is retried
after a delay that doubles with each failure in a row of that Rollout (up to
:data:`BACKOFF_MAX`); a Conflict is a lost race, not a failure: it is retried after the usual
short delay, from a fresher cache. A failed reconcile's measurement goes to its retry, which
decides from the same counts and any that arrived meanwhile (it may have moved the route before
its status write failed). When a window of counts is complete is decided by the pure
``canary.core.measuring``: the controller only keeps its state (under a lock), runs the query
and feeds the queue. A reconcile that put notifications into a Rollout's outbox is reported to
``on_notify`` (the delivery worker). Used by ``canary run`` (through ``canary.cli``); talks to
the world only through ports."""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import structlog

from canary.core import judge, measuring, outbox, promql
from canary.core.plan import Plan
from canary.errors import CanaryError, Conflict, MetricsUnavailable
from canary.model.rollout import ROLLOUT_LABEL
from canary.ports import (
    ROUTE,
    Arms,
    Change,
    Clock,
    MetricProvider,
    Ref,
    RolloutStore,
    StopSignal,
)
from canary.runtime.reconciler import Measurement, Reconciles, Result

log = structlog.get_logger("canary.controller")


@dataclass(order=True)
class _Item:
    due: datetime
    added: int  # first come, first served among Rollouts due at the same moment
    ref: Ref = field(compare=False)


BACKOFF_MAX = timedelta(minutes=5)
"""The longest a failing Rollout waits before its next reconcile."""


URGENT_IN_A_ROW = 3
"""How many Rollouts with counts to judge the queue hands out before one that is merely due,
while both wait: a measured verdict goes first, and routine work still gets a quarter."""


def _lane(measurement: Measurement | None) -> int | None:
    """Which of the queue's lanes a measurement puts its Rollout in: 0 when the tick has found
    it failing (a rollback): it holds an early look (with or without a window waiting), or a
    window the tick's look fails; 1 for a window's counts the tick does not find failing; None
    for routine work (no counts to judge: nothing, or only a metrics error)."""
    if measurement is None:
        return None
    if measurement.early is not None:
        return 0
    if measurement.evidence is None:
        return None
    return 0 if measurement.failing else 1


WORK = ("failing", "verdict", "routine")
"""What a Rollout handed out carried, by lane (``_lane``), as ``on_wait`` hears it: a failing
early look or window, a window's counts, or nothing to judge."""


def _work(measurement: Measurement | None) -> str:
    lane = _lane(measurement)
    return WORK[-1] if lane is None else WORK[lane]


def _merge(waiting: Measurement | None, new: Measurement) -> Measurement:
    """What a Rollout's next reconcile gets when ``new`` arrives while ``waiting`` (older) has not
    been served: no counts are dropped. Two windows are consecutive windows at the same weight
    (a reconcile between them would have taken the first), so their counts add up; custom
    metrics (and custom queries still to ask) are the newer window's. A window is kept over a
    metrics error arriving after it (its counts were measured; an outage still there is reported
    again on the next tick). A failing early look and a window ride together, whichever came
    first: the reconcile takes the look first (a rollback must not wait in the windows' lane
    behind the healthy Rollouts' windows), and judges the window if the look no longer fails;
    the newer of two early looks holds the older (both count from the weight change). Windows
    added up stay in the failing lane when either was found failing. A failing early look and a
    metrics error ride together too: the counts were measured before the outage, so the
    reconcile still rolls back on them, and otherwise reports the outage."""
    if waiting is None:
        return new
    early = new.early if new.early is not None else waiting.early
    if new.evidence is not None and waiting.evidence is not None:
        old, fresh = waiting.evidence, new.evidence
        summed = judge.Evidence(old.canary + fresh.canary, old.stable + fresh.stable, fresh.custom)
        failing = new.failing or waiting.failing
        return replace(new, evidence=summed, early=early, failing=failing)
    if new.evidence is not None:
        return replace(new, error=None, early=early)
    if waiting.evidence is not None:
        return replace(waiting, error=None, early=early)
    error = new.error if new.error is not None else waiting.error
    return Measurement(error=error, early=early)


OUTAGE_TICKS = 2
"""How many measuring ticks in a row must fail to read Prometheus before each judged Rollout
is told (``Healthy=Unknown MetricsUnavailable``, and ``analysis.unavailable``'s deadline
starts). A single failed tick loses no counts: the next snapshot's deltas reach back to the
last one that came. Telling every judged Rollout costs a status write each: at N = 1000 one
timed-out query (25 in run L's 20-minute round) was up to 1000 status writes."""


class WorkQueue:
    """Rollouts waiting to be reconciled, each at most once, soonest first; a measurement
    waiting for a Rollout rides along with it (measurements arriving meanwhile are merged
    into it: ``_merge``). A Rollout handed out by ``get`` or ``pop_due`` is active until
    ``done``: meanwhile it is not handed out again, however often it is added.

    Among Rollouts already due, those with counts to judge go first (up to
    ``URGENT_IN_A_ROW`` at a time), and of those what the tick found failing (a rollback: an
    early look, also when it joins a window already waiting, or a window the tick's look
    fails) before the other windows: when the workers fall behind, a tick's measurement that
    would roll a bad canary back does not wait behind every overdue routine requeue, nor
    behind every window."""

    def __init__(
        self, clock: Clock, on_wait: Callable[[float, str], None] = lambda _s, _w: None
    ) -> None:
        """``on_wait`` hears, for each Rollout handed out, how many seconds past its due time
        it was (the workers' backlog) and what it carried (one of ``WORK``). Counts that
        joined a Rollout already waiting, and moved it to a sooner lane, are late from when
        they came: a failing look arriving for a window that has waited 40 s waited only for
        its own turn, and is told so."""
        self._clock = clock
        self._on_wait = on_wait
        self._heap: list[_Item] = []
        self._lanes: tuple[list[_Item], list[_Item]] = ([], [])  # see ``_lane``
        self._due: dict[Ref, datetime] = {}
        self._measurements: dict[Ref, Measurement] = {}
        self._since: dict[Ref, datetime] = {}  # when a waiting measurement entered its lane
        self._active: set[Ref] = set()
        self._held: dict[Ref, datetime] = {}  # due while active: queued again by ``done``
        self._in_a_row = 0
        self._added = 0
        self._cond = threading.Condition()

    def add(
        self, ref: Ref, after: timedelta = timedelta(0), measurement: Measurement | None = None
    ) -> None:
        """Reconcile ``ref`` after ``after`` (sooner if it is already queued sooner)."""
        due = self._clock.now() + after
        with self._cond:
            if measurement is not None:
                self._keep(ref, _merge(self._measurements.get(ref), measurement), due)
            if ref in self._due and self._due[ref] <= due:
                lane = _lane(self._measurements.get(ref))
                if measurement is not None and lane is not None:
                    heapq.heappush(self._lanes[lane], self._item(self._due[ref], ref))
                return
            self._push(ref, due)
            self._cond.notify()

    def give_back(self, ref: Ref, measurement: Measurement) -> None:
        """Let the next reconcile of ``ref`` have ``measurement`` again (its reconcile failed
        before recording what it decided), merged with a newer one already waiting. Called
        while a worker still has ``ref``: ``done`` files it in its lane."""
        now = self._clock.now()
        with self._cond:
            waiting = self._measurements.get(ref)
            self._keep(ref, measurement if waiting is None else _merge(measurement, waiting), now)

    def get(self, stop: StopSignal, idle: float = 1.0) -> tuple[Ref, Measurement | None] | None:
        """The next due Rollout and its measurement; None when stopping."""
        with self._cond:
            while not stop.is_set():
                due = self._next_due()
                if due is not None:
                    wait = (due - self._clock.now()).total_seconds()
                    if wait <= 0:
                        return self._pop()
                    self._cond.wait(min(wait, idle))
                else:
                    self._cond.wait(idle)
        return None

    def next_due(self) -> datetime | None:
        """When the soonest queued Rollout is due (None: the queue is empty)."""
        with self._cond:
            return self._next_due()

    def pop_due(self) -> tuple[Ref, Measurement | None] | None:
        """The soonest Rollout if it is due now, without waiting (None: nothing is due): for a
        driver that moves its own clock, like the benchmark's digital twin."""
        with self._cond:
            due = self._next_due()
            if due is None or due > self._clock.now():
                return None
            return self._pop()

    def done(self, ref: Ref) -> None:
        """The reconcile of ``ref`` is over: it may be handed out again (at once, if it was
        added meanwhile)."""
        with self._cond:
            self._active.discard(ref)
            due = self._held.pop(ref, None)
            if due is not None:
                # Queued again after it was held back: the sooner of the two stands.
                queued = self._due.get(ref)
                self._push(ref, due if queued is None else min(due, queued))
                self._cond.notify()
            elif ref in self._due:
                # Queued again while active: its lane entry was dropped meanwhile
                # (``_next_urgent``), so it must get one back, or its counts would wait in
                # routine order.
                self._enlane(ref)

    def _keep(self, ref: Ref, measurement: Measurement, due: datetime) -> None:
        """Let ``measurement`` wait for ``ref``'s next reconcile, noting when it moved the
        Rollout to a sooner lane: ``due``, when what it brought was due (its wait is counted
        from then)."""
        before = _lane(self._measurements.get(ref))
        after = _lane(measurement)
        self._measurements[ref] = measurement
        if after is not None and (before is None or after < before):
            self._since[ref] = due

    def _push(self, ref: Ref, due: datetime) -> None:
        self._due[ref] = due
        heapq.heappush(self._heap, self._item(due, ref))
        self._enlane(ref)

    def _enlane(self, ref: Ref) -> None:
        """File queued ``ref`` in the lane of its waiting measurement (if any), at its due
        time: the lane entry ``_next_urgent`` serves."""
        lane = _lane(self._measurements.get(ref))
        if lane is not None:
            heapq.heappush(self._lanes[lane], self._item(self._due[ref], ref))

    def _item(self, due: datetime, ref: Ref) -> _Item:
        self._added += 1
        return _Item(due, self._added, ref)

    def _next_due(self) -> datetime | None:
        while self._heap:
            top = self._heap[0]
            if self._due.get(top.ref) != top.due:
                heapq.heappop(self._heap)  # superseded by an earlier entry
            elif top.ref in self._active:
                heapq.heappop(self._heap)  # a worker has it: hold it back until done
                del self._due[top.ref]
                held = self._held.get(top.ref)
                self._held[top.ref] = top.due if held is None else min(held, top.due)
            else:
                return top.due
        return None

    def _next_urgent(self) -> Ref | None:
        """The soonest due Rollout of the first lane that has one due now: a failing early
        look, else a window's counts. Only an entry that still holds (its Rollout queued at
        that due time, not active, in that lane) counts; any other is dropped, so that an
        entry left from an earlier turn cannot hold the lane shut until its Rollout's next,
        later due time (a Rollout handed out, then queued again, has a newer entry: ``_push``;
        one queued again while active gets one when ``done``)."""
        now = self._clock.now()
        for number, lane in enumerate(self._lanes):
            while lane:
                top = lane[0]
                if (
                    self._due.get(top.ref) != top.due
                    or top.ref in self._active
                    or _lane(self._measurements.get(top.ref)) != number
                ):
                    heapq.heappop(lane)  # handed out, held back, served, superseded, moved
                    continue
                if top.due <= now:
                    return top.ref
                break
        return None

    def _pop(self) -> tuple[Ref, Measurement | None]:
        """The next Rollout to hand out; the soonest due one is due now (``_next_due``)."""
        urgent = self._next_urgent() if self._in_a_row < URGENT_IN_A_ROW else None
        routine = self._heap[0].ref
        if urgent is None or urgent == routine:
            ref = heapq.heappop(self._heap).ref
            self._in_a_row = 0
        else:
            ref = urgent  # its entry in the main heap is dropped as superseded
            self._in_a_row += 1
        due = self._due.pop(ref)
        self._active.add(ref)
        measurement = self._measurements.pop(ref, None)
        since = self._since.pop(ref, None)
        late = (self._clock.now() - (due if since is None else max(due, since))).total_seconds()
        self._on_wait(max(late, 0.0), _work(measurement))
        return ref, measurement

    def backlog(self) -> int:
        """How many Rollouts are due now and not yet taken by a worker (held-back ones
        excluded: a worker has them)."""
        now = self._clock.now()
        with self._cond:
            return sum(1 for due in self._due.values() if due <= now)

    def __len__(self) -> int:
        with self._cond:
            return len(self._due) + len(self._held)


ASKERS = 2
"""Threads asking windows' custom metric queries (``Controller.run_asker``) by default
(``canary run --custom-query-workers``), apart from the workers: a tenant's slow query (up to
the Prometheus timeout) holds one of them, never the tick and never a worker, so no rollback
waits for it."""


class Asking:
    """Windows waiting for their Rollouts' custom metric queries, oldest first; a Rollout's
    queries are asked by one thread at a time, and a window arriving for a Rollout still waiting
    joins it (``_merge``: counts add up, the newer window's queries are asked).

    Tenants take turns: the oldest window of a namespace nobody is asking for goes first, and
    only when every waiting window's namespace is being asked for does a second thread take one
    of the same namespace. So one tenant's slow queries hold every asker only while no other
    tenant waits, and another tenant's window waits at most until an asker finishes the window
    it has (its Rollout's queries, one after another, each up to the Prometheus timeout)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: dict[Ref, Measurement] = {}  # insertion order: oldest first
        self._asking: set[Ref] = set()

    def put(self, ref: Ref, measurement: Measurement) -> None:
        """Let ``measurement``'s queries be asked."""
        with self._cond:
            self._waiting[ref] = _merge(self._waiting.get(ref), measurement)
            self._cond.notify()

    def take(self, stop: StopSignal, idle: float = 1.0) -> tuple[Ref, Measurement] | None:
        """The next window to ask (the class's order: oldest first, tenants taking turns) of a
        Rollout nobody is asking for; None when stopping."""
        with self._cond:
            while not stop.is_set():
                item = self._next()
                if item is not None:
                    return item
                self._cond.wait(idle)
        return None

    def take_now(self) -> tuple[Ref, Measurement] | None:
        """``take`` without waiting (None: nothing to ask): for a driver that moves its own
        clock, like the digital twin and the replay."""
        with self._cond:
            return self._next()

    def _next(self) -> tuple[Ref, Measurement] | None:
        busy = {r.namespace for r in self._asking}
        ref = next((r for r in self._waiting if r.namespace not in busy), None)
        if ref is None:  # every waiting namespace is being asked for: the oldest free one
            ref = next((r for r in self._waiting if r not in self._asking), None)
        if ref is None:
            return None
        self._asking.add(ref)
        return ref, self._waiting.pop(ref)

    def done(self, ref: Ref) -> None:
        """Its queries are answered: a window that arrived meanwhile may be asked."""
        with self._cond:
            self._asking.discard(ref)
            self._cond.notify()

    def __len__(self) -> int:
        with self._cond:
            return len(self._waiting) + len(self._asking)


class Controller:
    """Owns the queue, the worker and the measuring state (under one lock)."""

    def __init__(
        self,
        reconciler: Reconciles,
        store: RolloutStore,
        metrics: MetricProvider,
        clock: Clock,
        *,
        namespace: str | None = None,
        settle: timedelta = measuring.SETTLE,
        tick: timedelta = timedelta(seconds=2),
        on_result: Callable[[Result, float], None] = lambda _result, _seconds: None,
        on_notify: Callable[[Ref, datetime], None] = lambda _ref, _due: None,
        on_wait: Callable[[float, str], None] = lambda _seconds, _work: None,
    ) -> None:
        self._reconciler = reconciler
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._namespace = namespace
        self._on_result = on_result
        self._on_notify = on_notify
        self.queue = WorkQueue(clock, on_wait)
        self.asking = Asking()
        self._lock = threading.Lock()
        self._measuring = measuring.State(settle=settle)
        self._failures: dict[Ref, int] = {}  # failed reconciles in a row; gone on a success
        # (namespace, Deployment) -> the Succeeded Rollout watching it for a reverted release.
        self._watchers: dict[tuple[str, str], Ref] = {}
        self._watching: dict[Ref, tuple[str, str]] = {}
        self.reconciles = 0
        self._failed_ticks = 0  # measuring ticks in a row that could not read Prometheus
        self._ticks = 0  # measuring ticks so far: whose turn it is (``measuring.queried``)
        self._tick = tick  # how often measure is called
        self._watch_every = measuring.watch_every(tick)

    # -- waking Rollouts -------------------------------------------------------------------

    def on_change(self, change: Change) -> None:
        """A watch event: wake the Rollout it concerns (a route's: the Rollout steering it,
        e.g. once the mesh has accepted the route or someone edited its weights)."""
        if change.kind == "Rollout":
            self.queue.add(Ref(change.namespace, change.name))
            return
        owner = (change.labels or {}).get(ROLLOUT_LABEL)
        if owner:
            self.queue.add(Ref(change.namespace, owner))
            return
        with self._lock:
            if change.kind == ROUTE:
                key = measuring.route_owner(self._measuring, change.namespace, change.name)
                watcher = None
            else:
                key = measuring.owner(self._measuring, change.namespace, change.name)
                watcher = self._watchers.get((change.namespace, change.name))
        if key is not None:
            self.queue.add(Ref(*key))
        if watcher is not None:
            self.queue.add(watcher)

    def resync(self) -> None:
        """Wake every Rollout (a safety net under the watches), and report each one whose
        outbox holds notifications (what a previous controller left unsent)."""
        try:
            rollouts = self._store.list(self._namespace)
        except CanaryError as error:
            log.warning("resync_failed", error=str(error))
            return
        for rollout in rollouts:
            ref = Ref(rollout.metadata.namespace, rollout.metadata.name)
            self.queue.add(ref)
            if (due := outbox.next_due(rollout.status.outbox)) is not None:
                self._on_notify(ref, due)

    # -- the worker ------------------------------------------------------------------------

    def run_worker(self, stop: StopSignal) -> None:
        """Reconcile queued Rollouts one at a time until ``stop`` (run it in several threads:
        the queue keeps them off each other's Rollouts)."""
        while (item := self.queue.get(stop)) is not None:
            self.serve(*item)

    def run_due(self) -> int:
        """Reconcile every Rollout due now, one at a time, without waiting; how many were
        reconciled. For a driver that moves its own clock (the benchmark's digital twin); the
        windows waiting for custom queries are asked first (``ask_now``)."""
        self.ask_now()
        done = 0
        while (item := self.queue.pop_due()) is not None:
            self.serve(*item)
            done += 1
        return done

    def serve(self, ref: Ref, measurement: Measurement | None) -> None:
        """Reconcile ``ref``, taken from the queue with ``measurement``, and hand it back to the
        queue: requeued when its reconcile asked (later after failures), the measurement kept
        for the retry when it failed. (The digital twin's replay serves recorded reconciles
        through this too.)"""
        try:
            result = self.work(ref, measurement)
            if result.error is not None and measurement is not None:
                # The reconcile's decision was not recorded (its status write lost a race, or
                # the API server failed it), though it may have acted on the route already: the
                # retry must decide from the same counts, or it would undo that action.
                self.queue.give_back(ref, measurement)
        finally:
            self.queue.done(ref)
        delay = self._backoff(ref, result)
        if delay is not None:
            self.queue.add(ref, delay)

    def _backoff(self, ref: Ref, result: Result) -> timedelta | None:
        """The requeue delay, doubled for each failure of ``ref`` in a row before this one."""
        with self._lock:
            if result.error is None or result.requeue_after is None:
                self._failures.pop(ref, None)
                return result.requeue_after
            if result.error == Conflict.__name__:
                return result.requeue_after  # another writer won a race: not a failure
            failures = self._failures.get(ref, 0)
            self._failures[ref] = failures + 1
        delay: timedelta = result.requeue_after * 2 ** min(failures, 16)
        return min(delay, BACKOFF_MAX)

    def work(self, ref: Ref, measurement: Measurement | None = None) -> Result:
        """Reconcile one Rollout now and note what measuring needs to know of it."""
        started = time.perf_counter()
        result = self._reconciler.reconcile(ref, measurement)
        self._on_result(result, time.perf_counter() - started)
        if result.notify_at is not None:
            self._on_notify(ref, result.notify_at)
        with self._lock:
            self.reconciles += 1
            watched = self._watching.pop(ref, None)
            if watched is not None and self._watchers.get(watched) == ref:
                del self._watchers[watched]
            if result.watches is not None:
                target = (ref.namespace, result.watches)
                self._watchers[target] = ref
                self._watching[ref] = target
            key = (ref.namespace, ref.name)
            if result.gone:
                self._measuring = measuring.forget(self._measuring, key)
            else:
                self._measuring = measuring.reconciled(
                    self._measuring,
                    key,
                    result.measuring or measuring.Reconciled(),
                    self._clock.now(),
                )
        return result

    # -- measuring -------------------------------------------------------------------------

    def measure(self) -> None:
        """One Prometheus query for every Rollout being judged, and every one about to be
        (``measuring.queried``: its baseline); wake those whose window is complete
        (``canary.core.measuring``; the query asks for the latency buckets of those whose window
        may begin or end on it only, ``measuring.bucketed``) with the counts they served in it
        (a window whose step the
        judge fails with it added goes first: ``measuring.failing_windows``), and those whose
        new counts since their weight changed fail the early, fail-only look (a look that
        passes would change nothing: it wakes no one). When Prometheus cannot be read for
        ``OUTAGE_TICKS`` ticks in a row, every judged Rollout is told, and its open window ends
        (``measuring.unanswered``: Prometheus may restart and scrape each pod anew at its own
        moment). Called by one thread at a time (the scheduler's tick job)."""
        with self._lock:
            before = self._measuring  # frozen: read outside the lock
        self._ticks += 1
        queried = measuring.queried(before, self._ticks, self._watch_every)
        if not queried:
            return
        judged = measuring.judged(before)
        bucketed = measuring.bucketed(before, queried.keys(), self._clock.now(), self._tick)
        arms = {
            key: Arms(key[0], plan.target, plan.canary_deployment) for key, plan in queried.items()
        }
        try:
            snapshot = self._metrics.snapshot(
                sorted(set(arms.values()), key=str), [arms[key] for key in sorted(bucketed)]
            )
        except MetricsUnavailable as error:
            self._failed_ticks += 1
            told = self._failed_ticks >= OUTAGE_TICKS
            if told:
                with self._lock:
                    self._measuring = measuring.unanswered(self._measuring)
            log.warning(
                "metrics_unavailable",
                error=str(error),
                ticks_in_a_row=self._failed_ticks,
                rollouts_told=len(judged) if told else 0,
            )
            if told:
                for key in judged:
                    self.queue.add(Ref(*key), measurement=Measurement(error=str(error)))
            return
        self._failed_ticks = 0
        now = self._clock.now()
        with self._lock:
            self._measuring, ready = measuring.advance(
                self._measuring, snapshot, now, asked=queried.keys(), bucketed=bucketed
            )
            state = self._measuring  # frozen: judged outside the lock
        plans = measuring.judged(state)
        failing = measuring.failing_windows(state, ready, now)
        for key, counts in ready.items():
            if key in failing:
                _found_failing(key, "window", counts)
            self._wake_measured(Ref(*key), plans[key], counts, failing=key in failing)
        for key, counts in measuring.failing_early(state).items():
            _found_failing(key, "early look", counts)
            self.queue.add(Ref(*key), measurement=Measurement(early=counts))

    def _wake_measured(
        self, ref: Ref, plan: Plan, counts: judge.Evidence, *, failing: bool
    ) -> None:
        """Queue a completed window's counts. With custom metrics, a window the tick does not
        find failing waits for its queries, rendered here and asked by the askers
        (``run_asker``): the tick asks Prometheus nothing per Rollout. A failing one goes to the
        workers at once, without them: its reconcile rolls back on the counts."""
        tick = judge.Evidence(counts.canary, counts.stable)
        queries = () if failing else _rendered(ref, plan)
        if not queries:
            self.queue.add(ref, measurement=Measurement(evidence=tick, failing=failing))
            return
        self.asking.put(ref, Measurement(evidence=tick, custom_queries=queries))

    def _answered(self, measurement: Measurement) -> Measurement:
        """``measurement`` with its custom metric queries asked. When Prometheus cannot answer
        one, the window is not judged: its reconcile reports the metrics error."""
        custom: dict[str, float | None] = {}
        try:
            for name, query in measurement.custom_queries:
                custom[name] = self._metrics.value(query)
        except MetricsUnavailable as error:
            return Measurement(error=str(error))
        counts = measurement.evidence and replace(measurement.evidence, custom=custom)
        return replace(measurement, evidence=counts, custom_queries=())

    def _ask(self, ref: Ref, measurement: Measurement) -> None:
        try:
            self.queue.add(ref, measurement=self._answered(measurement))
        finally:
            self.asking.done(ref)

    def run_asker(self, stop: StopSignal) -> None:
        """Ask windows' custom metric queries until ``stop``, and queue each window answered
        (run it in a few threads: ``--custom-query-workers``, :data:`ASKERS` by default)."""
        while (item := self.asking.take(stop)) is not None:
            try:
                self._ask(*item)
            except Exception as error:  # a bug must not stop the askers for good
                log.exception("custom_query_crashed", rollout=str(item[0]))
                kind = type(error).__name__
                unasked = Measurement(error=f"custom metric queries: unexpected {kind}")
                self.queue.add(item[0], measurement=unasked)

    def ask_now(self) -> int:
        """Ask every waiting window's custom queries now, in this thread; how many windows. For
        a driver that moves its own clock (the digital twin, the replay)."""
        done = 0
        while (item := self.asking.take_now()) is not None:
            self._ask(*item)
            done += 1
        return done


def _rendered(ref: Ref, plan: Plan) -> tuple[tuple[str, str], ...]:
    """The Rollout's custom metric queries for a window, rendered: (name, PromQL). A query
    that cannot be rendered is logged and it and the ones after it are left out."""
    queries: list[tuple[str, str]] = []
    try:
        for metric in plan.custom_metrics:
            query = promql.render(
                metric.query,
                namespace=ref.namespace,
                target=plan.target,
                canary=plan.canary_deployment,
                interval=plan.interval,
            )
            queries.append((metric.name, query))
    except CanaryError as error:
        log.warning("custom_metric_rejected", rollout=ref.name, error=str(error))
    return tuple(queries)


def _found_failing(key: measuring.Key, by: str, counts: judge.Evidence) -> None:
    """Log that the tick found a Rollout's canary failing and queued it first: with the
    reconcile's ``analysis_failed``, the log tells how long a rollback waited for a worker."""
    log.info(
        "failing_measured",
        namespace=key[0],
        rollout=key[1],
        by=by,
        canary=f"{counts.canary.failures}/{counts.canary.requests} failed",
        stable=f"{counts.stable.failures}/{counts.stable.requests} failed",
    )


def start_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """Run ``target`` in a daemon thread."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread
