"""What the controller's caches cost in memory when they first list a large namespace.

Run: ``python -m bench.list_memory --n 1000`` against a running dev environment (``make
dev-up``; a few minutes). It creates a namespace of ``--n`` apps as ``make bench-scale`` has
them — a Deployment (its pod run by kwok), a Service, an HTTPRoute with the Service as its
parent (which Linkerd's policy controller accepts and writes status to) and a Rollout — then,
for each variant, starts a fresh process that builds canary's ``KubeCache`` over the namespace,
reads the routes through it, waits until every informer has listed, and reports its peak
resident memory (``VmHWM``) and its resident memory once synced (``VmRSS``), beside the same
process's before it listed. Variants:

- ``unpaged, routes whole``: the informers of before (one LIST per kind, routes cached as
  the API server sends them);
- ``pages of 500, routes trimmed``: client-go's pager default, routes as
  ``cached.trim_route`` keeps them;
- ``pages of 100, routes trimmed``: today's (``informer.PAGE``).

Each variant runs ``--repeat`` times, interleaved; the table gives medians. Prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config

from canary.adapters.kube import cached, informer

GROUP, VERSION = "canary.dev", "v1alpha1"
APP_PORT = 8080
REPO = Path(__file__).resolve().parent.parent
VARIANTS: dict[str, tuple[int, bool]] = {
    "unpaged, routes whole": (0, False),
    "pages of 500, routes trimmed": (500, True),
    "pages of 100, routes trimmed": (100, True),
}
"""Each variant's page size (0: unpaged) and whether routes are trimmed."""


def _kubeconfig(dev_dir: Path) -> str:
    return str(dev_dir / "kubeconfig")


def populate(api: client.ApiClient, namespace: str, n: int) -> None:
    """``n`` apps in a new namespace: Deployment, Service, HTTPRoute and Rollout each."""
    apps: Any = client.AppsV1Api(api)
    core: Any = client.CoreV1Api(api)
    custom: Any = client.CustomObjectsApi(api)
    core.create_namespace({"metadata": {"name": namespace}})
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "rolloutpolicies",
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "RolloutPolicy",
         "metadata": {"name": "scale"}, "spec": {"traffic": {"router": "HTTPRoute"}}},
    )  # fmt: skip

    def app(i: int) -> None:
        name = f"app-{i}"
        labels = {"app": name}
        apps.create_namespaced_deployment(
            namespace,
            {
                "metadata": {"name": name},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
                    },
                },
            },
        )
        core.create_namespaced_service(
            namespace,
            {
                "metadata": {"name": name},
                "spec": {"selector": labels, "ports": [{"name": "http", "port": APP_PORT}]},
            },
        )
        custom.create_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", namespace, "httproutes",
            {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": name},
             "spec": {"parentRefs": [{"group": "core", "kind": "Service", "name": name,
                                      "port": APP_PORT}],
                      "rules": [{"backendRefs": [{"name": name, "port": APP_PORT,
                                                  "weight": 100}]}]}},
        )  # fmt: skip
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "rollouts",
            {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Rollout",
             "metadata": {"name": f"{name}-v2"},
             "spec": {"targetRef": {"name": name}, "release": {"images": {"app": "app:2"}},
                      "service": {"name": name, "port": APP_PORT},
                      "policyRef": {"name": "scale"}}},
        )  # fmt: skip

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(app, range(n)))


def _status_kb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    raise KeyError(key)


def child(kubeconfig: str, namespace: str, page: int, trim: bool) -> dict[str, float]:
    """In this process: cache the namespace as the controller does; its memory, in MB."""
    informer.PAGE = page
    if not trim:
        cached.trim_route = lambda obj: obj
    api = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    lists = {"n": 0}
    original = api.call_api

    def call_api(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        query = kwargs.get("query_params") or []
        if method == "GET" and not any(k == "watch" for k, _ in query):
            lists["n"] += 1
        return original(method, url, *args, **kwargs)

    setattr(api, "call_api", call_api)  # noqa: B010  (counting this process's requests)
    before = _status_kb("VmRSS") / 1024
    cache = cached.KubeCache(api, [namespace])
    stop = threading.Event()
    threading.Thread(target=cache.run, args=(None, stop), daemon=True).start()
    cache.wait_synced(600)
    routes = cache.route_objects("gateway.networking.k8s.io/v1", "httproutes")
    routed = [routes.get(namespace, name) for name in _names(len(cache.deployments))]
    return {
        "before": before,
        "peak": _status_kb("VmHWM") / 1024,
        "synced": _status_kb("VmRSS") / 1024,
        "lists": float(lists["n"]),
        "deployments": float(len(cache.deployments)),
        "routes": float(sum(route is not None for route in routed)),
    }


def _names(n: int) -> list[str]:
    return [f"app-{i}" for i in range(n)]


def measure(kubeconfig: str, namespace: str, page: int, trim: bool) -> dict[str, float]:
    """``child`` in a fresh process (its peak is its own)."""
    argv = [sys.executable, "-m", "bench.list_memory", "--child", namespace, str(page)]
    argv += ["--trim"] if trim else []
    env = {**os.environ, "KUBECONFIG": kubeconfig, "PYTHONPATH": str(REPO)}
    done = subprocess.run(argv, env=env, check=True, capture_output=True, text=True, cwd=REPO)
    found: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="apps in the namespace")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant")
    parser.add_argument("--dev-dir", default=str(REPO / ".dev"), help="a running dev environment")
    parser.add_argument("--child", nargs=2, metavar=("NAMESPACE", "PAGE"), help=argparse.SUPPRESS)
    parser.add_argument("--trim", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        namespace, page = args.child
        print(json.dumps(child(os.environ["KUBECONFIG"], namespace, int(page), args.trim)))
        sys.stdout.flush()
        os._exit(0)  # the informers' threads are still reading their watches: no teardown
    kubeconfig = _kubeconfig(Path(args.dev_dir))
    api = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    namespace = f"list-memory-{int(time.time())}"
    started = time.monotonic()
    populate(api, namespace, args.n)
    time.sleep(30)  # pods scheduled, Deployment status and route status written
    print(f"populated {args.n} apps in {time.monotonic() - started:.0f} s", file=sys.stderr)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
    try:
        for _ in range(args.repeat):
            for name, (page, trim) in VARIANTS.items():
                results[name].append(measure(kubeconfig, namespace, page, trim))
                print(name, results[name][-1], file=sys.stderr)
    finally:
        client.CoreV1Api(api).delete_namespace(namespace)
    print(
        f"`python -m bench.list_memory --n {args.n} --repeat {args.repeat}`, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores; "
        f"medians of {args.repeat} processes per variant, MB.\n"
    )
    print(
        "| variant | LIST requests | Deployments, routes cached | RSS before listing "
        "| peak RSS (VmHWM) | RSS once synced |"
    )
    print("|---|---|---|---|---|---|")
    for name, runs in results.items():

        def median(key: str, runs: list[dict[str, float]] = runs) -> float:
            return statistics.median(r[key] for r in runs)

        print(
            f"| {name} | {median('lists'):.0f} "
            f"| {median('deployments'):.0f}, {median('routes'):.0f} | {median('before'):.1f} "
            f"| {median('peak'):.1f} | {median('synced'):.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
