"""CPU of the mesh emulator over a fleet of apps on the real local control plane, while routes
change: what the emulator costs at the scale benchmark's N = 1000.

Run: ``make bench-emulator-fleet`` (``python -m bench.emulator_fleet_cpu --apps 1000``), with or
without a running dev environment (``make dev-up``; one is started in ``--dev-dir`` otherwise).
It fills a namespace with ``--apps`` apps as a release at 5% has them: an apex Service loaded at
``--rps`` (``sim.canary.dev/rps``), a stable and a canary Deployment of one kwok pod each, their
``-stable``/``-canary`` Services and an HTTPRoute splitting 95/5, and waits until every pod is
Ready and Linkerd's real policy controller has accepted every route. Then for each
``--variant NAME=DIR`` in turn (default: this tree) it runs ``python -m canary.emulator`` from
DIR over that namespace, as ``make bench-scale`` does (``--policy-grpc`` to the policy
controller, file-SD targets for the dev environment's Prometheus), lets it warm up, and
measures over ``--seconds`` the CPU of the emulator, of the policy controller and of
Prometheus (each with its process group, from ``/proc``) and the machine's, while a thread
patches ``--churn`` routes a second (95/5 ↔ 90/10, round robin), as releases stepping do. A
variant is checked, not just timed: at the end every app's load generator must have sent
requests to both backends. The namespace is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client, config

from bench.scale import (
    _env,
    app_deployment,
    component_pids,
    groups_cpu_seconds,
    machine_busy_seconds,
)
from devenv.cluster import DevEnv

REPO = Path(__file__).resolve().parents[1]
ROUTES = ("gateway.networking.k8s.io", "v1")
PORT = 80


def _service(name: str, app: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": PORT}]},
    }


def _route(name: str, canary: int) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [{"group": "core", "kind": "Service", "name": name, "port": PORT}],
            "rules": [
                {
                    "backendRefs": [
                        {"name": f"{name}-stable", "port": PORT, "weight": 100 - canary},
                        {"name": f"{name}-canary", "port": PORT, "weight": canary},
                    ]
                }
            ],
        },
    }


def populate(api: client.ApiClient, namespace: str, apps: int, rps: float) -> None:
    """``apps`` apps at 5% in a new namespace."""
    core: Any = client.CoreV1Api(api)
    deployments: Any = client.AppsV1Api(api)
    custom: Any = client.CustomObjectsApi(api)
    core.create_namespace({"metadata": {"name": namespace}})

    def app(i: int) -> None:
        name = f"app-{i}"
        deployments.create_namespaced_deployment(namespace, app_deployment(name))
        deployments.create_namespaced_deployment(namespace, app_deployment(f"{name}-canary"))
        core.create_namespaced_service(
            namespace, _service(name, name, {"sim.canary.dev/rps": str(rps)})
        )
        core.create_namespaced_service(namespace, _service(f"{name}-stable", name))
        core.create_namespaced_service(namespace, _service(f"{name}-canary", f"{name}-canary"))
        custom.create_namespaced_custom_object(*ROUTES, namespace, "httproutes", _route(name, 5))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(app, range(apps)))


def _accepted(route: dict[str, Any]) -> bool:
    for parent in (route.get("status") or {}).get("parents") or []:
        conditions = {c["type"]: c["status"] for c in parent.get("conditions") or []}
        if conditions.get("Accepted") == "True" and conditions.get("ResolvedRefs") == "True":
            return True
    return False


def wait_ready(api: client.ApiClient, namespace: str, apps: int, timeout: float) -> None:
    """Until every pod is Ready and every route accepted with its refs resolved."""
    core: Any = client.CoreV1Api(api)
    custom: Any = client.CustomObjectsApi(api)
    end = time.monotonic() + timeout
    while True:
        pods = core.list_namespaced_pod(namespace).items
        ready = sum(
            1
            for p in pods
            if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        )
        routes = custom.list_namespaced_custom_object(*ROUTES, namespace, "httproutes")["items"]
        accepted = sum(1 for r in routes if _accepted(r))
        print(f"pods Ready {ready} of {2 * apps}, routes accepted {accepted} of {apps}", flush=True)
        if ready >= 2 * apps and accepted >= apps:
            return
        if time.monotonic() > end:
            raise SystemExit(f"the fleet was not ready in {timeout:.0f} s")
        time.sleep(10)


class Churn(threading.Thread):
    """Patches ``rate`` routes a second, round robin, between 95/5 and 90/10."""

    def __init__(self, api: client.ApiClient, namespace: str, apps: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.custom: Any = client.CustomObjectsApi(api)
        self.namespace, self.apps, self.rate = namespace, apps, rate
        self.stopping = threading.Event()
        self.patches = 0
        self._next = 0

    def run(self) -> None:
        """Patch until stopped."""
        while self.rate > 0 and not self.stopping.wait(1.0 / self.rate):
            i = self._next % self.apps
            canary = 10 if (self._next // self.apps) % 2 == 0 else 5
            self._next += 1
            body = {"spec": _route(f"app-{i}", canary)["spec"]}
            self.custom.patch_namespaced_custom_object(
                *ROUTES, self.namespace, "httproutes", f"app-{i}", body
            )
            self.patches += 1


def _loadgens_sending_to_both(targets_file: Path) -> tuple[int, int]:
    """(load generators whose proxy counted requests to both backends, load generators)."""
    both = total = 0
    for group in json.loads(targets_file.read_text()):
        labels = group["labels"]
        if not labels.get("pod", "").endswith("-loadgen"):
            continue
        total += 1
        url = f"http://{group['targets'][0]}{labels['__metrics_path__']}"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        services = {
            part.split('"')[1]
            for line in text.splitlines()
            if line.startswith("response_total{") and 'direction="outbound"' in line
            for part in line.split(",")
            if part.startswith("dst_service=")
        }
        both += any(s.endswith("-stable") for s in services) and any(
            s.endswith("-canary") for s in services
        )
    return both, total


def measure(
    env: dict[str, str],
    api: client.ApiClient,
    namespace: str,
    variant: tuple[str, Path],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One variant, ``(name, source tree)``: the emulator from that tree, warmed up, measured
    under churn, checked."""
    name, tree = variant
    log = Path(env["DEV_DIR"]) / "logs" / f"emulator-fleet-{name}.log"
    targets_file = f"{namespace}.json"
    with log.open("w") as out:
        emulator = subprocess.Popen(
            [sys.executable, "-m", "canary.emulator", "--kubeconfig", env["KUBECONFIG"],
             "--targets-dir", env["PROMETHEUS_TARGETS_DIR"], "--targets-file", targets_file,
             "--namespace", namespace, "--port", "0",
             "--policy-grpc", env["LINKERD_POLICY_GRPC"]],
            cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, stdout=out, stderr=out,
            start_new_session=True,
        )  # fmt: skip
    churn = Churn(api, namespace, args.apps, args.churn)
    try:
        time.sleep(args.warmup)
        pids = {"emulator": emulator.pid, **component_pids(env)}
        cpu0, busy0, wall0 = groups_cpu_seconds(pids.values()), machine_busy_seconds(), time.time()
        churn.start()
        time.sleep(args.seconds)
        churn.stopping.set()
        cpu1, busy1, wall1 = groups_cpu_seconds(pids.values()), machine_busy_seconds(), time.time()
        churn.join()
        both, loadgens = _loadgens_sending_to_both(
            Path(env["PROMETHEUS_TARGETS_DIR"]) / targets_file
        )
    finally:
        emulator.send_signal(signal.SIGTERM)
        emulator.wait(timeout=60)
    minutes = (wall1 - wall0) / 60
    per_minute = {k: (cpu1[pid] - cpu0[pid]) / minutes for k, pid in pids.items()}
    return {
        "variant": name,
        "emulator": per_minute["emulator"],
        "policy": per_minute.get("linkerd-policy-controller", float("nan")),
        "prometheus": per_minute.get("prometheus", float("nan")),
        "machine": (busy1 - busy0) / minutes,
        "patches": churn.patches / (wall1 - wall0),
        "both": both,
        "loadgens": loadgens,
    }


