"""The notification outbox kept in a Rollout's status: what the reconcile records, what is due
for delivery, the retry schedule, and how an attempt's outcome settles an entry.

Who calls it: ``canary.runtime.reconciler`` records each event's notifications (``record``) in
the same status write as the decision that made the event, so an event that happened is never
without its notifications, and a controller killed before that write makes the event again;
``canary.runtime.outbox`` (the delivery worker) asks what is ``due``, delivers, and ``settle``s
with the outcomes. An entry leaves the outbox only once its receiver acknowledged it (2xx) or it
was given up on (a permanent refusal, or ``MAX_ATTEMPTS`` failures: the dead-letter count), so
delivery is at least once; each event's idempotency key lets receivers drop the repeats.

Pure: the caller passes the time; nothing here sends anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from canary.core.vocabulary import Event
from canary.model.policy import Notification
from canary.model.status import Outbox, OutboxEntry, OutboxEvent, RolloutStatus

FIRST_RETRY = timedelta(seconds=2)
LONGEST_RETRY = timedelta(minutes=5)
MAX_ATTEMPTS = 10
"""Attempts before an entry is dead-lettered: retries over about 14 minutes in all."""
MAX_PENDING = 100
"""Entries an outbox holds; beyond it the oldest are dead-lettered (the status stays small)."""


@dataclass(frozen=True)
class Attempt:
    """The outcome of one delivery: acknowledged, or why not and whether trying again helps."""

    ok: bool
    error: str = ""
    permanent: bool = False
    """A refusal that will not change (a URL the policy refuses, a 4xx): dead-letter at once."""


def wanted(notification: Notification, event: Event) -> bool:
    """Whether ``notification`` hears of ``event`` (its ``events`` filter; all when unset)."""
    return not notification.events or event.reason in notification.events


def key(uid: str, sequence: int) -> str:
    """The idempotency key of the ``sequence``-th event of the Rollout with ``uid``."""
    return f"{uid}:{sequence}"


def record(
    status: RolloutStatus,
    events: Iterable[Event],
    notifications: Sequence[Notification],
    *,
    uid: str,
    now: datetime,
    step_count: int,
) -> RolloutStatus:
    """``status`` (the status the events leave behind) with an outbox entry for each event and
    each notification that wants it, due at once. Only events someone wants are numbered."""
    box = status.outbox
    sequence, pending = box.sequence, list(box.pending)
    for event in events:
        receivers = [(i, n) for i, n in enumerate(notifications) if wanted(n, event)]
        if not receivers:
            continue
        sequence += 1
        pending += [
            OutboxEntry(
                key=key(uid, sequence),
                sequence=sequence,
                receiver=index,
                type=notification.type,
                event=OutboxEvent(
                    type=event.type, reason=event.reason[:128], message=event.message[:1024]
                ),
                at=now,
                phase=status.phase,
                canary_weight=status.canary_weight,
                step_index=status.current_step_index,
                step_count=step_count,
                next_attempt_at=now,
            )
            for index, notification in receivers
        ]
    if sequence == box.sequence:
        return status
    dropped = pending[:-MAX_PENDING] if len(pending) > MAX_PENDING else []
    box = box.model_copy(
        update={
            "sequence": sequence,
            "pending": pending[len(dropped) :],
            "dead_lettered": box.dead_lettered + len(dropped),
            "last_dead_letter": _dead(dropped[-1], "the outbox was full")
            if dropped
            else box.last_dead_letter,
        }
    )
    return status.model_copy(update={"outbox": box})


def as_of(status: RolloutStatus, entry: OutboxEntry) -> RolloutStatus:
    """The status as the entry's event left it: its phase, weight and step, and the approvals
    given by then (the steps' records are the current ones)."""
    return status.model_copy(
        update={
            "phase": entry.phase,
            "canary_weight": entry.canary_weight,
            "current_step_index": entry.step_index,
            "approvals": [a for a in status.approvals if a.at <= entry.at],
        }
    )


def backoff(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt: doubling from
    ``FIRST_RETRY``, never more than ``LONGEST_RETRY``."""
    doubling: int = 2 ** min(max(attempts - 1, 0), 20)
    return min(FIRST_RETRY * doubling, LONGEST_RETRY)


def due(box: Outbox, now: datetime) -> list[OutboxEntry]:
    """The entries to attempt now: for each receiver its oldest entry, when its time has come
    (a receiver hears of a rollout's events in order)."""
    heads: dict[int, OutboxEntry] = {}
    for entry in box.pending:
        heads.setdefault(entry.receiver, entry)
    return [entry for entry in heads.values() if entry.next_attempt_at <= now]


def next_due(box: Outbox) -> datetime | None:
    """When the next entry falls due (None: nothing is pending)."""
    heads: dict[int, OutboxEntry] = {}
    for entry in box.pending:
        heads.setdefault(entry.receiver, entry)
    return min((e.next_attempt_at for e in heads.values()), default=None)


def settle(box: Outbox, outcomes: Sequence[tuple[OutboxEntry, Attempt]], now: datetime) -> Outbox:
    """The outbox after these attempts: acknowledged entries leave, failed ones wait their
    backoff, those refused for good or out of attempts are dead-lettered. Entries no longer
    pending (settled by an earlier write) are ignored, so settling twice changes nothing."""
    results = {(entry.key, entry.receiver): attempt for entry, attempt in outcomes}
    pending: list[OutboxEntry] = []
    delivered, dead, last = box.delivered, box.dead_lettered, box.last_dead_letter
    for entry in box.pending:
        attempt = results.get((entry.key, entry.receiver))
        if attempt is None:
            pending.append(entry)
        elif attempt.ok:
            delivered += 1
        elif attempt.permanent or entry.attempts + 1 >= MAX_ATTEMPTS:
            dead += 1
            last = _dead(entry, attempt.error, entry.attempts + 1)
        else:
            pending.append(
                entry.model_copy(
                    update={
                        "attempts": entry.attempts + 1,
                        "next_attempt_at": now + backoff(entry.attempts + 1),
                        "last_error": attempt.error[:256],
                    }
                )
            )
    return box.model_copy(
        update={
            "pending": pending,
            "delivered": delivered,
            "dead_lettered": dead,
            "last_dead_letter": last,
        }
    )


def _dead(entry: OutboxEntry, why: str, attempts: int | None = None) -> str:
    tries = f" after {attempts} attempt(s)" if attempts else ""
    text = f"{entry.event.reason} ({entry.key}) to {entry.type} #{entry.receiver}{tries}: {why}"
    return text[:512]
