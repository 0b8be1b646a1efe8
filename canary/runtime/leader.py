"""Leader election: only the replica holding the Lease reconciles.

Used by ``canary run`` with a ``ports.LeaseLock``. The leader renews every ``renew``; once it
could not renew for ``ttl - renew`` it stops leading (the process then exits and restarts as a
follower, as controller-runtime does with its renew deadline). Another replica may take the
Lease only ``ttl`` after its last renewal, and the leader checks every ``renew``, so it has
stopped before anyone else can lead: two replicas never act at once.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from datetime import timedelta

import structlog

from canary.errors import CanaryError
from canary.ports import Clock, LeaseLock, StopSignal

log = structlog.get_logger("canary.leader")


def identity() -> str:
    """This replica's name in the Lease: the pod name (hostname) plus a random suffix."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def lead(
    *,
    lock: LeaseLock,
    me: str,
    clock: Clock,
    stop: StopSignal,
    on_started: Callable[[], None],
    ttl: timedelta = timedelta(seconds=15),
    renew: timedelta = timedelta(seconds=5),
) -> bool:
    """Wait for the lease, call ``on_started``, and keep renewing it until ``stop`` or until
    it is lost. Returns True when leadership ended because it was lost."""
    leading = False
    last_renewed = clock.now()
    deadline = ttl - renew
    while not stop.is_set():
        # The renewal's own time: the Lease holds from when the request left, not when the
        # answer came back.
        asked = clock.now()
        try:
            held = lock.try_acquire(me, ttl)
        except CanaryError as error:
            log.warning("lease_renew_failed", error=str(error))
            held = False
        if held:
            last_renewed = asked
            if not leading:
                leading = True
                log.info("leadership_acquired", identity=me)
                on_started()
                continue  # starting may take a while: renew at once
        if leading and clock.now() - last_renewed >= deadline:
            log.error("leadership_lost", identity=me)
            return True
        stop.wait(renew.total_seconds())
    if leading:
        try:
            lock.release(me)
        except CanaryError as error:
            log.warning("lease_release_failed", error=str(error))
    return False
