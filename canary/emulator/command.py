"""The mesh emulator process: ``python -m canary.emulator`` (or ``canary-emulator``).

Who calls it: developers, ``make demo`` and the integration tests, against the local control
plane. It watches the cluster through :class:`~canary.adapters.kube.meshview.MeshView`, rebuilds
the topology when something changed, advances the traffic model every ``--tick`` seconds of
real time, serves every emulated proxy's ``/metrics`` from one HTTP server on 127.0.0.1, writes
Prometheus file-SD targets. It writes nothing to the cluster: route status and ServiceProfiles
come from Linkerd's real policy controller and smi adaptor, and with ``--policy-grpc`` the split
of an HTTPRoute is what the policy controller's ``OutboundPolicies/Watch`` pushes each load
generator's proxy (one stream per loaded Service, as real proxies keep). It runs until
SIGINT/SIGTERM and then withdraws its targets. See docs/emulator.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Protocol

import structlog

from canary.adapters.kube.meshview import MeshSnapshot, MeshView, RouteView, ServiceView
from canary.adapters.outbound.client import Asker, Backends, OutboundWatches, Service
from canary.emulator import targets, topology
from canary.emulator.annotations import RPS
from canary.emulator.engine import Engine
from canary.emulator.server import MetricsServer
from canary.errors import CanaryError

log = structlog.get_logger("canary.emulator")

RESYNC_SECONDS = 5.0
"""Rebuild the topology at least this often even without a watch event (cheap insurance)."""

SYNC_EVERY_SECONDS = 1.0
"""Rebuild the topology at most this often, however often the cluster or the policy controller's
answers change: at N = 1000 apps a rebuild costs about 0.1 CPU s, and releases change pods,
ReplicaSets and routes many times a second (a profile of the scale benchmark, 2026-12-04: 42%
of the emulator's CPU was rebuilding, twice a second)."""

TARGETS_EVERY_SECONDS = 5.0
"""Write changed scrape targets at most this often. Prometheus reads the whole file again on
every write (at N = 1000 apps, 1.2 MB of JSON: 37% of its CPU in the same profile, with a write
at every rebuild), and its discovery manager hands new targets to the scrapers at most every
5 s anyway, so writing more often only costs."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The emulator's options."""
    parser.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG"),
        help="kubeconfig of the cluster to emulate a mesh for (default: $KUBECONFIG)",
    )
    parser.add_argument("--context", default=None, help="kubeconfig context (default: current)")
    parser.add_argument(
        "--policy-grpc",
        default=os.environ.get("LINKERD_POLICY_GRPC"),
        help="host:port of Linkerd's policy controller gRPC API: HTTPRoute splits are what its "
        "OutboundPolicies/Watch pushes (default: $LINKERD_POLICY_GRPC; unset: read the accepted "
        "routes themselves)",
    )
    parser.add_argument(
        "--targets-dir",
        type=Path,
        default=os.environ.get("PROMETHEUS_TARGETS_DIR"),
        help="directory Prometheus reads file-SD targets from (default: $PROMETHEUS_TARGETS_DIR)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to serve metrics on")
    parser.add_argument(
        "--port", type=int, default=4191, help="port to serve metrics on (0: any free port)"
    )
    parser.add_argument(
        "--tick", type=float, default=0.5, help="seconds between traffic-model advances"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the traffic model")
    parser.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="emulate proxies only in this namespace (repeatable; default: every namespace)",
    )
    parser.add_argument(
        "--targets-file",
        default=targets.FILE_NAME,
        help=f"file name of the targets in --targets-dir (default: {targets.FILE_NAME})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m canary.emulator``."""
    parser = argparse.ArgumentParser(
        prog="python -m canary.emulator",
        description="Emulate Linkerd proxies: simulated traffic, real /metrics for Prometheus.",
    )
    add_arguments(parser)
    return parser


class ClusterView(Protocol):
    """What the emulator loop needs from the cluster (``MeshView`` in production)."""

    changed: threading.Event

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def snapshot(self) -> MeshSnapshot: ...


class PolicySource(Protocol):
    """Where proxies learn route backends (``OutboundWatches`` in production)."""

    changed: threading.Event
    """Set when an answer changed."""

    def follow(self, services: Mapping[Service, Asker]) -> None:
        """Keep answers for exactly these Services, each asked for ``(port, source pod)``."""
        ...

    def answers(self) -> Mapping[Service, Backends]:
        """The weighted backend Services each followed Service's proxies get, where known."""
        ...

    def close(self) -> None:
        """Stop following."""
        ...


class Emulator:
    """The running process: cluster view, engine, HTTP server and target file, tied together."""

    def __init__(
        self,
        view: ClusterView,
        targets_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 4191,
        tick: float = 0.5,
        seed: int = 0,
        namespaces: Sequence[str] = (),
        targets_file: str = targets.FILE_NAME,
        policies: PolicySource | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.view = view
        self.policies = policies
        self.clock = clock
        """Seconds on a monotonic clock (injected by tests)."""
        self.targets_dir = targets_dir
        self.targets_file = targets_file
        self.namespaces = frozenset(namespaces)
        self.tick_seconds = tick
        self.engine = Engine(seed=seed)
        self._memo = topology.PodMemo()
        self.server = MetricsServer(self.engine, host=host, port=port)
        self.stopping = threading.Event()
        self._reported: set[str] = set()
        self._last = 0.0
        self._last_sync = float("-inf")
        """When the last full sync (cluster and answers) was: the resync is timed from it."""
        self._last_rebuild = float("-inf")
        """When the topology was last rebuilt, by either sync: the rate limit is timed from it."""
        self._published: list[Mapping[str, str]] | None = None
        """The target labels last written to the targets file (None: nothing yet)."""
        self._pending: list[Mapping[str, str]] | None = None
        """Target labels that differ from the file's, waiting for ``TARGETS_EVERY_SECONDS``."""
        self._last_write = float("-inf")

    def run(self) -> int:
        """Serve until ``stopping`` is set; returns the exit code."""
        self.open()
        try:
            while not self.stopping.is_set():
                started = self.clock()
                self.step()
                self.stopping.wait(max(0.0, self.tick_seconds - (self.clock() - started)))
        finally:
            self.close()
        return 0

    def open(self) -> None:
        """Start serving metrics and watching the cluster."""
        serving = threading.Thread(target=self.server.serve_forever, daemon=True)
        serving.start()
        self.view.start()
        log.info("emulator_started", address=self.server.address, targets_dir=str(self.targets_dir))
        self._last = self.clock()

    def step(self) -> None:
        """One turn of the loop: sync when the cluster changed (or a resync is due) or the
        policy controller pushed a new answer, at most every ``SYNC_EVERY_SECONDS``; write the
        targets when they changed and a write is due; then move the traffic model on by the
        time since the last turn."""
        now = self.clock()
        may_rebuild = now - self._last_rebuild >= SYNC_EVERY_SECONDS
        if now - self._last_sync >= RESYNC_SECONDS or (may_rebuild and self.view.changed.is_set()):
            self.view.changed.clear()
            self.sync()
            self._last_sync = self._last_rebuild = now
        elif may_rebuild and self.policies is not None and self.policies.changed.is_set():
            self.sync(follow=False)
            self._last_rebuild = now
        self._publish(now)
        self.engine.tick(now - self._last)
        self._last = now

    def _publish(self, now: float) -> None:
        """Write the pending targets once ``TARGETS_EVERY_SECONDS`` passed since the last
        write (the first at once)."""
        if self._pending is None or now - self._last_write < TARGETS_EVERY_SECONDS:
            return
        labels, self._pending = self._pending, None
        groups = targets.groups(self.server.address, labels)
        if targets.write(self.targets_dir, groups, self.targets_file):
            log.info("targets_written", proxies=len(groups))
        self._published, self._last_write = labels, now

    def close(self) -> None:
        """Withdraw the targets, stop serving and watching."""
        targets.remove(self.targets_dir, self.targets_file)
        self.server.shutdown()
        self.server.server_close()
        self.view.stop()
        if self.policies is not None:
            self.policies.close()
        log.info("emulator_stopped", requests_sent=self.engine.requests_sent)

    def sync(self, follow: bool = True) -> None:
        """Rebuild the topology from the cluster and publish what changed (with a policy source:
        first tell it which Services are loaded, unless only its answers changed)."""
        snapshot = self.view.snapshot()
        if self.policies is not None:
            if follow:
                try:
                    self.policies.follow(self._askers(snapshot))
                except CanaryError as error:
                    log.warning("outbound_policy_failed", error=str(error))
            self.policies.changed.clear()
            snapshot = self._policy_routes(snapshot, self.policies.answers())
        current = topology.build(snapshot, self.namespaces, self._memo)
        self.engine.apply(current)
        labels = self.engine.target_labels()
        # Compared, not encoded: an unchanged pod's labels are the very same object (PodMemo).
        self._pending = None if labels == self._published else labels
        reported = set()
        for problem in current.problems:
            text = str(problem)
            reported.add(text)
            if text not in self._reported:
                log.warning("annotation_rejected", problem=text)
        self._reported = reported

    def _loaded_services(self, snapshot: MeshSnapshot) -> list[ServiceView]:
        return [
            s
            for s in snapshot.services
            if RPS in s.annotations and (not self.namespaces or s.namespace in self.namespaces)
        ]

    def _askers(self, snapshot: MeshSnapshot) -> dict[Service, Asker]:
        """Every loaded Service, with the port its load generator's proxy asks for."""
        return {
            (s.namespace, s.name): (next(iter(s.ports), topology.DEFAULT_PORT), f"{s.name}-loadgen")
            for s in self._loaded_services(snapshot)
        }

    def _policy_routes(
        self, snapshot: MeshSnapshot, answers: Mapping[Service, Backends]
    ) -> MeshSnapshot:
        """The snapshot with its HTTPRoute splits replaced by the policy controller's answers (a
        Service without one yet sends to its own pods, as it would without a route)."""
        routes = [r for r in snapshot.routes if r.kind != "HTTPRoute"]
        for (namespace, service), backends in sorted(answers.items()):
            if backends != ((service, 1.0),):
                routes.append(RouteView("HTTPRoute", namespace, service, service, backends))
        return dataclasses.replace(snapshot, routes=tuple(routes))


def run(args: argparse.Namespace) -> int:
    """Run the emulator until SIGINT/SIGTERM."""
    if args.targets_dir is None:
        raise SystemExit("--targets-dir (or $PROMETHEUS_TARGETS_DIR) is required")
    emulator = Emulator(
        MeshView(kubeconfig=args.kubeconfig, context=args.context),
        Path(args.targets_dir),
        host=args.host,
        port=args.port,
        tick=args.tick,
        seed=args.seed,
        namespaces=args.namespace,
        targets_file=args.targets_file,
        policies=OutboundWatches(args.policy_grpc) if args.policy_grpc else None,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        emulator.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return emulator.run()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m canary.emulator``; returns the exit code. Logs go to stderr."""
    args = build_parser().parse_args(argv)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    return run(args)
