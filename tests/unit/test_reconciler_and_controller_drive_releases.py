"""The runtime with fakes behind its ports: the reconciler reads, decides, acts and writes;
the controller's queue and measuring tick feed it. Every check reads resulting state: the stored
Rollout, the route's weight, the recorded Events, what the queue hands out."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import timedelta

from canary.core import commands, evidence, history, judge, machine, measuring, vocabulary
from canary.core import plan as plan_mod
from canary.errors import InvalidSpec, Problem
from canary.model.linkerd import LATENCY_BUCKETS_MS
from canary.model.rollout import ROLLOUT_LABEL, Rollout, RolloutPolicy
from canary.model.status import RolloutStatus
from canary.ports import ROUTE, Arms, Change, Ref, WorkloadState
from canary.runtime import reconciler as rec
from canary.runtime.controller import Controller, WorkQueue
from tests.fake_store import MemoryRolloutStore
from tests.fakes import FakeClock, FakeEvents, FakeMetrics, FakeRouter
from tests.unit.fake_cluster import T0, FakeCluster, make_rollout

FINISHED = ("Succeeded", "RolledBack", "Failed")


@dataclass
class ClusterWorkloads:
    """``ports.Workloads`` over the unit tests' FakeCluster; ``fail_with`` makes applying fail."""

    cluster: FakeCluster
    fail_with: Exception | None = None

    def observe(self, namespace: str, rollout: str, plan: plan_mod.Plan) -> WorkloadState:
        obs = self.cluster.observe()
        return WorkloadState(obs.target, obs.apex_service, obs.canary, obs.services_ready)

    def apply(
        self, namespace: str, rollout: str, plan: plan_mod.Plan, action: vocabulary.Action
    ) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.cluster.apply(action)


@dataclass
class World:
    """One Rollout in a fake cluster, and a reconciler wired to it."""

    rollout: Rollout = field(default_factory=make_rollout)
    store: MemoryRolloutStore = field(default_factory=MemoryRolloutStore)
    cluster: FakeCluster = field(default_factory=FakeCluster)
    router: FakeRouter = field(default_factory=FakeRouter)
    events: FakeEvents = field(default_factory=FakeEvents)
    clock: FakeClock = field(default_factory=lambda: FakeClock(T0))
    finished: list[history.Finished] = field(default_factory=list)
    """How the release ended, each time a reconcile reported it."""

    def __post_init__(self) -> None:
        self.ref = self.store.add(self.rollout)
        self.workloads = ClusterWorkloads(self.cluster)
        self.reconciler = rec.Reconciler(
            self.store, self.workloads, {"HTTPRoute": self.router}, self.events, self.clock
        )

    def tick(self) -> rec.Result:
        """Reconcile with five seconds of traffic; the mesh follows the route; time moves on."""
        result = self.reconciler.reconcile(
            self.ref, rec.Measurement(evidence=self.cluster.evidence(5))
        )
        if result.finished is not None:
            self.finished.append(result.finished)
        for route in self.router.routes.values():
            self.cluster.route_exists, self.cluster.weight = True, route.canary_weight
        self.cluster.settle()
        self.clock.advance(timedelta(seconds=5))
        return result

    def phase(self) -> str:
        """The phase stored in the Rollout's status."""
        stored = self.store.get(self.ref)
        assert stored is not None
        return stored.status.phase

    def drive(self, ticks: int = 40) -> str:
        """Tick until the release finishes (or ``ticks`` run out); the stored phase."""
        for _ in range(ticks):
            self.tick()
            if self.phase() in FINISHED:
                break
        return self.phase()

    def route_weight(self) -> int:
        """The canary weight written to the router for this Rollout's route."""
        (route,) = [r for (ns, _), r in self.router.routes.items() if ns == self.ref.namespace]
        return route.canary_weight


