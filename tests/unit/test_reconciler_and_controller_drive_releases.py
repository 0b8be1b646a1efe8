"""The runtime with fakes behind its ports: the reconciler reads, decides, acts and writes;
the controller's queue and measuring tick feed it."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta

from canary.core import evidence, history, machine
from canary.core import plan as plan_mod
from canary.model.linkerd import LATENCY_BUCKETS_MS
from canary.model.rollout import Rollout, RolloutPolicy
from canary.ports import Arms, Ref, WorkloadState
from canary.runtime import reconciler as rec
from canary.runtime.controller import Controller, WorkQueue
from tests.fakes import FakeClock, FakeEvents, FakeMetrics, FakeRouter, FakeStore
from tests.unit.fake_cluster import T0, FakeCluster, make_rollout


class ClusterWorkloads:
    """``ports.Workloads`` over the unit tests' FakeCluster."""

    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster
        self.fail_with: Exception | None = None

    def observe(self, namespace: str, rollout: str, plan: plan_mod.Plan) -> WorkloadState:
        obs = self.cluster.observe()
        return WorkloadState(obs.target, obs.apex_service, obs.canary, obs.services_ready)

    def apply(
        self, namespace: str, rollout: str, plan: plan_mod.Plan, action: machine.Action
    ) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.cluster.apply(action)


def _world(
    rollout: Rollout | None = None,
) -> tuple[FakeStore, FakeCluster, FakeRouter, FakeEvents, FakeClock, rec.Reconciler, Ref]:
    store, cluster, router = FakeStore(), FakeCluster(), FakeRouter()
    events, clock = FakeEvents(), FakeClock(T0)
    ref = store.add(rollout or make_rollout())
    reconciler = rec.Reconciler(
        store, ClusterWorkloads(cluster), {"HTTPRoute": router}, events, clock
    )
    return store, cluster, router, events, clock, reconciler, ref


def _sync(reconciler: rec.Reconciler, cluster: FakeCluster) -> None:
    """Traffic follows the router's weight, as the mesh would."""
    router = reconciler._routers["HTTPRoute"]
    assert isinstance(router, FakeRouter)
    for route in router.routes.values():
        cluster.route_exists, cluster.weight = True, route.canary_weight


def _drive(
    *,
    store: FakeStore,
    cluster: FakeCluster,
    clock: FakeClock,
    reconciler: rec.Reconciler,
    ref: Ref,
    ticks: int = 40,
    finished: list[history.Finished] | None = None,
) -> str:
    for _ in range(ticks):
        result = reconciler.reconcile(ref, rec.Measurement(evidence=cluster.evidence(5)))
        if finished is not None and result.finished is not None:
            finished.append(result.finished)
        _sync(reconciler, cluster)
        cluster.settle()
        clock.advance(timedelta(seconds=5))
        if result.phase in ("Succeeded", "RolledBack", "Failed"):
            return result.phase
    stored = store.get(ref)
    assert stored is not None
    return stored.status.phase


def test_reconciler_promotes_a_healthy_release() -> None:
    """Reconciles with healthy evidence end in Succeeded, with Events and status written."""
    store, cluster, _, events, clock, reconciler, ref = _world()
    finished: list[history.Finished] = []
    assert (
        _drive(
            store=store,
            cluster=cluster,
            clock=clock,
            reconciler=reconciler,
            ref=ref,
            finished=finished,
        )
        == "Succeeded"
    )
    stored = store.get(ref)
    assert stored is not None
    assert stored.status.phase == "Succeeded"
    assert [(f.result, f.reason) for f in finished] == [("promoted", "analysis_passed")]
    assert reconciler.reconcile(ref).finished is None  # counted once, when it ended
    assert stored.status.observed_generation == 1
    assert cluster.stable_template == "v2"
    assert ("podinfo-2", "Promoted") in events.events


def test_reconciler_rolls_back_a_failing_release() -> None:
    """A canary failing half its requests is rolled back; stable never changes."""
    store, cluster, _, _, clock, reconciler, ref = _world()
    cluster.canary_error_rate = 0.5
    finished: list[history.Finished] = []
    assert (
        _drive(
            store=store,
            cluster=cluster,
            clock=clock,
            reconciler=reconciler,
            ref=ref,
            finished=finished,
        )
        == "RolledBack"
    )
    assert [(f.result, f.reason) for f in finished] == [("rolled_back", "analysis")]
    assert cluster.stable_template == "v1"
    assert cluster.weight == 0


def test_lost_status_race_is_retried_soon() -> None:
    """A resourceVersion conflict on the status write comes back as a short requeue."""
    store, _, _, _, _, reconciler, ref = _world()
    store.conflicts = 1
    result = reconciler.reconcile(ref)
    assert result.requeue_after == rec.RETRY_TRANSIENT
    assert result.error == "Conflict"
    stored = store.get(ref)
    assert stored is not None
    assert stored.status.phase == "Pending"


def test_missing_policy_is_a_condition_and_a_retry() -> None:
    """A policyRef to a policy that does not exist: Valid=False PolicyNotFound, retried."""
    rollout = make_rollout(policyRef={"name": "nope"})
    store, _, router, _, _, reconciler, ref = _world(rollout)
    result = reconciler.reconcile(ref)
    assert result.requeue_after == rec.RETRY_REFERENCES
    stored = store.get(ref)
    assert stored is not None
    valid = {c.type: c for c in stored.status.conditions}["Valid"]
    assert (valid.status, valid.reason) == ("False", "PolicyNotFound")
    assert router.routes == {}


