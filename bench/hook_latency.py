"""Reconcile latency when the policy's hooks answer at once or never (docs/hooks.md).

Releases side by side through the real ``Reconciler`` (fake workloads and router) with the real
``HTTPHooks`` calling a real HTTP receiver on this machine's non-loopback address: a
``confirm-step`` hook and a ``pre-rollout`` hook per release, answering 200 at once
(``answering``) or holding every request (``hanging``, so each call ends TimedOut after its 1 s
``callTimeout`` and the pre-rollout rolls the release back). Every ``reconcile`` call is timed
by the wall clock. Run: ``.venv/bin/python -m bench.hook_latency``; prints a table for
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import time

import structlog

from bench.notify_latency import Workloads
from canary.adapters.hooks.http import HTTPHooks
from canary.core import outbound
from canary.ports import Ref
from canary.runtime.clock import SystemClock
from canary.runtime.reconciler import Measurement, Reconciler
from tests.fake_store import MemoryRolloutStore
from tests.fakes import FakeEvents, FakeRouter
from tests.hook_receiver import serving
from tests.unit.fake_cluster import FakeCluster, make_rollout

ENDED = ("Succeeded", "RolledBack", "Failed")


def run(hang: bool, releases: int) -> tuple[list[float], float, dict[str, int]]:
    """Reconcile durations (s), wall time until every release ended, and the final phases."""
    script: list[int | str] = ["hang"] if hang else [200]
    with serving({"step": script, "pre": script}) as receiver:
        hooks = HTTPHooks(outbound.Policy.parse([f"{receiver.address}/32"]), workers=4)
        store, clock = MemoryRolloutStore(), SystemClock()
        worlds = []
        for index in range(releases):
            rollout = make_rollout(
                hooks=[
                    {"name": "pre", "type": "pre-rollout", "url": receiver.url("pre"),
                     "callTimeout": "1s"},
                    {"name": "step", "type": "confirm-step", "url": receiver.url("step"),
                     "callTimeout": "1s", "interval": "1s"},
                ]
            )  # fmt: skip
            meta = rollout.metadata.model_copy(update={"namespace": f"t{index}"})
            ref = store.add(rollout.model_copy(update={"metadata": meta}))
            cluster, router = FakeCluster(), FakeRouter()
            reconciler = Reconciler(
                store, Workloads(cluster), {"HTTPRoute": router}, FakeEvents(), clock, hooks=hooks
            )
            worlds.append((ref, cluster, router, reconciler))
        durations: list[float] = []
        started = time.perf_counter()
        done: dict[Ref, str] = {}
        while len(done) < len(worlds) and time.perf_counter() - started < 120:
            for ref, cluster, router, reconciler in worlds:
                if ref in done:
                    continue
                began = time.perf_counter()
                reconciler.reconcile(ref, Measurement(evidence=cluster.evidence(5)))
                durations.append(time.perf_counter() - began)
                for route in router.routes.values():
                    cluster.route_exists, cluster.weight = True, route.canary_weight
                cluster.settle()
                stored = store.get(ref)
                if stored is not None and stored.status.phase in ENDED:
                    done[ref] = stored.status.phase
            time.sleep(0.1)
        wall = time.perf_counter() - started
        receiver.release.set()
        hooks.close()
    phases: dict[str, int] = {}
    for phase in done.values():
        phases[phase] = phases.get(phase, 0) + 1
    return durations, wall, phases


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--releases", type=int, default=10)
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"{args.releases} releases side by side, a pre-rollout and a confirm-step hook each")
    print()
    print(f"{'receiver':<10} {'reconciles':>10} {'median ms':>10} {'p99 ms':>9} {'max ms':>9} "
          f"{'all ended s':>12}  outcome")  # fmt: skip
    for hang in (False, True):
        durations, wall, phases = run(hang, args.releases)
        p99 = statistics.quantiles(durations, n=100, method="inclusive")[98]
        outcome = ", ".join(f"{n} {p}" for p, n in sorted(phases.items()))
        print(
            f"{'hanging' if hang else 'answering':<10} {len(durations):>10} "
            f"{statistics.median(durations) * 1000:>10.1f} {p99 * 1000:>9.1f} "
            f"{max(durations) * 1000:>9.1f} {wall:>12.1f}  {outcome}"
        )


if __name__ == "__main__":
    main()