def test_reconciler_promotes_a_healthy_release() -> None:
    """Reconciles with healthy evidence end in Succeeded, with Events and status written."""
    world = World()
    assert world.drive() == "Succeeded"
    stored = world.store.get(world.ref)
    assert stored is not None
    assert stored.status.observed_generation == 1
    assert world.cluster.stable_template == "v2"
    assert world.route_weight() == 0
    assert ("podinfo-2", "Promoted") in world.events.events
    assert [(f.result, f.reason) for f in world.finished] == [("promoted", "analysis_passed")]
    assert world.tick().finished is None  # counted once, when it ended


def test_reconciler_rolls_back_a_failing_release() -> None:
    """A canary failing half its requests is rolled back; stable never changes."""
    world = World()
    world.cluster.canary_error_rate = 0.5
    assert world.drive() == "RolledBack"
    assert world.cluster.stable_template == "v1"
    assert world.cluster.weight == 0
    assert world.route_weight() == 0
    assert [(f.result, f.reason) for f in world.finished] == [("rolled_back", "analysis")]


def test_lost_status_race_is_retried_soon() -> None:
    """A resourceVersion conflict on the status write comes back as a short requeue."""
    world = World()
    world.store.conflicts = 1
    result = world.reconciler.reconcile(world.ref)
    assert result.requeue_after == rec.RETRY_TRANSIENT
    assert result.error == "Conflict"
    assert world.phase() == "Pending"


def test_missing_policy_is_a_condition_and_a_retry() -> None:
    """A policyRef to a policy that does not exist: Valid=False PolicyNotFound, retried."""
    world = World(make_rollout(policyRef={"name": "nope"}))
    result = world.reconciler.reconcile(world.ref)
    assert result.requeue_after == machine.RETRY_REFERENCES
    stored = world.store.get(world.ref)
    assert stored is not None
    valid = {c.type: c for c in stored.status.conditions}["Valid"]
    assert (valid.status, valid.reason) == ("False", "PolicyNotFound")
    assert world.router.routes == {}


def test_policy_is_merged_in() -> None:
    """A referenced policy that exists supplies what the Rollout leaves out."""
    world = World(make_rollout(policyRef={"name": "podinfo"}, service=None, steps=None))
    world.store.policies[Ref("t", "podinfo")] = RolloutPolicy.model_validate(
        {
            "metadata": {"name": "podinfo", "namespace": "t"},
            "spec": {"service": {"name": "podinfo", "port": 80}, "steps": [{"setWeight": 50}]},
        }
    )
    assert world.drive() == "Succeeded"
    stored = world.store.get(world.ref)
    assert stored is not None
    assert [s.weight for s in stored.status.steps] == [50]


def test_invalid_spec_fails_without_actions() -> None:
    """A semantically invalid spec is reported in status; nothing is created."""
    world = World(make_rollout(steps=[{"setWeight": 50}, {"setWeight": 10}]))
    assert world.reconciler.reconcile(world.ref).requeue_after is None
    stored = world.store.get(world.ref)
    assert stored is not None
    assert stored.status.phase == "Failed"
    assert "spec.steps[1].setWeight" in stored.status.message
    assert world.router.routes == {}
    assert world.events.events == [("podinfo-2", "InvalidSpec")]


def test_release_that_cannot_apply_mid_flight_routes_back() -> None:
    """When an action reports the release invalid mid-way, traffic goes back to stable."""
    world = World()
    for _ in range(3):
        world.tick()
    assert world.route_weight() > 0
    world.workloads.fail_with = InvalidSpec([Problem("spec.release.images.x", "no container x")])
    world.reconciler.reconcile(world.ref)
    assert world.phase() == "Failed"
    assert world.route_weight() == 0


