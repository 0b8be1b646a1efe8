"""Several workers share the work queue: a Rollout being reconciled is never handed out again
until its reconcile is done (then at once, if it was woken meanwhile), and a Rollout whose
reconciles keep failing waits twice as long after each failure, back to normal on a success."""

from __future__ import annotations

import threading
from datetime import timedelta

from canary.errors import ApiUnavailable, Conflict
from canary.ports import Ref
from canary.runtime import guard
from canary.runtime.controller import BACKOFF_MAX, Controller, WorkQueue
from canary.runtime.reconciler import RETRY_TRANSIENT, Measurement
from tests.fake_store import MemoryRolloutStore
from tests.fakes import FakeClock, FakeEvents, FakeMetrics, FakeRouter
from tests.unit.fake_cluster import T0, make_rollout
from tests.unit.test_worker_survives_any_error_in_one_rollout import PoisonedWorkloads


def test_an_active_rollout_is_held_back_until_done() -> None:
    """Woken while a worker has it, a Rollout waits; others pass it; done releases it."""
    queue = WorkQueue(FakeClock(T0))
    stop = threading.Event()
    a, b = Ref("n", "a"), Ref("n", "b")
    queue.add(a)
    assert queue.get(stop) == (a, None)
    queue.add(a)  # a watch event while the first worker reconciles it
    queue.add(b, timedelta(0))
    assert queue.get(stop) == (b, None)  # a second worker gets b, not a
    assert queue.pop_due() is None  # a is held back
    assert len(queue) == 1
    queue.done(a)
    assert queue.get(stop) == (a, None)
    queue.done(a)
    queue.done(b)
    assert len(queue) == 0


def test_held_back_rollout_keeps_its_measurement() -> None:
    """A measuring tick's counts for an active Rollout ride along once it is released."""
    queue = WorkQueue(FakeClock(T0))
    stop = threading.Event()
    a = Ref("n", "a")
    queue.add(a)
    assert queue.get(stop) == (a, None)
    queue.add(a, measurement=Measurement(error="down"))
    assert queue.pop_due() is None
    queue.done(a)
    assert queue.get(stop) == (a, Measurement(error="down"))


def _failing() -> tuple[Controller, PoisonedWorkloads, FakeClock]:
    clock = FakeClock(T0)
    rollout = make_rollout()
    meta = rollout.metadata.model_copy(update={"name": "bad", "resource_version": "1"})
    store = MemoryRolloutStore(rollout.model_copy(update={"metadata": meta}))
    workloads = PoisonedWorkloads("bad")
    workloads.poison = ApiUnavailable("the API server is down")
    reconciler = guard.GuardedReconciler(
        store, workloads, {"HTTPRoute": FakeRouter()}, FakeEvents(), clock
    )
    return Controller(reconciler, store, FakeMetrics(), clock), workloads, clock


def _delays(controller: Controller, clock: FakeClock, times: int) -> list[timedelta]:
    """Run the due Rollout ``times`` times, each when it is due; the requeue delays."""
    delays = []
    for _ in range(times):
        assert controller.run_due() == 1
        due = controller.queue.next_due()
        assert due is not None
        delays.append(due - clock.now())
        clock.advance(due - clock.now())
    return delays


def test_failing_rollout_backs_off_exponentially_and_recovers() -> None:
    """Each failure in a row doubles the retry delay (capped); a success resets it."""
    controller, workloads, clock = _failing()
    controller.queue.add(Ref("t", "bad"))
    base = RETRY_TRANSIENT
    doubling = [base * 2**k for k in range(8)]  # 2 s … 256 s
    assert _delays(controller, clock, 10) == [*doubling, BACKOFF_MAX, BACKOFF_MAX]
    workloads.poison = None
    assert controller.run_due() == 1  # succeeds: the count of failures is forgotten
    workloads.poison = ApiUnavailable("down again")
    controller.queue.add(Ref("t", "bad"))
    assert _delays(controller, clock, 1) == [base]  # the count started over


def test_a_conflict_is_retried_without_growing_delay() -> None:
    """A Conflict is a lost race, not a failure: retried after the usual delay each time."""
    controller, workloads, clock = _failing()
    workloads.poison = Conflict("the object has been modified")
    controller.queue.add(Ref("t", "bad"))
    assert _delays(controller, clock, 4) == [RETRY_TRANSIENT] * 4
