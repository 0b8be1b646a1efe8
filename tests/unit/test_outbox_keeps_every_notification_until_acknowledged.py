"""The outbox in a Rollout's status: the reconcile records each event's notifications with the
state the event left, the worker attempts what is due (in order per receiver), and an entry leaves
only acknowledged or dead-lettered; retries back off; a kill at any point loses nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.core import outbox
from canary.core.vocabulary import Event
from canary.model.policy import Notification
from canary.model.rollout import RolloutSpec
from canary.model.status import Outbox, OutboxEntry, RolloutStatus
from canary.ports import Ref
from canary.runtime.controller import Controller
from canary.runtime.outbox import OutboxWorker
from canary.runtime.reconciler import Reconciler
from tests.fake_store import MemoryRolloutStore
from tests.fakes import FakeClock, FakeEvents, FakeMetrics, FakeRouter
from tests.unit.fake_cluster import FakeCluster, make_rollout
from tests.unit.test_reconciler_and_controller_drive_releases import ClusterWorkloads, World

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SLACK = Notification(type="slack", url="https://hooks.slack.com/x")
HOOK = Notification(type="webhook", url="https://hooks.example.com/x")
ONLY_ENDINGS = Notification.model_validate(
    {"type": "msteams", "url": "https://teams.example.com/x", "events": ["Promoted", "RolledBack"]}
)
STEP = Event("Normal", "StepAdvanced", "step 1/2: weight 10%")
PROMOTED = Event("Normal", "Promoted", "done")
AFTER = RolloutStatus(phase="Succeeded", canary_weight=0, current_step_index=1)


def record(*events: Event, status: RolloutStatus = AFTER) -> RolloutStatus:
    return outbox.record(
        status, events, [SLACK, HOOK, ONLY_ENDINGS], uid="u", now=NOW, step_count=2
    )


def test_each_event_is_recorded_for_each_receiver_that_wants_it() -> None:
    """Filters apply; an event's receivers share its key; the state after the event is kept."""
    box = record(STEP, PROMOTED).outbox
    assert [(e.key, e.receiver, e.event.reason) for e in box.pending] == [
        ("u:1", 0, "StepAdvanced"),
        ("u:1", 1, "StepAdvanced"),
        ("u:2", 0, "Promoted"),
        ("u:2", 1, "Promoted"),
        ("u:2", 2, "Promoted"),
    ]
    assert box.sequence == 2
    entry = box.pending[-1]
    assert (entry.phase, entry.canary_weight, entry.step_index, entry.step_count) == (
        "Succeeded",
        0,
        1,
        2,
    )
    assert entry.next_attempt_at == NOW
    assert record() == AFTER  # no events, nothing changes
    unwanted = Notification.model_validate(
        {"type": "slack", "url": "https://h.example", "events": ["Aborted"]}
    )
    assert outbox.record(AFTER, [STEP], [unwanted], uid="u", now=NOW, step_count=2) == AFTER


def test_the_outbox_stays_bounded_and_counts_what_it_drops() -> None:
    """Past MAX_PENDING the oldest entries are dead-lettered, never silently lost."""
    status = AFTER
    for _ in range(60):
        status = record(STEP, status=status)
    box = status.outbox
    assert len(box.pending) == outbox.MAX_PENDING
    assert box.dead_lettered == 60 * 2 - outbox.MAX_PENDING
    assert "the outbox was full" in box.last_dead_letter
    assert box.pending[-1].key == "u:60"


def test_only_the_oldest_entry_of_each_receiver_is_due() -> None:
    """A receiver hears of a rollout's events in order; one in backoff holds only its own."""
    box = record(STEP, PROMOTED).outbox
    assert [(e.key, e.receiver) for e in outbox.due(box, NOW)] == [
        ("u:1", 0),
        ("u:1", 1),
        ("u:2", 2),
    ]
    assert outbox.due(box, NOW - timedelta(seconds=1)) == []
    assert outbox.next_due(box) == NOW
    assert outbox.next_due(Outbox()) is None


def test_settling_acknowledges_retries_and_dead_letters() -> None:
    """A 2xx removes its entry, a failure waits its backoff, a permanent refusal is dead at once."""
    box = record(STEP).outbox
    slack, hook = outbox.due(box, NOW)
    later = NOW + timedelta(seconds=1)
    box = outbox.settle(
        box, [(slack, outbox.Attempt(True)), (hook, outbox.Attempt(False, "503"))], later
    )
    assert (box.delivered, box.dead_lettered) == (1, 0)
    (waiting,) = box.pending
    assert (waiting.attempts, waiting.last_error) == (1, "503")
    assert waiting.next_attempt_at == later + outbox.FIRST_RETRY
    assert outbox.due(box, later) == []
    # Settling the same outcomes again (a retried status write) changes nothing more.
    again = outbox.settle(box, [(slack, outbox.Attempt(True))], later)
    assert again == box
    box = outbox.settle(box, [(waiting, outbox.Attempt(False, "404", permanent=True))], later)
    assert (box.pending, box.dead_lettered) == ([], 1)
    assert "404" in box.last_dead_letter