def test_malformed_command_is_a_warning_event_once() -> None:
    """A command annotation that cannot be read is not obeyed and is reported by one Warning
    Event (not one per reconcile); a new malformed value is reported again."""
    rollout = make_rollout()
    meta = rollout.metadata.model_copy(update={"annotations": {"canary.dev/abort": "{"}})
    world = World(rollout.model_copy(update={"metadata": meta}))
    world.tick()
    world.tick()
    assert world.events.events.count(("podinfo-2", "CommandRejected")) == 1
    assert world.phase() == "Progressing"  # the abort was not obeyed
    world.store.annotate(world.ref, "canary.dev/abort", '{"actor": "ana"}')
    world.tick()
    assert world.events.events.count(("podinfo-2", "CommandRejected")) == 2
    assert world.phase() == "Progressing"


def test_deleted_rollout_is_forgotten() -> None:
    """A Rollout that no longer exists is not requeued."""
    world = World()
    del world.store.rollouts[world.ref]
    assert world.reconciler.reconcile(world.ref).requeue_after is None


def test_superseded_by_names_the_newest_later_rollout() -> None:
    """Only later Rollouts of the same target supersede; the newest one is named."""

    def at(name: str, minute: int, target: str = "podinfo") -> Rollout:
        r = make_rollout(targetRef={"name": target})
        meta = r.metadata.model_copy(
            update={"name": name, "creation_timestamp": T0 + timedelta(minutes=minute)}
        )
        return r.model_copy(update={"metadata": meta})

    mine = at("a", 1)
    assert rec.superseded_by(mine, [at("old", 0), at("other", 5, "web")]) is None
    assert rec.superseded_by(mine, [at("b", 2), at("c", 3), at("old", 0)]) == "c"


def test_queue_runs_each_rollout_once_soonest_first() -> None:
    """Adding a queued Rollout again keeps one entry at the earlier time; measurements ride."""
    clock = FakeClock(T0)
    queue = WorkQueue(clock)
    a, b = Ref("n", "a"), Ref("n", "b")
    queue.add(a, timedelta(seconds=10))
    queue.add(b, timedelta(seconds=5))
    queue.add(a, timedelta(seconds=1), rec.Measurement(error="down"))
    queue.add(b, timedelta(seconds=30))
    assert len(queue) == 2
    clock.advance(timedelta(seconds=6))
    stop = threading.Event()
    assert queue.get(stop) == (a, rec.Measurement(error="down"))
    assert queue.get(stop) == (b, None)
    stop.set()
    assert queue.get(stop) is None


def test_a_failing_early_look_and_a_waiting_window_ride_together() -> None:
    """Whichever comes first, a failing early look and a window of the same Rollout are handed
    out together (the reconcile takes the look first, then the window); a later early look
    replaces an earlier one."""
    clock = FakeClock(T0)
    queue = WorkQueue(clock)
    a, b = Ref("n", "a"), Ref("n", "b")
    counts = judge.Evidence(judge.Arm(10), judge.Arm(90))
    looked = judge.Evidence(judge.Arm(5, 5), judge.Arm(45))
    window = rec.Measurement(evidence=counts)
    early = rec.Measurement(early=looked)
    both = rec.Measurement(evidence=counts, early=looked)
    queue.add(a, measurement=window)
    queue.add(a, measurement=early)
    queue.add(b, measurement=early)
    queue.add(b, measurement=window)
    assert queue.pop_due() == (a, both)
    assert queue.pop_due() == (b, both)
    queue.done(a)  # its reconcile is over: it may be handed out again
    queue.add(a, measurement=early)
    later = judge.Evidence(judge.Arm(8, 8), judge.Arm(72))
    queue.add(a, measurement=rec.Measurement(early=later))
    assert queue.pop_due() == (a, rec.Measurement(early=later))


