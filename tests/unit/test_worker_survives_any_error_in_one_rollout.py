"""The worker's catch-all: an unexpected exception in one Rollout's reconcile is reported on it
(condition and Warning Event), counted by class, retried later, and other Rollouts go on."""

from __future__ import annotations

from datetime import timedelta

from canary.core import plan as plan_mod
from canary.core import vocabulary
from canary.ports import Ref, WorkloadState
from canary.runtime import guard
from canary.runtime.controller import Controller
from canary.runtime.reconciler import Result
from tests.fake_store import MemoryRolloutStore
from tests.fakes import FakeClock, FakeEvents, FakeMetrics, FakeRouter
from tests.unit.fake_cluster import T0, FakeCluster, make_rollout


class PoisonedWorkloads:
    """Workloads over a FakeCluster that raise an unexpected error for one Rollout."""

    def __init__(self, poisoned: str) -> None:
        self.cluster, self.poisoned = FakeCluster(), poisoned
        self.poison: Exception | None = ZeroDivisionError("boom https://secret.example/x")

    def observe(self, namespace: str, rollout: str, plan: plan_mod.Plan) -> WorkloadState:
        if rollout == self.poisoned and self.poison is not None:
            raise self.poison
        obs = self.cluster.observe()
        return WorkloadState(obs.target, obs.apex_service, obs.canary, obs.services_ready)

    def apply(
        self, namespace: str, rollout: str, plan: plan_mod.Plan, action: vocabulary.Action
    ) -> None:
        self.cluster.apply(action)


def _world() -> tuple[MemoryRolloutStore, PoisonedWorkloads, FakeEvents, guard.GuardedReconciler]:
    events = FakeEvents()
    workloads = PoisonedWorkloads("bad")
    rollouts = []
    for name in ("bad", "good"):
        rollout = make_rollout()
        meta = rollout.metadata.model_copy(update={"name": name, "resource_version": "1"})
        rollouts.append(rollout.model_copy(update={"metadata": meta}))
    store = MemoryRolloutStore(*rollouts)
    reconciler = guard.GuardedReconciler(
        store, workloads, {"HTTPRoute": FakeRouter()}, events, FakeClock(T0)
    )
    return store, workloads, events, reconciler


def test_an_unexpected_error_is_reported_counted_and_retried() -> None:
    """The Result names the error's class and asks for a retry; the Rollout gets a False
    Reconciled condition and a Warning Event that do not quote the error's text."""
    store, _, events, reconciler = _world()
    result = reconciler.reconcile(Ref("t", "bad"))
    assert result == Result(guard.RETRY_UNEXPECTED, error="ZeroDivisionError")
    bad = store.get(Ref("t", "bad"))
    assert bad is not None
    (condition,) = [c for c in bad.status.conditions if c.type == "Reconciled"]
    assert (condition.status, condition.reason) == ("False", "UnexpectedError")
    assert "ZeroDivisionError" in condition.message
    assert "secret" not in condition.message
    assert events.events == [("bad", "ReconcileFailed")]


def test_the_condition_clears_once_the_rollout_reconciles_again() -> None:
    """After the cause goes away, the next reconcile sets Reconciled back to True."""
    store, workloads, _, reconciler = _world()
    reconciler.reconcile(Ref("t", "bad"))
    workloads.poison = None
    assert reconciler.reconcile(Ref("t", "bad")).error is None
    bad = store.get(Ref("t", "bad"))
    assert bad is not None
    (condition,) = [c for c in bad.status.conditions if c.type == "Reconciled"]
    assert condition.status == "True"


def test_the_worker_keeps_reconciling_other_rollouts() -> None:
    """With one Rollout failing on every reconcile, the worker loop goes on (it returns only
    when told to stop) and the other Rollout moves on from Pending."""
    store, _, _, reconciler = _world()
    clock = FakeClock(T0)
    results: list[Result] = []
    controller = Controller(
        reconciler,
        store,
        FakeMetrics(),
        clock,
        on_result=lambda result, _seconds: results.append(result),
    )

    class AfterTwoMore:
        """Stops the worker once it has reconciled two more Rollouts."""

        def __init__(self) -> None:
            self.target = controller.reconciles + 2

        def is_set(self) -> bool:
            return controller.reconciles >= self.target

        def wait(self, timeout: float | None = None) -> bool:
            return self.is_set()

    for _ in range(4):
        controller.queue.add(Ref("t", "bad"))
        controller.queue.add(Ref("t", "good"))
        controller.run_worker(AfterTwoMore())
        clock.advance(timedelta(seconds=5))
    assert controller.reconciles == 8
    assert [r.error for r in results].count("ZeroDivisionError") == 4
    good = store.get(Ref("t", "good"))
    assert good is not None
    assert good.status.phase != "Pending"
