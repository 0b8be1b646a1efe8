"""Reconcile latency with and without a receiver that hangs (issue 14: notifications never block).

Run: ``.venv/bin/python -m bench.notify_latency [--releases 20]`` (prints a table; about a
minute, most of it the inline case with a hanging receiver). Each mode releases the same
healthy Rollouts one step at a time with the real ``Reconciler`` (fake workloads and router, as
in the unit tests: what is timed is the reconcile itself) and times every ``reconcile`` call by
the wall clock. Every Rollout's policy notifies a
webhook on a real HTTP server on this machine's non-loopback address, which answers at once or
never answers, and the real ``PolicyNotifier`` sends over HTTP:

- ``outbox``: as the controller runs — the reconcile records notifications in the status, the
  real ``OutboxWorker`` delivers them in its own threads (5 s timeout);
- ``inline``: for comparison, what canary did before the outbox — the same notifier called from
  inside the reconcile, with the old 2 s timeout.
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog

from canary.adapters.notifiers.policy import PolicyNotifier
from canary.core import outbound, outbox, vocabulary
from canary.core import plan as plan_mod
from canary.core.vocabulary import Event
from canary.model.policy import Notification
from canary.model.rollout import Rollout, merge_policy
from canary.model.status import RolloutStatus
from canary.ports import Ref, WorkloadState
from canary.runtime.outbox import OutboxWorker
from canary.runtime.reconciler import Measurement, Reconciler
from tests.fake_store import MemoryRolloutStore
from tests.fakes import FakeClock, FakeEvents, FakeRouter
from tests.local_http import LocalServer, QuietHandler, local_address
from tests.unit.fake_cluster import FakeCluster, make_rollout

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LOCAL = local_address()
ALLOW = outbound.Policy.parse([f"{LOCAL}/32"])


class Receiver:
    """A webhook receiver that answers 200 at once, or (``hang``) never answers."""

    def __init__(self, hang: bool) -> None:
        self.released = threading.Event()
        self.requests = 0
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests += 1
                if hang:
                    receiver.released.wait(600)
                    return
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = LocalServer(Handler, LOCAL)
        self.url = f"{self.server.url}/hook"

    def stop(self) -> None:
        self.released.set()
        self.server.stop()


class LockedStore(MemoryRolloutStore):
    """The tests' store, safe for the reconciles and the delivery worker's threads at once."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def get(self, ref: Ref) -> Rollout | None:
        with self.lock:
            return super().get(ref)

    def write_status(self, rollout: Rollout, status: RolloutStatus) -> None:
        with self.lock:
            super().write_status(rollout, status)


class Workloads:
    """``ports.Workloads`` over one ``FakeCluster``."""

    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster

    def observe(self, namespace: str, rollout: str, plan: plan_mod.Plan) -> WorkloadState:
        obs = self.cluster.observe()
        return WorkloadState(obs.target, obs.apex_service, obs.canary, obs.services_ready)

    def apply(
        self, namespace: str, rollout: str, plan: plan_mod.Plan, action: vocabulary.Action
    ) -> None:
        self.cluster.apply(action)


class Inline:
    """``ports.EventRecorder`` doing what the controller did before the outbox: deliver each
    event to each notification from inside the reconcile."""

    def __init__(self, courier: PolicyNotifier, notifications: list[Notification]) -> None:
        self.courier, self.notifications = courier, notifications

    def record(self, rollout: Rollout, event: Event) -> None:
        status = outbox.record(
            rollout.status, [event], self.notifications, uid="u", now=T0, step_count=2
        )
        for entry in status.outbox.pending:
            self.courier.deliver(rollout, entry)


def run(mode: str, hang: bool | None, releases: int) -> tuple[list[float], float, int]:
    """Release ``releases`` Rollouts side by side; every reconcile's wall seconds, the wall
    seconds until all were promoted, and how many POSTs the receiver got by then."""
    receiver = Receiver(hang=bool(hang)) if hang is not None else None
    notifications = [Notification(type="webhook", url=receiver.url)] if receiver else []
    store, clock = LockedStore(), FakeClock(T0)

    def policy_notifications(rollout: Rollout) -> list[Notification]:
        return list(merge_policy(rollout.spec, None).notifications or ())

    courier = PolicyNotifier(
        policy_notifications,
        lambda *_: None,
        policy=ALLOW,
        timeout=2.0 if mode == "inline" else 5.0,
    )
    worker = OutboxWorker(store, courier, clock)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    events = Inline(courier, notifications) if mode == "inline" else FakeEvents()
    worlds: list[tuple[Ref, FakeCluster, FakeRouter, Reconciler]] = []
    for index in range(releases):
        rollout = make_rollout(notifications=[n.wire() for n in notifications])
        meta = rollout.metadata.model_copy(update={"namespace": f"t{index}", "uid": f"u{index}"})
        ref = store.add(rollout.model_copy(update={"metadata": meta}))
        cluster, router = FakeCluster(), FakeRouter()
        reconciler = Reconciler(store, Workloads(cluster), {"HTTPRoute": router}, events, clock)
        worlds.append((ref, cluster, router, reconciler))
    durations: list[float] = []
    started = time.perf_counter()
    done: set[Ref] = set()
    while len(done) < len(worlds):
        for ref, cluster, router, reconciler in worlds:
            if ref in done:
                continue
            began = time.perf_counter()
            result = reconciler.reconcile(ref, Measurement(evidence=cluster.evidence(5)))
            durations.append(time.perf_counter() - began)
            if result.notify_at is not None:
                worker.wake(ref, result.notify_at)
            for route in router.routes.values():
                cluster.route_exists, cluster.weight = True, route.canary_weight
            cluster.settle()
            stored = store.get(ref)
            if stored is not None and stored.status.phase == "Succeeded":
                done.add(ref)
        clock.advance(timedelta(seconds=5))
    wall = time.perf_counter() - started
    posts = receiver.requests if receiver is not None else 0
    stop.set()
    thread.join()
    if receiver is not None:
        receiver.stop()
    return durations, wall, posts


def _quiet() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--releases", type=int, default=20)
    parser.add_argument(
        "--inline-hanging", type=int, default=2, help="releases in the slow inline+hanging case"
    )
    args = parser.parse_args(argv)
    _quiet()
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(
        f"{args.releases} healthy releases side by side ({args.inline_hanging} for inline with a "
        "hanging receiver), 2 steps each"
    )
    print()
    print(f"{'mode':<8} {'receiver':<12} {'reconciles':>10} {'median ms':>10} {'p99 ms':>9} "
          f"{'max ms':>9} {'all promoted s':>15} {'receiver POSTs':>15}")  # fmt: skip
    cases: list[tuple[str, bool | None]] = [
        ("outbox", None),
        ("outbox", False),
        ("outbox", True),
        ("inline", False),
        ("inline", True),
    ]
    for mode, hang in cases:
        releases = args.inline_hanging if (mode, hang) == ("inline", True) else args.releases
        durations, wall, posts = run(mode, hang, releases)
        receiver = {None: "none", False: "answering", True: "hanging"}[hang]
        ms: Callable[[float], str] = lambda s: f"{s * 1000:.1f}"  # noqa: E731
        p99 = (
            statistics.quantiles(durations, n=100, method="inclusive")[98]
            if len(durations) > 1
            else durations[0]
        )
        print(
            f"{mode:<8} {receiver:<12} {len(durations):>10} {ms(statistics.median(durations)):>10}"
            f" {ms(p99):>9} {ms(max(durations)):>9} {wall:>15.1f} {posts:>15}"
        )


if __name__ == "__main__":
    main()