def test_queue_hands_out_due_rollouts_without_waiting() -> None:
    """A driver with its own clock asks when the next Rollout is due and takes only due ones;
    the controller reconciles every due Rollout and queues it again at its requeue time."""
    clock = FakeClock(T0)
    queue = WorkQueue(clock)
    a, b = Ref("n", "a"), Ref("n", "b")
    assert queue.next_due() is None
    queue.add(a, timedelta(seconds=10))
    queue.add(b, timedelta(seconds=5), rec.Measurement(error="down"))
    queue.add(b, timedelta(seconds=3))
    assert queue.next_due() == T0 + timedelta(seconds=3)
    assert queue.pop_due() is None
    clock.advance(timedelta(seconds=6))
    assert queue.pop_due() == (b, rec.Measurement(error="down"))
    assert queue.pop_due() is None
    assert queue.next_due() == T0 + timedelta(seconds=10)

    world = World()
    controller = Controller(world.reconciler, world.store, FakeMetrics(), world.clock)
    controller.queue.add(world.ref)
    assert controller.run_due() == 1
    assert world.phase() == "Initializing"
    assert controller.run_due() == 0  # requeued for later, not now
    due = controller.queue.next_due()
    assert due is not None
    assert due > world.clock.now()


def _pod(
    namespace: str, deployment: str, pod: str, requests: int, failures: int
) -> tuple[evidence.PodKey, evidence.PodCounters]:
    buckets = [0] * len(LATENCY_BUCKETS_MS)
    buckets[6] = requests
    cumulative = tuple(sum(buckets[: i + 1]) for i in range(len(buckets)))
    return evidence.PodKey(namespace, deployment, pod), evidence.PodCounters(
        requests=requests, failures=failures, buckets=cumulative
    )


def _controlled(rollout: Rollout | None = None) -> tuple[World, Ref, Controller, FakeMetrics]:
    """Two Rollouts (t/podinfo-2, u/web) brought to their first step by the controller."""
    world = World() if rollout is None else World(rollout)
    meta = make_rollout().metadata.model_copy(update={"name": "web", "namespace": "u"})
    other = world.store.add(make_rollout().model_copy(update={"metadata": meta}))
    metrics = FakeMetrics()
    controller = Controller(
        world.reconciler, world.store, metrics, world.clock, settle=timedelta(seconds=12)
    )
    for ref in (world.ref, other):
        for _ in range(3):
            controller.work(ref)
            world.cluster.settle()
    return world, other, controller, metrics


def test_measuring_tick_batches_and_waits_for_the_new_weight() -> None:
    """Every judged Rollout is measured; counts right after a weight change are ignored until
    Prometheus has scraped the new weight; an outage of two ticks in a row is passed on as an
    error to each."""
    world, other, controller, metrics = _controlled()
    stop = threading.Event()
    metrics.pods = dict(
        [_pod("t", "podinfo", "s1", 100, 0), _pod("t", "podinfo-canary", "c1", 10, 0)]
    )
    controller.measure()
    assert len(controller.queue) == 0  # within the settle time: counts only set the baseline
    world.clock.advance(timedelta(seconds=16))
    metrics.pods = dict(
        [_pod("t", "podinfo", "s1", 300, 1), _pod("t", "podinfo-canary", "c1", 60, 0)]
    )
    controller.measure()
    assert len(controller.queue) == 1  # "web" waits: Prometheus shows none of its canary pods
    item = controller.queue.get(stop)
    assert item is not None
    ref, tick = item
    controller.queue.done(ref)
    assert ref == world.ref
    assert tick is not None
    assert tick.evidence is not None
    assert (tick.evidence.canary.requests, tick.evidence.stable.requests) == (50, 200)
    metrics.available = False
    controller.measure()
    assert len(controller.queue) == 0  # one failed tick loses no counts: nobody is told
    controller.measure()
    errors = [controller.queue.get(stop), controller.queue.get(stop)]
    assert {e[0] for e in errors if e is not None} == {world.ref, other}
    assert all(e is not None and e[1] is not None and "fake://" in str(e[1].error) for e in errors)
    assert world.route_weight() == 10
    assert ("podinfo-2", "StepAdvanced") in world.events.events


