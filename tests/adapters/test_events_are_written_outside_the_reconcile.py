"""The controller's Events are queued by the reconcile and written by threads of their own: a
reconcile does not wait for the API server to take an Event, the queue is bounded (when full, the
reconcile writes the Event itself: none is lost), every Event not written is counted, and a
stopped controller writes nothing more."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime

from canary.adapters.kube.events import QueuedEventRecorder, Subject
from canary.core.vocabulary import Event
from tests.unit.fake_cluster import make_rollout

WAIT = 10.0


class Writer:
    """Writes nothing until ``opened``; keeps what it was asked to write, in order."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.opened = threading.Event()
        self.entered = threading.Event()
        self.written: list[tuple[str, datetime, int]] = []
        self.subjects: list[Subject] = []
        self.fail = fail or set()
        self.done = threading.Condition()

    def write(self, subject: Subject, event: Event, at: datetime, serial: int) -> bool:
        self.entered.set()
        assert self.opened.wait(WAIT)
        with self.done:
            self.written.append((event.reason, at, serial))
            self.subjects.append(subject)
            self.done.notify_all()
        return event.reason not in self.fail

    def wait_for(self, count: int) -> None:
        with self.done:
            assert self.done.wait_for(lambda: len(self.written) >= count, WAIT), self.written


def _event(n: int) -> Event:
    return Event(type="Normal", reason=f"Step{n}", message=f"step {n}")


def _run(
    queue: QueuedEventRecorder, threads: int
) -> tuple[threading.Event, list[threading.Thread]]:
    stop = threading.Event()
    started = [
        threading.Thread(target=queue.run, args=(stop,), daemon=True) for _ in range(threads)
    ]
    for thread in started:
        thread.start()
    return stop, started


def test_recording_does_not_wait_for_the_writer_and_keeps_the_order_recorded() -> None:
    """With the writer stuck, 50 Events are recorded at once; once it writes, all 50 are
    written, and their names and times sort in the order they were recorded (4 threads)."""
    writer, dropped = Writer(), Counter[str]()
    queue = QueuedEventRecorder(writer, dropped=lambda why: dropped.update([why]))
    stop, threads = _run(queue, 4)
    rollout = make_rollout()
    for n in range(50):
        queue.record(rollout, _event(n))
    assert queue.depth() >= 46  # at most one taken by each stuck thread
    writer.opened.set()
    writer.wait_for(50)
    stop.set()
    for thread in threads:
        thread.join(WAIT)
    by_serial = sorted(writer.written, key=lambda w: w[2])
    assert [reason for reason, _, _ in by_serial] == [f"Step{n}" for n in range(50)]
    assert [at for _, at, _ in by_serial] == sorted(at for _, at, _ in by_serial)
    assert (queue.depth(), dropped) == (0, Counter())


def test_a_full_queue_has_the_reconcile_write_the_event_itself() -> None:
    """Limit 5, no writer running: the first 5 wait, the next 3 are written at once by the
    recording thread (counted), and the 5 are written later: nothing is lost."""
    writer, dropped, inline = Writer(), Counter[str](), Counter[str]()
    writer.opened.set()
    queue = QueuedEventRecorder(
        writer,
        limit=5,
        dropped=lambda why: dropped.update([why]),
        inline=lambda: inline.update(["inline"]),
    )
    rollout = make_rollout()
    for n in range(8):
        queue.record(rollout, _event(n))
    assert [reason for reason, _, _ in writer.written] == ["Step5", "Step6", "Step7"]
    assert (queue.depth(), inline, dropped) == (5, Counter(inline=3), Counter())
    stop, threads = _run(queue, 1)
    writer.wait_for(8)
    stop.set()
    threads[0].join(WAIT)
    by_serial = sorted(writer.written, key=lambda w: w[2])
    assert [reason for reason, _, _ in by_serial] == [f"Step{n}" for n in range(8)]


def test_a_queued_event_names_its_rollout_as_it_was_recorded() -> None:
    """The queue keeps the Rollout's reference (kind's API version, namespace, name, uid,
    resourceVersion), not the Rollout."""
    writer = Writer()
    queue = QueuedEventRecorder(writer)
    made = make_rollout()
    meta = made.metadata.model_copy(update={"uid": "u-1", "resource_version": "42"})
    rollout = made.model_copy(update={"metadata": meta})
    queue.record(rollout, _event(0))
    writer.opened.set()
    stop, threads = _run(queue, 1)
    writer.wait_for(1)
    stop.set()
    threads[0].join(WAIT)
    assert writer.subjects == [Subject("canary.dev/v1alpha1", "t", "podinfo-2", "u-1", "42")]


def test_an_event_the_api_server_refuses_is_counted_and_the_rest_written() -> None:
    writer, dropped = Writer(fail={"Step1"}), Counter[str]()
    writer.opened.set()
    queue = QueuedEventRecorder(writer, dropped=lambda why: dropped.update([why]))
    stop, threads = _run(queue, 1)
    for n in range(3):
        queue.record(make_rollout(), _event(n))
    writer.wait_for(3)
    stop.set()
    threads[0].join(WAIT)
    assert dropped == Counter(write_failed=1)


def test_a_stopped_controller_writes_no_more_events() -> None:
    """Events still queued when the controller stops (it may no longer lead) are dropped and
    counted; only the one being written when it stopped is written."""
    writer, dropped = Writer(), Counter[str]()
    queue = QueuedEventRecorder(writer, dropped=lambda why: dropped.update([why]))
    for n in range(10):
        queue.record(make_rollout(), _event(n))
    stop, threads = _run(queue, 1)
    assert writer.entered.wait(WAIT)
    stop.set()
    writer.opened.set()
    threads[0].join(WAIT)
    assert not threads[0].is_alive()
    assert [reason for reason, _, _ in writer.written] == ["Step0"]
    assert (queue.depth(), dropped) == (0, Counter(stopped=9))
