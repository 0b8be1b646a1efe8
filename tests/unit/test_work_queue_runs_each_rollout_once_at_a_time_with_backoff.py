"""Several workers share the work queue: a Rollout being reconciled is never handed out again
until its reconcile is done (then at once, if it was woken meanwhile), and a Rollout whose
reconciles keep failing waits twice as long after each failure, back to normal on a success."""

from __future__ import annotations

import threading
from datetime import timedelta

from canary.ports import Ref
from canary.runtime import guard
from canary.runtime.controller import BACKOFF_MAX, Controller, WorkQueue
from canary.runtime.reconciler import Measurement
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


def test_failing_rollout_backs_off_exponentially_and_recovers() -> None:
    """Each failure in a row doubles the retry delay (capped); a success resets it."""
    clock = FakeClock(T0)
    rollout = make_rollout()
    meta = rollout.metadata.model_copy(update={"name": "bad", "resource_version": "1"})
    store = MemoryRolloutStore(rollout.model_copy(update={"metadata": meta}))
    workloads = PoisonedWorkloads("bad")
    reconciler = guard.GuardedReconciler(
        store, workloads, {"HTTPRoute": FakeRouter()}, FakeEvents(), clock
    )
    controller = Controller(reconciler, store, FakeMetrics(), clock)
    bad = Ref("t", "bad")
    delays = []
    controller.queue.add(bad)
    for _ in range(6):
        assert controller.run_due() == 1
        due = controller.queue.next_due()
        assert due is not None
        delays.append(due - clock.now())
        clock.advance(due - clock.now())
    base = guard.RETRY_UNEXPECTED
    assert delays == [base, base * 2, base * 4, base * 8, BACKOFF_MAX, BACKOFF_MAX]
    workloads.poison = None
    assert controller.run_due() == 1  # succeeds: the count of failures is forgotten
    workloads.poison = ZeroDivisionError("again")
    controller.queue.add(bad)
    assert controller.run_due() == 1
    due = controller.queue.next_due()
    assert due is not None
    assert due - clock.now() == base  # the count started over