def _initialized(*, asked: bool) -> tuple[World, Controller, FakeMetrics]:
    """A Rollout reconciled to Initializing (its canary starting), its stable pod having
    served 38,000 requests; with ``asked``, WATCH_EVERY ticks while it initializes (it is asked
    for on one of them). Then brought to its first step (10%), where its canary's first 20
    requests all failed, and a tick."""
    world, metrics = World(), FakeMetrics()
    controller = Controller(
        world.reconciler, world.store, metrics, world.clock, settle=timedelta(seconds=12)
    )
    controller.work(world.ref)
    assert world.phase() == "Initializing"
    metrics.pods = dict([_pod("t", "podinfo", "s1", 38000, 0)])
    if asked:
        for _ in range(measuring.WATCH_EVERY):
            controller.measure()
    world.cluster.settle()
    world.clock.advance(timedelta(seconds=2))
    controller.work(world.ref)
    assert (world.phase(), world.route_weight()) == ("Progressing", 10)
    world.clock.advance(timedelta(seconds=2))
    metrics.pods = dict(
        [_pod("t", "podinfo", "s1", 38180, 0), _pod("t", "podinfo-canary", "c1", 20, 20)]
    )
    controller.measure()
    return world, controller, metrics


def test_a_rollout_is_asked_for_while_initializing_so_no_first_failure_is_lost() -> None:
    """The tick asks for an initializing Rollout's pods: the baseline is taken before the first
    weight is set, so the canary's first failures at its first step are counted on the first
    tick after it, and the early look wakes the Rollout with all 20. A Rollout first asked for
    once judged has no baseline: that tick's counts only become one (its stable pod's lifetime
    of requests must not be credited to the step), and those 20 failures are never counted.
    Prometheus unreachable while it initializes tells it nothing: it is not judged yet."""
    world, controller, metrics = _initialized(asked=True)
    arms = (Arms("t", "podinfo", "podinfo-canary"),)
    assert metrics.snapshots == [arms, arms]
    item = controller.queue.pop_due()
    assert item is not None
    assert item[0] == world.ref
    assert item[1] is not None
    assert item[1].early is not None
    counted = item[1].early
    assert (counted.canary.requests, counted.canary.failures) == (20, 20)
    assert counted.stable.requests == 180

    _, controller, _ = _initialized(asked=False)
    assert controller.queue.pop_due() is None

    world, metrics = World(), FakeMetrics(available=False)
    controller = Controller(world.reconciler, world.store, metrics, world.clock)
    controller.work(world.ref)
    assert world.phase() == "Initializing"
    for _ in range(2 * measuring.WATCH_EVERY):
        controller.measure()
    assert metrics.snapshots == [arms] * 2  # on its turns
    assert controller.queue.pop_due() is None

    world, metrics = World(), FakeMetrics()
    controller = Controller(
        world.reconciler, world.store, metrics, world.clock, tick=timedelta(seconds=15)
    )
    controller.work(world.ref)
    for _ in range(3):
        controller.measure()
    assert metrics.snapshots == [arms] * 3  # at a 15 s tick, on every one


def test_one_failed_tick_is_not_an_outage_and_its_counts_come_with_the_next() -> None:
    """A tick that cannot read Prometheus, between two that can, tells no Rollout (it would
    cost each a status write) and loses nothing: the next reading's counts cover its span. A
    success in between starts the count of failed ticks again."""
    world, _, controller, metrics = _controlled()
    metrics.pods = dict(
        [_pod("t", "podinfo", "s1", 100, 0), _pod("t", "podinfo-canary", "c1", 10, 0)]
    )
    controller.measure()
    world.clock.advance(timedelta(seconds=16))
    metrics.available = False
    controller.measure()
    assert len(controller.queue) == 0
    world.clock.advance(timedelta(seconds=5))
    metrics.available = True
    metrics.pods = dict(
        [_pod("t", "podinfo", "s1", 300, 1), _pod("t", "podinfo-canary", "c1", 60, 0)]
    )
    controller.measure()
    item = controller.queue.pop_due()
    assert item is not None
    assert item[0] == world.ref
    assert item[1] is not None
    assert item[1].evidence is not None
    assert (item[1].evidence.canary.requests, item[1].evidence.stable.requests) == (50, 200)
    controller.queue.done(world.ref)
    metrics.available = False
    controller.measure()
    metrics.available = True
    controller.measure()
    metrics.available = False
    controller.measure()
    assert controller.queue.pop_due() is None