def test_an_entry_is_dead_lettered_after_its_last_attempt() -> None:
    """MAX_ATTEMPTS failures give it up, with the count and the reason."""
    box = record(STEP).outbox
    box = box.model_copy(update={"pending": box.pending[1:]})
    now = NOW
    for _ in range(outbox.MAX_ATTEMPTS):
        (entry,) = outbox.due(box, now) or box.pending
        box = outbox.settle(box, [(entry, outbox.Attempt(False, "timeout"))], now)
        now += outbox.LONGEST_RETRY
    assert (box.pending, box.dead_lettered, box.delivered) == ([], 1, 0)
    assert f"after {outbox.MAX_ATTEMPTS} attempt(s): timeout" in box.last_dead_letter


@pytest.mark.parametrize(
    ("attempts", "wait"),
    [(0, 2), (1, 2), (2, 4), (3, 8), (7, 128), (8, 256), (9, 300), (50, 300)],
)
def test_backoff_doubles_up_to_five_minutes(attempts: int, wait: int) -> None:
    """2 s, 4 s, 8 s … never more than 5 minutes."""
    assert outbox.backoff(attempts) == timedelta(seconds=wait)


@given(st.lists(st.sampled_from(["ok", "fail", "dead", "crash"]), max_size=40))
def test_an_entry_leaves_only_acknowledged_or_dead_lettered(outcomes: list[str]) -> None:
    """Whatever happens (a crash drops the outcomes before they are written), every entry is
    pending, delivered or dead-lettered: the three always add up to what was recorded."""
    box = record(STEP, PROMOTED).outbox
    total = len(box.pending)
    now = NOW
    for outcome in outcomes:
        due = outbox.due(box, now)
        if outcome != "crash" and due:
            attempt = outbox.Attempt(outcome == "ok", outcome, permanent=outcome == "dead")
            box = outbox.settle(box, [(due[0], attempt)], now)
        now += outbox.LONGEST_RETRY
        assert len(box.pending) + box.delivered + box.dead_lettered == total


def test_as_of_gives_the_state_the_event_left() -> None:
    """A late delivery says the phase, weight and step of its event, and the approvals by then."""
    status = record(STEP, status=RolloutStatus(phase="Progressing", canary_weight=10))
    entry = status.outbox.pending[0]
    moved = RolloutStatus.model_validate(
        {
            **status.wire(),
            "phase": "Succeeded",
            "canaryWeight": 0,
            "currentStepIndex": 1,
            "approvals": [
                {"gate": "beforePromotion", "decision": "Approved", "at": NOW + timedelta(1)}
            ],
        }
    )
    then = outbox.as_of(moved, entry)
    assert (then.phase, then.canary_weight, then.current_step_index) == ("Progressing", 10, 0)
    assert then.approvals == []


class Courier:
    """Answers each receiver as told, and counts what it was sent."""

    def __init__(self) -> None:
        self.answers: dict[str, outbox.Attempt] = {}
        self.sent: list[tuple[str, str]] = []

    def deliver(self, rollout: object, entry: object) -> outbox.Attempt:
        assert isinstance(entry, OutboxEntry)
        self.sent.append((entry.key, entry.type))
        return self.answers.get(entry.type, outbox.Attempt(True))


def world() -> tuple[MemoryRolloutStore, Ref, FakeClock]:
    """A release of a Rollout notifying Slack and a webhook, driven until its first event."""
    released = World(rollout=make_rollout(notifications=[SLACK.wire(), HOOK.wire()]))
    for _ in range(10):
        result = released.tick()
        stored = released.store.get(released.ref)
        assert stored is not None
        if stored.status.outbox.pending:
            # The status written holds the event's notifications, due at once, and says so.
            assert len(stored.status.outbox.pending) == 2 * stored.status.outbox.sequence
            assert result.notify_at == released.clock.now() - timedelta(seconds=5)
            return released.store, released.ref, FakeClock(result.notify_at)
    raise AssertionError("the release made no event")