def test_policy_is_merged_in() -> None:
    """A referenced policy that exists supplies what the Rollout leaves out."""
    rollout = make_rollout(policyRef={"name": "podinfo"}, service=None, steps=None)
    store, cluster, _, _, clock, reconciler, ref = _world(rollout)
    store.policies[Ref("t", "podinfo")] = RolloutPolicy.model_validate(
        {
            "metadata": {"name": "podinfo", "namespace": "t"},
            "spec": {"service": {"name": "podinfo", "port": 80}, "steps": [{"setWeight": 50}]},
        }
    )
    assert (
        _drive(store=store, cluster=cluster, clock=clock, reconciler=reconciler, ref=ref)
        == "Succeeded"
    )


def test_invalid_spec_fails_without_actions() -> None:
    """A semantically invalid spec is reported in status; nothing is created."""
    rollout = make_rollout(steps=[{"setWeight": 50}, {"setWeight": 10}])
    store, _, router, events, _, reconciler, ref = _world(rollout)
    assert reconciler.reconcile(ref).phase == "Failed"
    stored = store.get(ref)
    assert stored is not None
    assert "spec.steps[1].setWeight" in stored.status.message
    assert router.routes == {}
    assert events.events == [("podinfo-2", "InvalidSpec")]


def test_release_that_cannot_apply_mid_flight_routes_back() -> None:
    """When an action reports the release invalid mid-way, traffic goes back to stable."""
    _, cluster, router, _, clock, reconciler, ref = _world()
    for _ in range(3):
        reconciler.reconcile(ref, rec.Measurement(evidence=cluster.evidence(5)))
        _sync(reconciler, cluster)
        cluster.settle()
        clock.advance(timedelta(seconds=5))
    assert cluster.weight > 0
    workloads = reconciler._workloads
    assert isinstance(workloads, ClusterWorkloads)
    from canary.errors import InvalidSpec, Problem

    workloads.fail_with = InvalidSpec([Problem("spec.release.images.x", "no container x")])
    assert reconciler.reconcile(ref).phase == "Failed"
    route = next(iter(router.routes.values()))
    assert route.canary_weight == 0


def test_deleted_rollout_is_forgotten() -> None:
    """A Rollout that no longer exists is not requeued."""
    store, _, _, _, _, reconciler, ref = _world()
    del store.rollouts[ref]
    assert reconciler.reconcile(ref).requeue_after is None


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


class CountingMetrics(FakeMetrics):
    """FakeMetrics that records how many arms each snapshot asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def snapshot(self, targets: Sequence[Arms]) -> evidence.Snapshot:
        self.calls.append(len(targets))
        return super().snapshot(targets)


def _pod(
    namespace: str, deployment: str, pod: str, requests: int, failures: int
) -> tuple[evidence.PodKey, evidence.PodCounters]:
    buckets = [0] * len(LATENCY_BUCKETS_MS)
    buckets[6] = requests
    cumulative = tuple(sum(buckets[: i + 1]) for i in range(len(buckets)))
    return evidence.PodKey(namespace, deployment, pod), evidence.PodCounters(
        requests=requests, failures=failures, buckets=cumulative
    )


def test_measuring_tick_batches_and_waits_for_the_new_weight() -> None:
    """One snapshot serves every judged Rollout; counts right after a weight change are ignored
    until Prometheus has scraped the new weight; an outage is passed on as an error."""
    store, cluster, router, events, clock, reconciler, ref = _world()
    other = store.add(
        make_rollout().model_copy(
            update={
                "metadata": make_rollout().metadata.model_copy(
                    update={"name": "web", "namespace": "u"}
                )
            }
        )
    )
    metrics = CountingMetrics()
    calls = metrics.calls
    controller = Controller(reconciler, store, metrics, clock, settle=timedelta(seconds=12))
    stop = threading.Event()
    for key in (ref, other):
        for _ in range(3):
            result = reconciler.reconcile(key)
            controller._remember(key, result)
            cluster.settle()
    assert len(controller._judged) == 2
    metrics.pods = dict(
        [_pod("t", "podinfo", "s1", 100, 0), _pod("t", "podinfo-canary", "c1", 10, 0)]
    )
    controller.measure()
    assert calls == [2]
    assert len(controller.queue) == 0  # within the settle time: counts only set the baseline
    clock.advance(timedelta(seconds=16))
    metrics.pods = dict(
        [_pod("t", "podinfo", "s1", 300, 1), _pod("t", "podinfo-canary", "c1", 60, 0)]
    )
    controller.measure()
    assert calls == [2, 2]
    assert len(controller.queue) == 1  # "web" waits: Prometheus shows none of its canary pods
    item = controller.queue.get(stop)
    assert item is not None
    assert item[0] == ref
    tick = item[1]
    assert tick is not None
    assert tick.evidence is not None
    assert (tick.evidence.canary.requests, tick.evidence.stable.requests) == (50, 200)
    metrics.available = False
    controller.measure()
    errors = [controller.queue.get(stop), controller.queue.get(stop)]
    assert {e[0] for e in errors if e is not None} == {ref, other}
    assert all(e is not None and e[1] is not None and "fake://" in str(e[1].error) for e in errors)
    assert router.routes
    assert events.events