def _scraped(metrics: FakeMetrics, stable: int, canary: int) -> None:
    """Prometheus now holds these requests (none failed) for t/podinfo-2's two pods."""
    metrics.pods = dict(
        [_pod("t", "podinfo", "s1", stable, 0), _pod("t", "podinfo-canary", "c1", canary, 0)]
    )


def _drained(controller: Controller) -> list[tuple[Ref, rec.Measurement | None]]:
    """Every item due now, each reconcile marked done."""
    items = []
    while (item := controller.queue.pop_due()) is not None:
        controller.queue.done(item[0])
        items.append(item)
    return items


def test_after_a_prometheus_outage_a_window_waits_for_both_arms_new_scrapes() -> None:
    """Prometheus down for 30 s (every Rollout told), then restarted: its first answers hold
    the stable pod's new counters beside the canary pod's from before the outage (each pod is
    scraped again at its own moment, up to 15 s after the first answer). The window open
    across the outage ends (its canary requests would make a window "with both arms"); a new
    one starts at the first answer and is not judged on the stable's new counts alone (the
    canary would seem to get next to nothing), but once the canary's come too."""
    world, _, controller, metrics = _controlled()
    _scraped(metrics, 100, 10)
    controller.measure()
    world.clock.advance(timedelta(seconds=16))
    _scraped(metrics, 300, 60)
    controller.measure()
    assert [ref for ref, _ in _drained(controller)] == [world.ref]
    world.clock.advance(timedelta(seconds=8))
    _scraped(metrics, 300, 70)  # the canary pod scraped in the next window, then the outage
    controller.measure()
    metrics.available = False
    for _ in range(15):
        world.clock.advance(timedelta(seconds=2))
        controller.measure()
    told = _drained(controller)
    assert told
    assert all(m is not None and m.error for _, m in told)
    world.clock.advance(timedelta(seconds=2))
    metrics.available = True
    controller.measure()  # the first answer: nothing scraped since the restart yet
    world.clock.advance(timedelta(seconds=5))
    _scraped(metrics, 900, 70)
    controller.measure()
    world.clock.advance(timedelta(seconds=10))
    _scraped(metrics, 910, 70)
    controller.measure()
    assert _drained(controller) == []  # 15 s: a window's length, the stable's new counts only
    world.clock.advance(timedelta(seconds=3))
    _scraped(metrics, 910, 215)
    controller.measure()
    (ref, measured), *_ = _drained(controller)
    assert ref == world.ref
    assert measured is not None
    assert measured.evidence is not None
    assert (measured.evidence.canary.requests, measured.evidence.stable.requests) == (145, 610)


def test_changes_to_a_rollouts_deployments_wake_it() -> None:
    """A change to a reconciled Rollout's stable Deployment, or to an object labelled with the
    Rollout's name, queues that Rollout; a change to an unrelated Deployment queues nothing."""
    world, _, controller, _ = _controlled()
    stop = threading.Event()
    controller.on_change(Change("Deployment", "t", "unrelated"))
    assert len(controller.queue) == 0
    controller.on_change(Change("Deployment", "t", "podinfo"))
    assert controller.queue.get(stop) == (world.ref, None)
    controller.on_change(Change("Deployment", "u", "x", labels={ROLLOUT_LABEL: "web"}))
    assert controller.queue.get(stop) == (Ref("u", "web"), None)


ROUTE_NAME = "podinfo-route"


