"""When the workers fall behind, a Rollout with counts to judge (a window's or an early look's)
is handed out before Rollouts that are merely due, however long those have waited — three at a
time, then one routine Rollout, so neither kind starves. A measurement that is only an error
(metrics unavailable) is routine, and nothing is handed out before it is due. Of the urgent ones,
a failing early look (a rollback) goes first; measurements that wait are merged, never dropped."""

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


def test_a_failing_early_look_goes_before_windows_that_were_due_sooner() -> None:
    """The tick queues an early look only when it fails (a rollback): it goes before windows
    of other Rollouts that have waited longer."""
    clock = FakeClock(T0)
    queue = WorkQueue(clock)
    for name in ("w1", "w2"):
        queue.add(Ref("n", name), measurement=WINDOW)
    clock.advance(timedelta(seconds=20))
    queue.add(Ref("n", "bad"), measurement=EARLY)
    assert _drain(queue) == ["bad", "w1", "w2"]


def test_a_failing_early_look_moves_a_waiting_window_ahead() -> None:
    """A bad canary's window waits behind other Rollouts' windows when the next tick finds its
    early look failing: the look joins the window, and the Rollout goes before the windows
    that were due sooner (not behind them, where a window alone waits)."""
    clock = FakeClock(T0)
    queue = WorkQueue(clock)
    for name in ("w1", "w2"):
        queue.add(Ref("n", name), measurement=WINDOW)
    clock.advance(timedelta(seconds=5))
    queue.add(Ref("n", "bad"), measurement=WINDOW)
    for name in ("w3", "w4"):
        queue.add(Ref("n", name), measurement=WINDOW)
    clock.advance(timedelta(seconds=5))
    queue.add(Ref("n", "bad"), measurement=EARLY)
    taken = queue.pop_due()
    assert taken == (Ref("n", "bad"), Measurement(evidence=COUNTS, early=COUNTS))
    queue.done(Ref("n", "bad"))
    assert _drain(queue) == ["w1", "w2", "w3", "w4"]


def test_windows_that_wait_add_up_and_nothing_measured_is_dropped() -> None:
    """Workers behind: a second window of a Rollout still waiting adds its counts to the
    first (consecutive windows at one weight), custom metrics from the newer; a metrics error
    arriving after a window leaves the window's counts, and a failing early look joins them;
    a failed reconcile's window given back joins the one that arrived meanwhile; a failing
    early look and a metrics error ride together, in either order."""
    clock = FakeClock(T0)
    queue = WorkQueue(clock)
    a, b = Ref("n", "a"), Ref("n", "b")
    newer = judge.Evidence(judge.Arm(10, 5), judge.Arm(90, 0), {"p": 2.0})
    queue.add(
        a,
        measurement=Measurement(evidence=judge.Evidence(COUNTS.canary, COUNTS.stable, {"p": 1.0})),
    )
    queue.add(a, measurement=Measurement(evidence=newer))
    queue.add(a, measurement=Measurement(error="Prometheus is down"))
    queue.add(a, measurement=EARLY)
    summed = judge.Evidence(judge.Arm(110, 55), judge.Arm(990, 1), {"p": 2.0})
    assert queue.pop_due() == (a, Measurement(evidence=summed, early=COUNTS))
    queue.add(a, measurement=Measurement(evidence=newer))  # the next tick, while a worker has it
    queue.give_back(a, Measurement(evidence=summed))  # its reconcile failed
    queue.done(a)
    total = judge.Evidence(judge.Arm(120, 60), judge.Arm(1080, 1), {"p": 2.0})
    assert queue.pop_due() == (a, Measurement(evidence=total))
    queue.add(b, measurement=Measurement(error="Prometheus is down"))
    queue.add(b, measurement=EARLY)  # a failing look joins the outage
    assert queue.pop_due() == (b, Measurement(error="Prometheus is down", early=COUNTS))
    queue.done(b)
    queue.add(b, measurement=EARLY)
    queue.add(b, measurement=Measurement(error="Prometheus is down"))  # the look stays
    queue.add(b, measurement=WINDOW)  # a window replaces the outage: counts came back
    assert queue.pop_due() == (b, Measurement(evidence=COUNTS, early=COUNTS))
