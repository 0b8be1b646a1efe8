"""CPU used by the mesh emulator process at a given load, without a cluster.

Run: ``.venv/bin/python bench/emulator_cpu.py [--rps 1000] [--pods 20] [--seconds 60]``.
A child process runs the real emulator loop (``canary.emulator.command.Emulator``: engine ticks
every 0.5 s, one HTTP server, file-SD targets) over a fixed in-memory cluster — one apex Service
annotated with ``--rps``, an HTTPRoute splitting 80/20 over stable and canary Services, ``--pods``
Ready pods between them — while this process scrapes every target every 10 s as Prometheus does.
The child reports its own CPU seconds over the steady window (imports and start-up excluded). The
cluster watch is not exercised here: against a real API server it adds the watch threads, which
are idle between events.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from canary.adapters.kube.meshview import MeshSnapshot, PodView, RouteView, ServiceView
from canary.emulator.command import Emulator


class StaticView:
    """A cluster that never changes."""

    def __init__(self, snapshot: MeshSnapshot) -> None:
        self.changed = threading.Event()
        self._snapshot = snapshot

    def start(self) -> None:
        """Nothing to watch."""

    def stop(self) -> None:
        """Nothing to stop."""

    def snapshot(self) -> MeshSnapshot:
        """The fixed cluster."""
        return self._snapshot


def cluster(rps: float, pods: int) -> MeshSnapshot:
    """One apex Service at ``rps``, split 80/20 by an HTTPRoute over ``pods`` pods."""
    canary_pods = max(1, pods // 5)
    views = []
    for i in range(pods):
        app = "web-canary" if i < canary_pods else "web"
        views.append(
            PodView(
                namespace="bench",
                name=f"{app}-{i}",
                uid=f"uid-{i}",
                ip=f"10.9.{i // 250}.{i % 250 + 1}",
                phase="Running",
                ready=True,
                labels={"app": app, "pod-template-hash": "h"},
                annotations={"sim.canary.dev/error-rate": "0.01"},
                owner_replicaset="",
                service_account="default",
                container_ports=(8080,),
            )
        )
    services = (
        ServiceView("bench", "web", {"app": "web"}, (80,), {"sim.canary.dev/rps": str(rps)}),
        ServiceView("bench", "web-stable", {"app": "web"}, (80,), {}),
        ServiceView("bench", "web-canary", {"app": "web-canary"}, (80,), {}),
    )
    route = RouteView("HTTPRoute", "bench", "web", "web", (("web-stable", 80), ("web-canary", 20)))
    return MeshSnapshot(pods=tuple(views), services=services, routes=(route,))


def serve(args: argparse.Namespace) -> None:
    """The child: run the emulator loop, print CPU seconds over the steady window as JSON."""
    targets_dir = Path(args.targets_dir)
    emulator = Emulator(StaticView(cluster(args.rps, args.pods)), targets_dir, port=0)
    thread = threading.Thread(target=emulator.run, daemon=True)
    thread.start()
    time.sleep(2.0)
    cpu0, wall0 = time.process_time(), time.monotonic()
    time.sleep(args.seconds)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    sent = emulator.engine.requests_sent
    emulator.stopping.set()
    thread.join()
    print(json.dumps({"cpu_seconds": cpu, "wall_seconds": wall, "requests_sent": sent}))


def scrape_until_done(child: subprocess.Popen[str], targets_file: Path) -> int:
    """Scrape every target every 10 s until the child exits; returns the number of scrapes."""
    scrapes = 0
    while child.poll() is None:
        started = time.monotonic()
        try:
            groups = json.loads(targets_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            groups = []
        for group in groups:
            url = f"http://{group['targets'][0]}{group['labels']['__metrics_path__']}"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    response.read()
                scrapes += 1
            except OSError:
                pass
        time.sleep(max(0.0, 10.0 - (time.monotonic() - started)) if groups else 0.2)
    return scrapes


def main() -> None:
    """Parse the options; run the child and the scraper; print the result table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rps", type=float, default=1000)
    parser.add_argument("--pods", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--targets-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--targets-dir", tmp, "--rps", str(args.rps),
             "--pods", str(args.pods), "--seconds", str(args.seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        scrapes = scrape_until_done(child, Path(tmp) / "canary-mesh-emulator.json")
        result = json.loads(child.communicate()[0].strip().splitlines()[-1])
    cpu, wall = result["cpu_seconds"], result["wall_seconds"]
    print(
        f"{'req/s':>7} {'pods':>5} {'wall s':>7} {'CPU s':>7} {'CPU %':>6} "
        f"{'sent req/s':>10} {'scrapes':>8}"
    )
    print(
        f"{args.rps:>7.0f} {args.pods:>5} {wall:>7.1f} {cpu:>7.2f} {100 * cpu / wall:>6.1f} "
        f"{result['requests_sent'] / (wall + 2.0):>10.0f} {scrapes:>8}"
    )


if __name__ == "__main__":
    main()