def test_the_worker_delivers_settles_and_retries_a_failing_receiver() -> None:
    """Acknowledged entries leave the status; a failing receiver's wait with a backoff, in order."""
    store, ref, clock = world()
    courier = Courier()
    courier.answers["webhook"] = outbox.Attempt(False, "hooks.example.com answered 503")
    worker = OutboxWorker(store, courier, clock)
    while (later := worker.deliver(ref)) == clock.now():
        pass
    stored = store.get(ref)
    assert stored is not None
    box = stored.status.outbox
    events = box.sequence
    assert events >= 2
    assert box.delivered == events  # every Slack notification
    assert [(e.type, e.sequence, e.attempts) for e in box.pending] == [
        ("webhook", n, 1 if n == 1 else 0) for n in range(1, events + 1)
    ]
    assert later == clock.now() + outbox.FIRST_RETRY
    assert worker.deliver(ref) == later  # nothing due yet: nothing sent
    assert len(courier.sent) == events + 1
    courier.answers.clear()
    clock.advance(outbox.FIRST_RETRY)
    while worker.deliver(ref) is not None:
        pass
    stored = store.get(ref)
    assert stored is not None
    assert (stored.status.outbox.pending, stored.status.outbox.delivered) == ([], 2 * events)
    webhook_keys = [key for key, kind in courier.sent if kind == "webhook"]
    # The first one twice (failed, then acknowledged), then each once, in order.
    assert webhook_keys == [webhook_keys[0], *dict.fromkeys(webhook_keys)]


def test_a_write_conflict_settles_the_outcomes_onto_the_fresh_status() -> None:
    """When the reconcile wrote meanwhile, the worker reads again and keeps both writes."""
    store, ref, clock = world()
    store.conflicts = 2
    worker = OutboxWorker(store, Courier(), clock)
    while worker.deliver(ref) is not None:
        pass
    stored = store.get(ref)
    assert stored is not None
    assert stored.status.outbox.pending == []


def test_what_a_killed_worker_sent_is_sent_again_with_the_same_key() -> None:
    """Outcomes never written (the controller died) leave the entries pending: sent again."""
    store, ref, clock = world()
    store.conflicts = 10  # every write fails, as if the process died before writing
    courier = Courier()
    worker = OutboxWorker(store, courier, clock)
    with pytest.raises(Exception, match="could not be written"):
        worker.deliver(ref)
    first = list(courier.sent)
    store.conflicts = 0
    while worker.deliver(ref) is not None:
        pass
    assert courier.sent[len(first) : 2 * len(first)] == first
    stored = store.get(ref)
    assert stored is not None
    assert stored.status.outbox.pending == []


def test_the_resync_hands_the_worker_what_a_previous_controller_left() -> None:
    """A new controller's resync finds pending outboxes; its worker delivers them."""
    store, ref, clock = world()
    courier = Courier()
    worker = OutboxWorker(store, courier, clock)
    reconciler = Reconciler(
        store, ClusterWorkloads(FakeCluster()), {"HTTPRoute": FakeRouter()}, FakeEvents(), clock
    )
    Controller(reconciler, store, FakeMetrics(), clock, on_notify=worker.wake).resync()
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), kwargs={"idle": 0.01})
    thread.start()
    try:
        for _ in range(500):
            stored = store.get(ref)
            assert stored is not None
            if not stored.status.outbox.pending:
                break
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join()
    assert stored is not None
    assert stored.status.outbox.delivered == 2 * stored.status.outbox.sequence


def test_a_spec_turned_invalid_mid_release_notifies_with_the_last_valid_plan() -> None:
    """The rollback an invalid edit causes reaches the receivers the release had."""
    released = World(rollout=make_rollout(notifications=[SLACK.wire(), HOOK.wire()]))
    while released.phase() != "Progressing":
        released.tick()
    stored = released.store.get(released.ref)
    assert stored is not None
    before = stored.status.outbox.sequence
    broken = RolloutSpec.model_validate(
        {**stored.spec.wire(), "steps": [{"setWeight": 50}, {"setWeight": 10}]}
    )
    meta = stored.metadata.model_copy(update={"generation": 2})
    released.store.rollouts[released.ref] = stored.model_copy(
        update={"spec": broken, "metadata": meta}
    )
    result = released.tick()
    stored = released.store.get(released.ref)
    assert stored is not None
    box = stored.status.outbox
    assert box.sequence > before
    new = [e for e in box.pending if e.sequence > before]
    assert {e.type for e in new} == {"slack", "webhook"}
    assert {e.event.reason for e in new} >= {"InvalidSpec"}
    assert new[-1].phase == stored.status.phase
    assert result.notify_at is not None
