"""The work queue tells how late each Rollout was handed to a worker (seconds past its due
time, never negative) and whether it carried counts to judge: the workers' backlog, which
``canary_workqueue_wait_seconds`` exports by work (failing, verdict, routine)."""

from __future__ import annotations

import threading
from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from canary.api.metrics import ControllerMetrics
from canary.core import judge
from canary.ports import Ref
from canary.runtime.controller import WorkQueue
from canary.runtime.reconciler import Measurement
from tests.fakes import FakeClock
from tests.unit.fake_cluster import T0

VERDICT = Measurement(evidence=judge.Evidence(judge.Arm(10, 3), judge.Arm(90)))
EARLY = Measurement(early=judge.Evidence(judge.Arm(5, 5), judge.Arm(45)))


def test_each_rollout_handed_out_reports_its_lateness_and_its_work() -> None:
    clock = FakeClock(T0)
    heard: list[tuple[float, str]] = []
    queue = WorkQueue(clock, lambda seconds, work: heard.append((seconds, work)))
    stop = threading.Event()
    a, b, c = Ref("n", "a"), Ref("n", "b"), Ref("n", "c")
    queue.add(a)  # due now
    queue.add(b, timedelta(seconds=10))
    clock.advance(timedelta(seconds=25))  # the workers fell 25 s behind
    queue.add(c, measurement=VERDICT)  # due now, with counts to judge: goes first
    assert queue.get(stop) == (c, VERDICT)
    assert queue.get(stop) == (a, None)
    assert queue.get(stop) == (b, None)
    assert heard == [(0.0, "verdict"), (25.0, "routine"), (15.0, "routine")]


def test_a_failing_is_reported_apart_and_a_rollout_taken_on_time_waited_zero() -> None:
    clock = FakeClock(T0)
    heard: list[tuple[float, str]] = []
    queue = WorkQueue(clock, lambda seconds, work: heard.append((seconds, work)))
    a = Ref("n", "a")
    queue.add(a, timedelta(seconds=5), measurement=EARLY)
    assert queue.pop_due() is None  # not due: nothing reported
    clock.advance(timedelta(seconds=5))
    assert queue.pop_due() == (a, EARLY)
    assert heard == [(0.0, "failing")]


def test_the_registry_exports_the_waits_by_work_and_the_queues_depth() -> None:
    clock = FakeClock(T0)
    queue: WorkQueue
    metrics = ControllerMetrics(queue=lambda: queue.backlog())  # noqa: PLW0108 (late-bound)
    queue = WorkQueue(clock, metrics.observe_wait)
    for i in range(3):
        queue.add(Ref("n", f"r{i}"))
    queue.add(Ref("n", "later"), timedelta(minutes=5))  # queued, not due: no backlog
    clock.advance(timedelta(seconds=20))
    queue.add(Ref("n", "v"), measurement=VERDICT)
    queue.add(Ref("n", "e"), timedelta(seconds=-2), measurement=EARLY)
    assert queue.pop_due() == (Ref("n", "e"), EARLY)  # a failing look first: waited 2 s
    assert queue.pop_due() == (Ref("n", "v"), VERDICT)  # waited 0 s
    assert queue.pop_due() is not None  # r0 waited 20 s
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
    }
    assert samples["canary_workqueue_depth", frozenset()] == 2  # r1 and r2 due and waiting
    verdict, routine = {("work", "verdict")}, {("work", "routine")}
    assert samples["canary_workqueue_wait_seconds_sum", frozenset({("work", "failing")})] == 2
    assert samples["canary_workqueue_wait_seconds_count", frozenset(verdict)] == 1
    assert (
        samples["canary_workqueue_wait_seconds_bucket", frozenset({*verdict, ("le", "0.01")})] == 1
    )
    assert samples["canary_workqueue_wait_seconds_count", frozenset(routine)] == 1
    assert samples["canary_workqueue_wait_seconds_sum", frozenset(routine)] == 20
    assert (
        samples["canary_workqueue_wait_seconds_bucket", frozenset({*routine, ("le", "15.0")})] == 0
    )
    assert (
        samples["canary_workqueue_wait_seconds_bucket", frozenset({*routine, ("le", "30.0")})] == 1
    )


