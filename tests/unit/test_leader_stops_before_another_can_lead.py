"""Leader election never lets two replicas lead at once: the leader stops before its Lease can
be taken (a renew deadline shorter than the Lease), and a slow start does not let it lapse.

The Lease is a fake keyed on an injected clock; a second replica tries to take it every half
second of fake time while the first one leads (its attempts run inside the leader's waits)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from canary.errors import ApiUnavailable
from canary.runtime import leader
from tests.fakes import FakeClock

TTL, RENEW = timedelta(seconds=15), timedelta(seconds=5)
STEP = timedelta(milliseconds=500)


class FakeLease:
    """One holder until its Lease runs out; ``cut_off`` makes one identity's calls fail."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.holder: str | None = None
        self.expires = clock.now()
        self.cut_off: str | None = None

    def try_acquire(self, identity: str, ttl: timedelta) -> bool:
        if identity == self.cut_off:
            raise ApiUnavailable("the API server is out of reach")
        now = self.clock.now()
        if self.holder not in (None, identity) and now < self.expires:
            return False
        self.holder, self.expires = identity, now + ttl
        return True

    def release(self, identity: str) -> None:
        if self.holder == identity:
            self.holder = None


class Other:
    """The second replica: tries the Lease every STEP of fake time, notes when it gets it."""

    def __init__(self, lease: FakeLease, clock: FakeClock, log: list[str]) -> None:
        self.lease, self.clock, self.log = lease, clock, log
        self.leading = False

    def pass_time(self, delta: timedelta) -> None:
        end = self.clock.now() + delta
        while self.clock.now() < end:
            self.clock.advance(STEP)
            if not self.leading and self.lease.try_acquire("b", TTL):
                self.leading = True
                self.log.append("b leads")


class Stop:
    """The leader's stop signal: never set; waiting lets fake time pass for the other one."""

    def __init__(self, other: Other, after: Callable[[], None] = lambda: None) -> None:
        self.other, self.after = other, after

    def is_set(self) -> bool:
        return self.other.clock.now() > datetime(2026, 1, 1, 0, 5, tzinfo=UTC)

    def wait(self, timeout: float | None = None) -> bool:
        self.other.pass_time(timedelta(seconds=timeout or 0))
        self.after()
        return False


def _setup() -> tuple[FakeClock, FakeLease, Other, list[str]]:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    lease = FakeLease(clock)
    log: list[str] = []
    return clock, lease, Other(lease, clock, log), log


def test_a_leader_cut_off_stops_before_its_lease_can_be_taken() -> None:
    """Renewals fail from some moment: the leader stops leading before the other replica can
    take the Lease, which it then does."""
    clock, lease, other, log = _setup()
    started = clock.now()

    def cut_off_after_a_while() -> None:
        if clock.now() - started >= timedelta(seconds=21):
            lease.cut_off = "a"

    lost = leader.lead(
        lock=lease,
        me="a",
        clock=clock,
        stop=Stop(other, cut_off_after_a_while),
        on_started=lambda: log.append("a leads"),
        ttl=TTL,
        renew=RENEW,
    )
    log.append("a stopped")
    other.pass_time(TTL)
    assert lost
    assert log == ["a leads", "a stopped", "b leads"]


def test_a_slow_start_does_not_let_the_lease_lapse() -> None:
    """Starting takes most of the Lease's duration: the leader renews right after, so the
    other replica never gets the Lease while the first one leads."""
    clock, lease, other, log = _setup()

    def slow_start() -> None:
        log.append("a leads")
        other.pass_time(TTL - timedelta(seconds=3))

    stop = Stop(other)
    lost = leader.lead(
        lock=lease, me="a", clock=clock, stop=stop, on_started=slow_start, ttl=TTL, renew=RENEW
    )
    assert not lost
    assert log == ["a leads"]
    assert lease.holder is None  # a clean stop releases it
