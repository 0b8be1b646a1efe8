"""Leader election on a real coordination.k8s.io Lease: one holder at a time, handed over on
release or expiry."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from kubernetes import client

from canary.adapters.kube.lease import KubeLease
from canary.runtime import leader
from canary.runtime.clock import SystemClock

pytestmark = pytest.mark.integration


def test_one_holder_until_released(kube: client.ApiClient, namespace: str) -> None:
    """A second replica is refused while the first renews; it takes over once released."""
    lease = KubeLease(kube, namespace)
    ttl = timedelta(seconds=30)
    assert lease.try_acquire("a", ttl)
    assert lease.try_acquire("a", ttl)  # renewing
    assert not lease.try_acquire("b", ttl)
    lease.release("b")  # not the holder: nothing happens
    assert not lease.try_acquire("b", ttl)
    lease.release("a")
    assert lease.try_acquire("b", ttl)
    assert not lease.try_acquire("a", ttl)


def test_expired_lease_is_taken_over(kube: client.ApiClient, namespace: str) -> None:
    """A holder that stops renewing loses the Lease after its duration."""
    lease = KubeLease(kube, namespace)
    assert lease.try_acquire("a", timedelta(seconds=1))
    stop = threading.Event()
    started = threading.Event()
    follower = threading.Thread(
        target=leader.lead,
        kwargs={
            "lock": KubeLease(kube, namespace),
            "me": "b",
            "clock": SystemClock(),
            "stop": stop,
            "on_started": started.set,
            "ttl": timedelta(seconds=5),
            "renew": timedelta(milliseconds=200),
        },
        daemon=True,
    )
    follower.start()
    try:
        assert started.wait(10), "the follower never took over the expired lease"
        assert not lease.try_acquire("a", timedelta(seconds=1))
    finally:
        stop.set()
        follower.join(10)
    assert lease.try_acquire("a", timedelta(seconds=1)), "a clean stop releases the lease"