def test_the_scale_harness_reads_the_rounds_waits_from_two_scrapes() -> None:
    """bench.scale takes the round's waits as the difference of two /metrics reads, and
    quotes the bucket bounds holding the median and the 99th percentile."""
    from bench import scale

    clock = FakeClock(T0)
    metrics = ControllerMetrics()
    queue = WorkQueue(clock, metrics.observe_wait)
    queue.add(Ref("n", "before"))
    clock.advance(timedelta(seconds=200))
    assert queue.pop_due() is not None  # before the round: 200 s late, not counted
    before = scale.metric_samples(metrics.exposition().decode())
    for i in range(100):
        queue.add(Ref("n", f"v{i}"), measurement=VERDICT)
    clock.advance(timedelta(seconds=0.3))
    for _ in range(99):
        assert queue.pop_due() is not None  # 0.3 s late: in the 0.5 bucket
    clock.advance(timedelta(seconds=40))
    assert queue.pop_due() is not None  # 40.3 s late: in the 60 bucket
    after = scale.metric_samples(metrics.exposition().decode())
    verdicts = scale.wait_buckets(before, after, "verdict")
    assert verdicts[-1] == (float("inf"), 100)
    assert scale.wait_quantile(verdicts, 0.5) == 0.5
    assert scale.wait_quantile(verdicts, 0.99) == 0.5
    assert scale.wait_quantile(verdicts, 1.0) == 60.0
    routine = scale.wait_buckets(before, after, "routine")
    assert routine[-1] == (float("inf"), 0)  # the one before the round is not counted
    assert "verdict 100 taken, median ≤ 0.5 s, p99 ≤ 0.5 s past due" in scale.waits(
        scale.Report(100, waits={"verdict": verdicts, "routine": routine})
    )


def test_counts_that_join_a_rollout_already_waiting_are_late_from_when_they_came() -> None:
    """A failing look joining a window that has waited 40 s waited only for its own turn (run
    U's failing lane read "median ≤ 30 s" from the windows' due times, an upper bound); counts
    joining an overdue routine requeue likewise; a second window keeps the first's wait; a
    measurement given back after a failed reconcile is late from its retry's due time."""
    clock = FakeClock(T0)
    heard: list[tuple[float, str]] = []
    queue = WorkQueue(clock, lambda seconds, work: heard.append((seconds, work)))
    window, look, routine, twice = Ref("n", "w"), Ref("n", "l"), Ref("n", "r"), Ref("n", "t")
    queue.add(look, measurement=VERDICT)
    queue.add(routine)
    queue.add(twice, measurement=VERDICT)
    clock.advance(timedelta(seconds=40))
    queue.add(look, measurement=EARLY)  # now failing: from here
    queue.add(routine, measurement=VERDICT)  # now a verdict: from here
    queue.add(twice, measurement=VERDICT)  # still a verdict: from the first window
    clock.advance(timedelta(seconds=1))
    taken = []
    while (item := queue.pop_due()) is not None:
        taken.append(item[0])
        queue.done(item[0])
    assert taken == [look, twice, routine]
    assert heard == [(1.0, "failing"), (41.0, "verdict"), (1.0, "verdict")]
    heard.clear()
    queue.add(window, measurement=EARLY)
    assert queue.pop_due() == (window, EARLY)
    queue.give_back(window, EARLY)  # its reconcile failed: retried after a backoff
    queue.done(window)
    queue.add(window, timedelta(seconds=8))
    clock.advance(timedelta(seconds=10))
    assert queue.pop_due() == (window, EARLY)
    assert heard == [(0.0, "failing"), (2.0, "failing")]