def test_a_change_to_the_route_a_rollout_steers_wakes_it() -> None:
    """A route change (the mesh accepted it, someone edited its weights) queues the Rollout
    that steers it at once, not on its next timer; another namespace's route queues nothing."""
    world, _, controller, _ = _controlled(make_rollout(traffic={"routeName": ROUTE_NAME}))
    stop = threading.Event()
    route = plan_mod.build(world.rollout, None).route_name
    assert route == ROUTE_NAME  # not a Deployment's name: only the route leads back
    controller.on_change(Change(ROUTE, "elsewhere", route))
    controller.on_change(Change(ROUTE, "t", "unrelated"))
    assert len(controller.queue) == 0
    controller.on_change(Change(ROUTE, "t", route))
    assert len(controller.queue) == 1
    assert controller.queue.get(stop) == (world.ref, None)


def test_a_deleted_rollout_leaves_nothing_behind_in_measuring() -> None:
    """Once a reconcile finds the Rollout deleted, it is no longer measured and neither its
    Deployments nor its route lead back to it (what the controller keeps is bounded by the
    Rollouts that exist)."""
    world, _, controller, _ = _controlled(make_rollout(traffic={"routeName": ROUTE_NAME}))
    route = plan_mod.build(world.rollout, None).route_name
    del world.store.rollouts[world.ref]
    controller.work(world.ref)
    for change in (Change("Deployment", "t", "podinfo"), Change(ROUTE, "t", route)):
        controller.on_change(change)
    assert len(controller.queue) == 0
    controller.measure()
    assert len(controller.queue) == 0


def test_abort_reaches_a_promotion_that_missed_its_deadline() -> None:
    """A Failed promotion is reconciled again for `canary abort`: all traffic back to stable."""
    world = World()
    world.cluster.stable_rolls_out = False
    assert world.drive(ticks=1000) == "Failed"
    assert world.route_weight() == 50
    assert [(f.result, f.reason) for f in world.finished] == [("failed", "promotion_deadline")]
    world.cluster.stable_template, world.cluster.stable_ready = "v1", True  # rollout undo
    command = vocabulary.Command("abort", world.clock.now(), actor="ana")
    ((key, value),) = commands.encode(command).items()
    world.store.annotate(world.ref, key, value)
    world.drive()
    assert world.phase() == "Aborted"
    assert (world.route_weight(), world.cluster.canary_replicas) == (0, 0)
    assert world.cluster.stable_template == "v1"


class _LabelledMeanwhile(MemoryRolloutStore):
    """A store where, once, another writer labels the Rollout between the reconciler's read
    and its status write (as retention adds ``canary.dev/target`` in a release's first
    minute), or annotates it (a person's command)."""

    def __init__(self, key: str, *, annotation: bool = False) -> None:
        super().__init__()
        self.key, self.annotation, self.armed = key, annotation, False

    def write_status(self, rollout: Rollout, status: RolloutStatus) -> None:
        if self.armed:
            self.armed = False
            ref = Ref(rollout.metadata.namespace, rollout.metadata.name)
            (self.annotate if self.annotation else self.label)(ref, self.key, "podinfo")
        super().write_status(rollout, status)


def _failing_at_10_percent(store: MemoryRolloutStore) -> tuple[World, Controller]:
    world = World(store=store)
    for _ in range(2):
        world.tick()
    stored = world.store.get(world.ref)
    assert stored is not None
    assert (stored.status.phase, stored.status.message) == (
        "Progressing",
        "step 1 at 10%: measuring",
    )
    assert world.route_weight() == 10
    world.cluster.canary_error_rate = 1.0
    controller = Controller(world.reconciler, world.store, FakeMetrics(), world.clock)
    return world, controller


