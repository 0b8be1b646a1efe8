"""When the workers fall behind, a Rollout with counts to judge (a window's or an early look's)
is handed out before Rollouts that are merely due, however long those have waited — three at a
time, then one routine Rollout, so neither kind starves. A measurement that is only an error
(metrics unavailable) is routine, and nothing is handed out before it is due."""

from __future__ import annotations

import threading
from datetime import timedelta

from canary.core import judge
from canary.ports import Ref
from canary.runtime.controller import URGENT_IN_A_ROW, WorkQueue
from canary.runtime.reconciler import Measurement
from tests.fakes import FakeClock
from tests.unit.fake_cluster import T0

COUNTS = judge.Evidence(canary=judge.Arm(100, 50), stable=judge.Arm(900, 1))
WINDOW = Measurement(evidence=COUNTS)
EARLY = Measurement(early=COUNTS)


def _drain(queue: WorkQueue) -> list[str]:
    order = []
    while (item := queue.pop_due()) is not None:
        order.append(item[0].name)
        queue.done(item[0])
    return order


def test_counts_to_judge_go_before_overdue_routine_work() -> None:
    clock = FakeClock(T0)
    queue = WorkQueue(clock)
    for name in ("r1", "r2", "r3"):  # routine requeues, overdue by a minute
        queue.add(Ref("n", name))
    clock.advance(timedelta(minutes=1))
    queue.add(Ref("n", "bad"), measurement=WINDOW)  # a tick's window
    queue.add(Ref("n", "r2"), measurement=EARLY)  # already queued: its look makes it urgent
    queue.add(Ref("n", "down"), measurement=Measurement(error="Prometheus is down"))
    assert _drain(queue) == ["r2", "bad", "r1", "r3", "down"]


def test_routine_work_gets_a_turn_after_a_run_of_urgent_ones() -> None:
    clock = FakeClock(T0)
    queue = WorkQueue(clock)
    queue.add(Ref("n", "routine"))
    clock.advance(timedelta(seconds=30))
    urgent = [f"u{i}" for i in range(URGENT_IN_A_ROW + 2)]
    for name in urgent:
        queue.add(Ref("n", name), measurement=WINDOW)
    assert _drain(queue) == [*urgent[:URGENT_IN_A_ROW], "routine", *urgent[URGENT_IN_A_ROW:]]


def test_urgent_work_is_not_handed_out_before_it_is_due_or_while_active() -> None:
    clock = FakeClock(T0)
    queue = WorkQueue(clock)
    stop = threading.Event()
    later = Ref("n", "later")
    queue.add(later, timedelta(seconds=10), measurement=WINDOW)
    queue.add(Ref("n", "now"))
    assert _drain(queue) == ["now"]
    clock.advance(timedelta(seconds=10))
    assert queue.get(stop) == (later, WINDOW)
    queue.add(later, measurement=WINDOW)  # the next tick, while a worker has it
    queue.add(Ref("n", "other"))
    assert queue.get(stop) == (Ref("n", "other"), None)
    assert queue.pop_due() is None
    queue.done(later)
    assert queue.get(stop) == (later, WINDOW)
