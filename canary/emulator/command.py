"""The mesh emulator process: ``python -m canary.emulator`` (or ``canary-emulator``).

Who calls it: developers, ``make demo`` and the integration tests, against the local control
plane. It watches the cluster through :class:`~canary.adapters.kube.meshview.MeshView`, rebuilds
the topology when something changed, advances the traffic model every ``--tick`` seconds of
real time, serves every emulated proxy's ``/metrics`` from one HTTP server on 127.0.0.1, writes
Prometheus file-SD targets, and marks GAMMA HTTPRoutes Accepted as Linkerd would. It runs until
SIGINT/SIGTERM and then withdraws its targets. See docs/emulator.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Protocol

import structlog

from canary.adapters.kube.meshview import MeshSnapshot, MeshView, RouteView
from canary.emulator import targets, topology
from canary.emulator.engine import Engine
from canary.emulator.server import MetricsServer
from canary.errors import CanaryError

log = structlog.get_logger("canary.emulator")

RESYNC_SECONDS = 5.0
"""Rebuild the topology at least this often even without a watch event (cheap insurance)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The emulator's options."""
    parser.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG"),
        help="kubeconfig of the cluster to emulate a mesh for (default: $KUBECONFIG)",
    )
    parser.add_argument("--context", default=None, help="kubeconfig context (default: current)")
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
    def accept_route(self, route: RouteView) -> None: ...


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.view = view
        self.clock = clock
        """Seconds on a monotonic clock (injected by tests)."""
        self.targets_dir = targets_dir
        self.targets_file = targets_file
        self.namespaces = frozenset(namespaces)
        self.tick_seconds = tick
        self.engine = Engine(seed=seed)
        self.server = MetricsServer(self.engine, host=host, port=port)
        self.stopping = threading.Event()
        self._reported: set[str] = set()
        self._last = 0.0
        self._last_sync = float("-inf")

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
        """One turn of the loop: sync when the cluster changed (or a resync is due), then move
        the traffic model on by the time since the last turn."""
        now = self.clock()
        if self.view.changed.is_set() or now - self._last_sync >= RESYNC_SECONDS:
            self.view.changed.clear()
            self.sync()
            self._last_sync = now
        self.engine.tick(now - self._last)
        self._last = now

    def close(self) -> None:
        """Withdraw the targets, stop serving and watching."""
        targets.remove(self.targets_dir, self.targets_file)
        self.server.shutdown()
        self.server.server_close()
        self.view.stop()
        log.info("emulator_stopped", requests_sent=self.engine.requests_sent)

    def sync(self) -> None:
        """Rebuild the topology from the cluster and publish what changed."""
        current = topology.build(self.view.snapshot(), self.namespaces)
        self.engine.apply(current)
        groups = self.engine.targets(self.server.address)
        if targets.write(self.targets_dir, groups, self.targets_file):
            log.info("targets_written", proxies=len(current.pods) + len(current.flows))
        reported = set()
        for problem in current.problems:
            text = str(problem)
            reported.add(text)
            if text not in self._reported:
                log.warning("annotation_rejected", problem=text)
        self._reported = reported
        for route in current.routes_to_accept:
            name = f"{route.namespace}/{route.name}"
            try:
                self.view.accept_route(route)
                log.info("route_accepted", route=name, generation=route.generation)
            except CanaryError as exc:
                log.warning("route_accept_failed", route=name, error=str(exc))


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