def test_a_rollback_is_recorded_though_a_label_was_added_meanwhile() -> None:
    """The reconcile that rolls back sets the route to 0% and then writes its status, while
    retention has just labelled the Rollout: the write still lands (the status was not decided
    from labels), so no retry finds the release at 10% with the route at 0% and sets it back."""
    store = _LabelledMeanwhile("canary.dev/target")
    world, controller = _failing_at_10_percent(store)
    store.armed = True
    measurement = rec.Measurement(evidence=world.cluster.evidence(30))
    controller.queue.add(world.ref, measurement=measurement)
    assert controller.run_due() == 1
    assert not store.armed  # the label was written between the read and the write
    stored = world.store.get(world.ref)
    assert stored is not None
    assert stored.metadata.labels == {"canary.dev/target": "podinfo"}
    assert stored.status.phase in ("RollingBack", "RolledBack")
    assert world.route_weight() == 0
    for _ in range(5):
        world.clock.advance(rec.RETRY_TRANSIENT)
        controller.run_due()
        assert world.route_weight() == 0
    assert world.cluster.stable_template == "v1"


def test_a_rollback_that_loses_its_status_write_to_a_command_moves_no_traffic() -> None:
    """A person's command lands between the reconcile's read and its write of a rollback: that
    write is a Conflict (the status is decided from commands), and since a rollback is written
    before traffic moves, the route is still at the step's 10%, not at 0% under a status that
    says 10%. The retry, handed the same measurement, rolls back; the route never goes back
    up once it is at 0%."""
    store = _LabelledMeanwhile("canary.dev/approve", annotation=True)
    world, controller = _failing_at_10_percent(store)
    before = len(world.events.events)
    store.armed = True
    measurement = rec.Measurement(evidence=world.cluster.evidence(30))
    controller.queue.add(world.ref, measurement=measurement)
    assert controller.run_due() == 1
    assert not store.armed  # the command landed between the read and the write
    stored = world.store.get(world.ref)
    assert stored is not None
    assert (stored.status.phase, world.route_weight()) == ("Progressing", 10)
    assert world.events.events[before:] == []  # no Event for a rollback not recorded
    world.clock.advance(rec.RETRY_TRANSIENT)
    assert controller.run_due() == 1
    stored = world.store.get(world.ref)
    assert stored is not None
    assert stored.status.phase in ("RollingBack", "RolledBack")
    assert world.route_weight() == 0
    assert [reason for _, reason in world.events.events].count("AnalysisFailed") == 1
    # Past the canary's drain (machine.CANARY_DRAIN) to the end of the rollback.
    for _ in range(5 + machine.CANARY_DRAIN // rec.RETRY_TRANSIENT):
        world.clock.advance(rec.RETRY_TRANSIENT)
        controller.run_due()
        assert world.route_weight() == 0
    assert world.phase() == "RolledBack"
    assert world.cluster.stable_template == "v1"


def test_a_failed_reconciles_measurement_goes_to_its_retry() -> None:
    """A reconcile that ends in an error (here: a person's command landed between its read
    and its status write) hands its measurement to the retry, unless a newer one waits."""
    store = _LabelledMeanwhile("canary.dev/approve", annotation=True)
    world, _ = _failing_at_10_percent(store)
    seen: list[rec.Measurement | None] = []

    class Spy:
        """The world's reconciler, noting the measurement each reconcile is handed."""

        def reconcile(self, ref: Ref, measurement: rec.Measurement | None = None) -> rec.Result:
            seen.append(measurement)
            return world.reconciler.reconcile(ref, measurement)

    controller = Controller(Spy(), world.store, FakeMetrics(), world.clock)
    store.armed = True
    first = rec.Measurement(error="prometheus down")
    controller.queue.add(world.ref, measurement=first)
    assert controller.run_due() == 1
    assert not store.armed  # the command landed: the status write was a Conflict
    world.clock.advance(rec.RETRY_TRANSIENT)
    assert controller.run_due() == 1
    assert seen == [first, first]

    newer = rec.Measurement(error="still down")
    controller.queue.give_back(world.ref, first)
    controller.queue.add(world.ref, measurement=newer)
    controller.queue.give_back(world.ref, first)
    assert controller.run_due() == 1
    assert seen[-1] == newer
