"""CPU used by the mesh emulator process against the real local control plane and Prometheus.

Run (with the dev environment up): ``set -a; . .dev/env; set +a;
.venv/bin/python bench/emulator_cpu_on_cluster.py [--rps 1000] [--pods 20] [--seconds 60]``.
It creates a namespace with an apex Service at ``--rps``, an HTTPRoute splitting 80/20 over
stable and canary Deployments holding ``--pods`` pods between them, waits for them to be Ready, runs
``python -m canary.emulator`` for that namespace (Prometheus scrapes it every 10 s), and reads the
emulator's user+system CPU from /proc over a steady window after a warm-up. It deletes the
namespace afterwards.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from kubernetes import client, config

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def deployment(name: str, replicas: int) -> client.V1Deployment:
    """``replicas`` pods labelled app=<name>, 1% errors."""
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(
                    labels=labels, annotations={"sim.canary.dev/error-rate": "0.01"}
                ),
                spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="app")]),
            ),
        ),
    )


def service(name: str, app: str, annotations: dict[str, str] | None = None) -> client.V1Service:
    """A Service on port 80 selecting ``app``."""
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name, annotations=annotations),
        spec=client.V1ServiceSpec(selector={"app": app}, ports=[client.V1ServicePort(port=80)]),
    )


def ready_pods(core: client.CoreV1Api, namespace: str) -> int:
    """Pods of the namespace whose Ready condition is True."""
    return sum(
        1
        for p in core.list_namespaced_pod(namespace).items
        if p.status
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    )


def main() -> None:
    """Set up, measure, print the table, clean up."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rps", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    api = config.new_client_from_config(config_file=os.environ["KUBECONFIG"])  # type: ignore[no-untyped-call]
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    ns = f"bench-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    canary = max(1, args.pods // 5)
    try:
        apps.create_namespaced_deployment(ns, deployment("web", args.pods - canary))
        apps.create_namespaced_deployment(ns, deployment("web-canary", canary))
        core.create_namespaced_service(
            ns, service("web", "web", {"sim.canary.dev/rps": str(args.rps)})
        )
        core.create_namespaced_service(ns, service("web-stable", "web"))
        core.create_namespaced_service(ns, service("web-canary", "web-canary"))
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", ns, "httproutes",
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": {"name": "web"},
                "spec": {
                    "parentRefs": [{"group": "core", "kind": "Service", "name": "web", "port": 80}],
                    "rules": [{"backendRefs": [
                        {"name": "web-stable", "port": 80, "weight": 80},
                        {"name": "web-canary", "port": 80, "weight": 20},
                    ]}],
                },
            },
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while ready_pods(core, ns) < args.pods and time.monotonic() < deadline:
            time.sleep(1)
        emulator = subprocess.Popen(
            [sys.executable, "-m", "canary.emulator", "--namespace", ns, "--port", "0",
             "--targets-file", f"{ns}.json"],
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(15)
            cpu0, wall0 = cpu_seconds(emulator.pid), time.monotonic()
            time.sleep(args.seconds)
            cpu, wall = cpu_seconds(emulator.pid) - cpu0, time.monotonic() - wall0
        finally:
            emulator.send_signal(signal.SIGTERM)
            emulator.wait(timeout=30)
        ready = ready_pods(core, ns)
    finally:
        core.delete_namespace(ns)
    print(f"{'req/s':>7} {'pods':>5} {'ready':>6} {'wall s':>7} {'CPU s':>7} {'CPU %':>6}")
    print(
        f"{args.rps:>7} {args.pods:>5} {ready:>6} {wall:>7.1f} {cpu:>7.2f} {100 * cpu / wall:>6.1f}"
    )


if __name__ == "__main__":
    main()
