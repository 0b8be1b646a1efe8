"""Kubernetes Events about Rollouts (``kubectl describe rollout`` shows them).

Implements ``ports.EventRecorder`` twice. ``KubeEventRecorder`` writes each Event as it is
recorded; ``QueuedEventRecorder`` (the controller's) queues it, and threads of its own write
the queue, so that a reconcile does not wait for an Event's request (at 1000 Rollouts those were
13% of the workers' time), as client-go's event broadcaster does. Unlike the broadcaster, a full
queue loses nothing: the reconcile then writes the Event itself. Recording never raises: an
Event the API server does not take is logged and dropped, it must never stop a rollback.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from kubernetes import client

from canary.adapters.kube.client import translated
from canary.core.vocabulary import Event
from canary.errors import CanaryError
from canary.model.rollout import Rollout
from canary.ports import StopSignal

log = structlog.get_logger("canary.events")


@dataclass(frozen=True, slots=True)
class Subject:
    """The Rollout an Event is about, as the Event's ``involvedObject`` names it (a queued
    Event keeps this, not the whole Rollout)."""

    api_version: str
    namespace: str
    name: str
    uid: str | None
    resource_version: str | None

    @classmethod
    def of(cls, rollout: Rollout) -> Subject:
        meta = rollout.metadata
        return cls(rollout.api_version, meta.namespace, meta.name, meta.uid, meta.resource_version)


class KubeEventRecorder:
    """Writes core/v1 Events whose involvedObject is the Rollout."""

    def __init__(self, api: client.ApiClient, component: str = "canary") -> None:
        self._core: Any = client.CoreV1Api(api)
        self._component = component

    def record(self, rollout: Rollout, event: Event) -> None:
        """Create the Event; log and drop it on failure."""
        self.write(Subject.of(rollout), event, datetime.now(UTC), time.time_ns())

    def write(self, subject: Subject, event: Event, at: datetime, serial: int) -> bool:
        """Create the Event as recorded at ``at``, named by ``serial`` (nanoseconds: names sort
        in the order Events were recorded); log it and return False when it was not written."""
        ns, name = subject.namespace, subject.name
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=f"{name}.{serial:x}", namespace=ns),
            involved_object=client.V1ObjectReference(
                api_version=subject.api_version,
                kind="Rollout",
                name=name,
                namespace=ns,
                uid=subject.uid,
                resource_version=subject.resource_version,
            ),
            reason=event.reason,
            message=event.message[:1024],
            type=event.type,
            source=client.V1EventSource(component=self._component),
            reporting_component=self._component,
            first_timestamp=at,
            last_timestamp=at,
            count=1,
        )
        try:
            with translated(f"create event for rollout {ns}/{name}"):
                self._core.create_namespaced_event(ns, body)
        except CanaryError as error:
            log.warning("event_dropped", reason=event.reason, error=str(error))
            return False
        return True


QUEUE_LIMIT = 1000
"""Events waiting to be written, at most (client-go's broadcaster queues 1000 too). When that
many wait, the reconcile that records one more writes it itself: the writers are behind the
API server, and the reconciles slow down to its pace instead of Events being lost."""
WRITERS = 8
"""Threads writing the queue: at 0.35 s a request (the API server at 1000 Rollouts on 2
cores), some 23 Events a second."""


class EventWriter(Protocol):
    """What writes one queued Event (``KubeEventRecorder``)."""

    def write(self, subject: Subject, event: Event, at: datetime, serial: int) -> bool:
        """Write ``event`` as recorded at ``at``; False when it was not written."""


@dataclass(frozen=True, slots=True)
class _Recorded:
    subject: Subject
    event: Event
    at: datetime
    serial: int


class QueuedEventRecorder:
    """Queues each Event and writes it later, in ``run``'s threads (one or more). An Event
    keeps the time and name of its recording, so ``kubectl`` lists Events in the order they were
    recorded, whichever thread wrote them. ``dropped(why)`` is told of each Event not written
    (``write_failed``; ``stopped``: waiting when the controller stopped, since a replica that
    stopped leading writes nothing more), ``inline()`` of each the recording thread wrote
    itself because ``limit`` were waiting."""

    def __init__(
        self,
        writer: EventWriter,
        *,
        limit: int = QUEUE_LIMIT,
        dropped: Callable[[str], None] = lambda why: None,
        inline: Callable[[], None] = lambda: None,
    ) -> None:
        self._writer, self._limit = writer, limit
        self._dropped, self._inline = dropped, inline
        self._queue: deque[_Recorded] = deque()
        self._cond = threading.Condition()

    def record(self, rollout: Rollout, event: Event) -> None:
        """Queue ``event``; when the queue is full, write it now. Never raises."""
        recorded = _Recorded(Subject.of(rollout), event, datetime.now(UTC), time.time_ns())
        with self._cond:
            full = len(self._queue) >= self._limit
            if not full:
                self._queue.append(recorded)
                self._cond.notify()
        if full:
            self._inline()
            self._write(recorded)

    def depth(self) -> int:
        """Events waiting to be written."""
        with self._cond:
            return len(self._queue)

    def run(self, stop: StopSignal) -> None:
        """Write queued Events until ``stop``; what is left then is dropped, not written."""
        while not stop.is_set():
            with self._cond:
                if not self._queue:
                    self._cond.wait(0.5)
                    continue
                recorded = self._queue.popleft()
            if stop.is_set():
                self._dropped("stopped")
                break
            self._write(recorded)
        with self._cond:
            left, self._queue = len(self._queue), deque()
        for _ in range(left):
            self._dropped("stopped")

    def _write(self, r: _Recorded) -> None:
        if not self._writer.write(r.subject, r.event, r.at, r.serial):
            self._dropped("write_failed")
