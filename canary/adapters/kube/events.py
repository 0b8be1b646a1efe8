"""Kubernetes Events about Rollouts (``kubectl describe rollout`` shows them).

Implements ``ports.EventRecorder`` twice. ``KubeEventRecorder`` writes each Event as it is
recorded; ``QueuedEventRecorder`` (the controller's) only queues it, and threads of its own write
the queue, so that a reconcile never waits for an Event's request (at 1000 Rollouts those were
13% of the workers' time), as client-go's event broadcaster does. Recording never raises: an
Event that cannot be written is logged and dropped, it must never stop a rollback.
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


class KubeEventRecorder:
    """Writes core/v1 Events whose involvedObject is the Rollout."""

    def __init__(self, api: client.ApiClient, component: str = "canary") -> None:
        self._core: Any = client.CoreV1Api(api)
        self._component = component

    def record(self, rollout: Rollout, event: Event) -> None:
        """Create the Event; log and drop it on failure."""
        self.write(rollout, event, datetime.now(UTC), time.time_ns())

    def write(self, rollout: Rollout, event: Event, at: datetime, serial: int) -> bool:
        """Create the Event as recorded at ``at``, named by ``serial`` (nanoseconds: names sort
        in the order Events were recorded); log it and return False when it was not written."""
        meta = rollout.metadata
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=f"{meta.name}.{serial:x}", namespace=meta.namespace),
            involved_object=client.V1ObjectReference(
                api_version=rollout.api_version,
                kind="Rollout",
                name=meta.name,
                namespace=meta.namespace,
                uid=meta.uid,
                resource_version=meta.resource_version,
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
            with translated(f"create event for rollout {meta.namespace}/{meta.name}"):
                self._core.create_namespaced_event(meta.namespace, body)
        except CanaryError as error:
            log.warning("event_dropped", reason=event.reason, error=str(error))
            return False
        return True


QUEUE_LIMIT = 1000
"""Events waiting to be written, at most (client-go's broadcaster queues 1000 too). A full
queue drops the newest Event: counted, and logged with the Rollout and reason."""
WRITERS = 4
"""Threads writing the queue: at about 0.3 s a request, some 13 Events a second."""


class EventWriter(Protocol):
    """What writes one queued Event (``KubeEventRecorder``)."""

    def write(self, rollout: Rollout, event: Event, at: datetime, serial: int) -> bool:
        """Write ``event`` as recorded at ``at``; False when it was not written."""


@dataclass(frozen=True, slots=True)
class _Recorded:
    rollout: Rollout
    event: Event
    at: datetime
    serial: int


class QueuedEventRecorder:
    """Queues each Event and writes it later, in ``run``'s threads (one or more). An Event
    keeps the time and name of its recording, so ``kubectl`` lists Events in the order they were
    recorded, whichever thread wrote them. ``dropped(why)`` is told of each Event not
    written: ``queue_full``, ``write_failed`` or ``stopped`` (left in the queue when the
    controller stopped: a replica that stopped leading writes nothing more)."""

    def __init__(
        self,
        writer: EventWriter,
        *,
        limit: int = QUEUE_LIMIT,
        dropped: Callable[[str], None] = lambda why: None,
    ) -> None:
        self._writer, self._limit, self._dropped = writer, limit, dropped
        self._queue: deque[_Recorded] = deque()
        self._cond = threading.Condition()

    def record(self, rollout: Rollout, event: Event) -> None:
        """Queue ``event``; never waits for the API server, never raises."""
        recorded = _Recorded(rollout, event, datetime.now(UTC), time.time_ns())
        with self._cond:
            full = len(self._queue) >= self._limit
            if not full:
                self._queue.append(recorded)
                self._cond.notify()
        if full:
            meta = rollout.metadata
            log.warning(
                "event_dropped",
                namespace=meta.namespace,
                rollout=meta.name,
                reason=event.reason,
                error=f"{self._limit} Events are waiting to be written",
            )
            self._dropped("queue_full")

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
            r = recorded
            if not self._writer.write(r.rollout, r.event, r.at, r.serial):
                self._dropped("write_failed")
        with self._cond:
            left, self._queue = len(self._queue), deque()
        for _ in range(left):
            self._dropped("stopped")
