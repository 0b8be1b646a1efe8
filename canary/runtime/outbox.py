"""The delivery worker: sends what Rollouts' outboxes hold, beside the reconciles, never in them.

The reconcile records each event's notifications in the Rollout's status (``canary.core.outbox``)
and tells this worker when they are due (``wake``); so does the controller's resync, at start
and every minute after, for every Rollout whose outbox holds something, so that what a killed
controller left unsent goes out. For each Rollout with something due, the worker delivers
through a ``ports.Courier`` (each receiver in its own thread, each attempt bounded by the
courier's timeout), then writes the outcomes into the status, guarded by resourceVersion:
acknowledged entries leave, failed ones wait their backoff, hopeless ones are dead-lettered. An
entry leaves only after its acknowledgement is written, so a kill between the two sends it
again with the same idempotency key: at least once.

What it must not do: hold up a reconcile (it has its own threads, and a hanging receiver holds
one of them for at most the timeout), or lose an entry on a write conflict (it reads the Rollout
again and settles the same outcomes onto it).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import structlog

from canary.core import outbox
from canary.errors import CanaryError, Conflict
from canary.model.rollout import Rollout
from canary.model.status import OutboxEntry
from canary.ports import Clock, Courier, Ref, RolloutStore, StopSignal

log = structlog.get_logger("canary.outbox")

RETRY_TROUBLE = timedelta(seconds=5)
"""When to look at a Rollout again after the API server could not be read or written."""
WRITES = 5
"""Attempts to write the outcomes before leaving them to be sent again."""


class OutboxWorker:
    """Delivers due notifications, a few Rollouts at a time."""

    def __init__(
        self,
        store: RolloutStore,
        courier: Courier,
        clock: Clock,
        *,
        parallel: int = 4,
    ) -> None:
        self._store, self._courier, self._clock = store, courier, clock
        self._due: dict[Ref, datetime] = {}
        self._busy: set[Ref] = set()
        self._cond = threading.Condition()
        self._rollouts = ThreadPoolExecutor(parallel, thread_name_prefix="outbox")
        self._sends = ThreadPoolExecutor(parallel * 2, thread_name_prefix="outbox-send")

    def wake(self, ref: Ref, due: datetime) -> None:
        """Look at ``ref``'s outbox at ``due`` (sooner if it is already due sooner)."""
        with self._cond:
            if ref not in self._due or due < self._due[ref]:
                self._due[ref] = due
                self._cond.notify()

    def run(self, stop: StopSignal, idle: float = 1.0) -> None:
        """Deliver until ``stop``: each due Rollout in a thread of its own, one at a time."""
        try:
            while not stop.is_set():
                for ref in self._take_due(idle):
                    self._rollouts.submit(self._serve, ref)
        finally:
            self._rollouts.shutdown(wait=False, cancel_futures=True)
            self._sends.shutdown(wait=False, cancel_futures=True)

    def _take_due(self, idle: float) -> list[Ref]:
        with self._cond:
            now = self._clock.now()
            ready = [r for r, due in self._due.items() if due <= now and r not in self._busy]
            if not ready:
                waits = [
                    (d - now).total_seconds() for r, d in self._due.items() if r not in self._busy
                ]
                self._cond.wait(min([idle, *waits]))
                return []
            for ref in ready:
                del self._due[ref]
                self._busy.add(ref)
            return ready

    def _serve(self, ref: Ref) -> None:
        later: datetime | None
        try:
            later = self.deliver(ref)
        except CanaryError as error:
            log.warning("outbox_delivery_interrupted", rollout=str(ref), error=str(error))
            later = self._clock.now() + RETRY_TROUBLE
        except Exception:  # a bug must not stop deliveries for good
            log.exception("outbox_delivery_crashed", rollout=str(ref))
            later = self._clock.now() + RETRY_TROUBLE
        with self._cond:
            self._busy.discard(ref)
        if later is not None:
            self.wake(ref, later)

    def deliver(self, ref: Ref) -> datetime | None:
        """Deliver what is due in ``ref``'s outbox now and write the outcomes; when its next
        entry falls due (None: nothing is pending). Raises CanaryError when the Rollout could
        not be read (what was sent is then sent again)."""
        rollout = self._store.get(ref)
        if rollout is None:
            return None
        entries = outbox.due(rollout.status.outbox, self._clock.now())
        if not entries:
            return outbox.next_due(rollout.status.outbox)
        outcomes = list(self._sends.map(lambda e: (e, self._courier.deliver(rollout, e)), entries))
        for entry, attempt in outcomes:
            if not attempt.ok:
                log.warning(
                    "notification_retried" if not attempt.permanent else "notification_refused",
                    rollout=str(ref),
                    reason=entry.event.reason,
                    attempts=entry.attempts + 1,
                    error=attempt.error,
                )
        return self._settle(ref, rollout, outcomes)

    def _settle(
        self, ref: Ref, rollout: Rollout, outcomes: list[tuple[OutboxEntry, outbox.Attempt]]
    ) -> datetime | None:
        for _ in range(WRITES):
            box = outbox.settle(rollout.status.outbox, outcomes, self._clock.now())
            try:
                self._store.write_status(rollout, rollout.status.model_copy(update={"outbox": box}))
                return outbox.next_due(box)
            except Conflict:
                found = self._store.get(ref)
                if found is None:
                    return None
                rollout = found
        raise Conflict(f"the outcomes of {len(outcomes)} deliveries could not be written")