def table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """The markdown table of the variants."""
    lines = [
        f"{args.apps} apps at {args.rps:g} req/s each, {args.churn:g} route patches/s; CPU "
        "seconds a minute (the machine's cores give "
        f"{60 * (os.cpu_count() or 1)}):",
        "",
        "| emulator from | emulator | policy controller | Prometheus | the machine | route "
        "patches/s | load generators sending to both backends |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['emulator']:.1f} | {r['policy']:.1f} | "
            f"{r['prometheus']:.1f} | {r['machine']:.1f} | {r['patches']:.1f} | "
            f"{r['both']} of {r['loadgens']} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, set up the fleet, measure each variant, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--rps", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=120, help="measured window per variant")
    parser.add_argument("--warmup", type=float, default=60, help="seconds before measuring")
    parser.add_argument("--churn", type=float, default=10, help="route patches a second")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="run the emulator from the source tree DIR (repeatable; default: this tree)",
    )
    parser.add_argument("--dev-dir", type=Path, default=REPO / ".dev")
    parser.add_argument("--ready-timeout", type=float, default=1800)
    args = parser.parse_args(argv)
    variants = [v.split("=", 1) for v in args.variant] or [["this tree", str(REPO)]]
    DevEnv(args.dev_dir).up()
    env = _env(args.dev_dir)
    api = config.new_client_from_config(config_file=env["KUBECONFIG"])  # type: ignore[no-untyped-call]
    namespace = f"fleet-{uuid.uuid4().hex[:6]}"
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        populate(api, namespace, args.apps, args.rps)
        wait_ready(api, namespace, args.apps, args.ready_timeout)
        rows = []
        for name, tree in variants:
            rows.append(measure(env, api, namespace, (name, Path(tree).resolve()), args))
            print(table(rows, args), flush=True)
    finally:
        client.CoreV1Api(api).delete_namespace(namespace)
    print(f"\n{started}, `python -m bench.emulator_fleet_cpu {' '.join(argv or sys.argv[1:])}`")
    print(table(rows, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
