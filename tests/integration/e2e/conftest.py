"""End-to-end fixtures: per test, a namespace with the podinfo app, a mesh emulator and a
controller process (`canary run`) that both watch only that namespace, so tests never see each
other's traffic and a test may kill its own controller. The controller authenticates as the
chart's ServiceAccount (`canary-system/canary`, installed from `deploy/`), never as the admin.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from bench import accounts
from devenv import layout
from tests.integration import serviceaccount
from tests.integration.conftest import Cluster

REPO = Path(__file__).resolve().parents[3]
GROUP, VERSION = "canary.dev", "v1alpha1"
V1_ROUTE = "gateway.networking.k8s.io/v1"


def quantity(value: object) -> Fraction:
    """A route weight: an integer, or a Kubernetes quantity such as ``950m``."""
    text = str(value)
    return Fraction(text[:-1]) / 1000 if text.endswith("m") else Fraction(text)


@dataclass
class Process:
    """A background process of the test, with its log file."""

    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    env: dict[str, str] | None = None  # added to this process's environment

    def start(self) -> None:
        """Start (again)."""
        handle = self.log.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
            env={**os.environ, **self.env} if self.env else None,
        )
        handle.close()

    def kill(self, sig: int = signal.SIGTERM) -> None:
        """Signal the process and wait for it."""
        self.signal(sig)
        self.reap()

    def signal(self, sig: int = signal.SIGTERM) -> None:
        """Signal the process without waiting for it."""
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)

    def reap(self) -> None:
        """Wait for a signalled process (15 s, then SIGKILL)."""
        if self.popen is None:
            return
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def tail(self, lines: int = 40) -> str:
        """The end of the log, for failure messages."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def stop_all(processes: list[Process]) -> None:
    """Stop several processes at once: signal them all, then wait for each."""
    for process in processes:
        process.signal()
    for process in processes:
        process.reap()


@dataclass
class Release:
    """A namespace with podinfo installed, and handles on the processes serving it."""

    namespace: str
    api: client.ApiClient
    controller: Process
    emulator: Process
    router: str
    api_version: str = ""

    @property
    def custom(self) -> Any:
        return client.CustomObjectsApi(self.api)

    def rollout(self, name: str) -> dict[str, Any]:
        """The Rollout as stored."""
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "rollouts", name
        )
        return found

    def create(self, name: str, annotations: dict[str, str] | None = None, **spec: Any) -> None:
        """Release podinfo:<name> with optional pod annotations (behaviour for the emulator)."""
        release: dict[str, Any] = {"images": {"podinfo": f"ghcr.io/stefanprodan/podinfo:{name}"}}
        if annotations:
            release["templatePatch"] = {"metadata": {"annotations": annotations}}
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Rollout",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {
                "targetRef": {"kind": "Deployment", "name": "podinfo"},
                "release": release,
                "policyRef": {"name": "podinfo"},
                **spec,
            },
        }
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "rollouts", body
        )

    def wait(
        self, name: str, phases: set[str], timeout: float = 240, since: float | None = None
    ) -> dict[str, Any]:
        """Wait until the Rollout reaches one of ``phases``; fail with logs otherwise."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = self.rollout(name)
            if last.get("status", {}).get("phase") in phases:
                return last
            time.sleep(1)
        pytest.fail(
            f"{name} did not reach {sorted(phases)} in {timeout:.0f}s; status:\n"
            f"{last.get('status')}\n--- controller log\n{self.controller.tail()}"
            f"\n--- emulator log\n{self.emulator.tail(15)}",
            pytrace=False,
        )

    def api_url(self) -> str:
        """Where the controller's HTTP API listens: the port it logged when its API started."""
        started = [
            json.loads(line)
            for line in self.controller.log.read_text(errors="replace").splitlines()
            if '"api_started"' in line
        ]
        return f"http://127.0.0.1:{urllib.parse.urlsplit(started[-1]['url']).port}"

    def controller_metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """The controller's /metrics, parsed with prometheus_client's parser: every sample by
        (name, labels)."""
        with urllib.request.urlopen(f"{self.api_url()}/metrics", timeout=10) as reply:
            text = reply.read().decode()
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def annotate(self, name: str, key: str, value: str) -> None:
        """Set an annotation on the Rollout (how the CLI sends commands)."""
        patch = {"metadata": {"annotations": {key: value}}}
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "rollouts", name, patch
        )

    def canary_weight(self) -> int:
        """The live canary weight from the route object itself, read at the policy's version."""
        default = "split.smi-spec.io/v1alpha2" if self.router == "TrafficSplit" else V1_ROUTE
        group, version = (self.api_version or default).split("/")
        if self.router == "TrafficSplit":
            split = self.custom.get_namespaced_custom_object(
                group, version, self.namespace, "trafficsplits", "podinfo"
            )
            weights = {b["service"]: quantity(b["weight"]) for b in split["spec"]["backends"]}
        else:
            route = self.custom.get_namespaced_custom_object(
                group, version, self.namespace, "httproutes", "podinfo"
            )
            weights = {
                b["name"]: Fraction(b.get("weight", 1))
                for rule in route["spec"]["rules"]
                for b in rule["backendRefs"]
            }
        total = weights["podinfo-stable"] + weights["podinfo-canary"]
        return round(100 * weights["podinfo-canary"] / total) if total else 0

    def profile_overrides(self) -> dict[str, Fraction]:
        """The ServiceProfile ``dstOverrides`` Linkerd's smi adaptor wrote for the apex:
        backend Service → weight."""
        profile = self.custom.get_namespaced_custom_object(
            "linkerd.io", "v1alpha2", self.namespace, "serviceprofiles",
            f"podinfo.{self.namespace}.svc.cluster.local",
        )  # fmt: skip
        return {
            o["authority"].split(".")[0]: quantity(o["weight"])
            for o in profile["spec"].get("dstOverrides") or []
        }

    def deployment(self, name: str) -> Any:
        """A Deployment as stored (a client model)."""
        apps: Any = client.AppsV1Api(self.api)
        return apps.read_namespaced_deployment(name, self.namespace)


LOADGEN_IMAGE = "fortio/fortio:1.69.5"


def loadgen(rps: int) -> dict[str, Any]:
    """A real load generator for podinfo on a real mesh: fortio sending ``rps`` requests per
    second until it is deleted (with the emulator, the Service's ``sim.canary.dev/rps`` does)."""
    url = "http://podinfo:9898/"
    return {
        "metadata": {"name": "podinfo-loadgen"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "podinfo-loadgen"}},
            "template": {
                "metadata": {"labels": {"app": "podinfo-loadgen"}},
                "spec": {
                    "containers": [
                        {
                            "name": "fortio",
                            "image": LOADGEN_IMAGE,
                            "args": ["load", "-qps", str(rps), "-c", "4", "-t", "0", url],
                        }
                    ]
                },
            },
        },
    }


def install_podinfo(
    api: client.ApiClient,
    namespace: str,
    router: str,
    rps: int,
    api_version: str = "",
    *,
    traffic: str = "emulated",
) -> None:
    """The podinfo Deployment (4 replicas), its apex Service with load, and a fast policy; on a
    real mesh (``traffic="mesh"``) a real load generator too.

    False failure of a healthy release under this policy, computed: its canary is stable's
    template with a new image (0.1% errors, p99 100 ms, far inside the 98% floor and the 400 ms
    ceiling), so its chance of a false rollback is at most the policy's ``falseRollbackRate``,
    1e-4 (Ville's bound, docs/analysis.md); the default, 1e-2, would allow 1% per test. A 20%-
    error or 2 s-p99 canary still fails its first window: log(1e4) = 9.2 nats is a few of its
    failures.

    Nor is a healthy release held past the tests' 240 s wait. With the default ``holdAbove`` (1),
    one early canary failure at 0.1% errors holds a step until it could tell a 2× regression
    (tens of thousands of canary requests): on the twin, 10 of 1,000 such releases took longer
    than 240 s (up to 864 s; ``bench.twin`` with this policy, seeds 0–999). With ``holdAbove``
    1e4 a step holds only while a check's own e-value is above 1e4, which each of the six checks
    reaches under a healthy canary with probability at most 1e-4: at most 0.06% in all (the
    twin: 0 of 1,000 over 96 s). The tests here are about releases, not about holding."""
    apps: Any = client.AppsV1Api(api)
    core: Any = client.CoreV1Api(api)
    if traffic == "mesh":
        apps.create_namespaced_deployment(namespace, loadgen(rps))
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "podinfo"},
            "spec": {
                "replicas": 4,
                "strategy": {"rollingUpdate": {"maxSurge": "100%", "maxUnavailable": 0}},
                "selector": {"matchLabels": {"app": "podinfo"}},
                "template": {
                    "metadata": {
                        "labels": {"app": "podinfo"},
                        "annotations": {
                            "sim.canary.dev/error-rate": "0.001",
                            "sim.canary.dev/latency-p50-ms": "20",
                            "sim.canary.dev/latency-p99-ms": "100",
                        },
                    },
                    "spec": {
                        "containers": [
                            {"name": "podinfo", "image": "ghcr.io/stefanprodan/podinfo:6.0.0"}
                        ]
                    },
                },
            },
        },
    )
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "podinfo", "annotations": {"sim.canary.dev/rps": str(rps)}},
            "spec": {"selector": {"app": "podinfo"}, "ports": [{"name": "http", "port": 9898}]},
        },
    )
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "rolloutpolicies",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RolloutPolicy",
            "metadata": {"name": "podinfo"},
            "spec": {
                "service": {"name": "podinfo", "port": 9898},
                "traffic": {
                    "router": router,
                    **({"apiVersion": api_version} if api_version else {}),
                },
                "steps": [{"setWeight": 20}, {"setWeight": 50}, {"setWeight": 100}],
                "analysis": {
                    "interval": "2s",
                    "minRequestsPerStep": 60,
                    "successRate": {"min": 98},
                    "latency": {"percentile": 99, "maxMs": 400},
                    "compareWithStable": {"falseRollbackRate": 0.0001, "holdAbove": 10000},
                },
            },
        },
    )


AUDITED_LAST = "test_rbac_matches_what_the_controller_called.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The RBAC test reads the audit log of every e2e test before it: it runs last."""
    items.sort(key=lambda item: AUDITED_LAST in item.nodeid)


@pytest.fixture(scope="session")
def audit_offset(cluster: Cluster) -> int:
    """Where the API server's audit log stood before this session's controllers ran."""
    log = layout.DevDir(cluster.dev_dir).audit_log
    return log.stat().st_size if log.exists() else 0


@pytest.fixture(scope="session")
def controller_kubeconfig(
    cluster: Cluster,
    kube: client.ApiClient,
    tmp_path_factory: pytest.TempPathFactory,
    audit_offset: int,
) -> Path:
    """`deploy/` applied, and a kubeconfig of its ServiceAccount for the controller processes."""
    # Everything of deploy/ but the commands policy's binding: bound cluster-wide it would judge
    # the commands every other test of this shared cluster writes; its effect is tested in its
    # own namespace by tests/integration/test_approvals_are_decided_by_rbac.py.
    manifests = tmp_path_factory.mktemp("deploy") / "canary.yaml"
    documents = [
        doc
        for path in sorted(serviceaccount.DEPLOY.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc["kind"] != "ValidatingAdmissionPolicyBinding"
    ]
    manifests.write_text(yaml.safe_dump_all(documents))
    serviceaccount.install(cluster, manifests)
    path = accounts.token_kubeconfig(
        kube, "canary-system", "canary", tmp_path_factory.mktemp("sa") / "canary.kubeconfig"
    )
    with serviceaccount.client_for(path) as api:
        serviceaccount.wait_until_allowed(api, "default")
    return path


READ_ONLY = [
    "unshare", "--map-root-user", "--mount", "sh", "-c",
    # Every mount read-only (in a mount namespace of its own), a 16 MiB tmpfs on /tmp: the
    # chart's readOnlyRootFilesystem with its one emptyDir. Proven before the controller starts.
    'for m in $(findmnt -rn -o TARGET | sort -r); do mount -o remount,bind,ro "$m" 2>/dev/null; '
    "done; mount -t tmpfs -o size=16m tmpfs /tmp || exit 97; "
    'if touch "$0" 2>/dev/null; then echo "the filesystem is still writable"; exit 98; fi; '
    'cd /tmp && exec env HOME=/nonexistent PYTHONDONTWRITEBYTECODE=1 "$@"',
    str(REPO / ".dev" / "read-only.probe"),
]  # fmt: skip
"""Runs a command the way the chart runs the controller's container: with a read-only root
filesystem and writable /tmp only (the image sets PYTHONDONTWRITEBYTECODE too)."""


def self_contained(kubeconfig: Path, directory: Path) -> Path:
    """``kubeconfig`` with its CA inlined, written outside /tmp (which READ_ONLY hides)."""
    config = yaml.safe_load(kubeconfig.read_text())
    for entry in config["clusters"]:
        path = entry["cluster"].pop("certificate-authority", None)
        if path is not None:
            data = base64.b64encode(Path(path).read_bytes()).decode()
            entry["cluster"]["certificate-authority-data"] = data
    directory.mkdir(parents=True, exist_ok=True)
    written = directory / "controller.kubeconfig"
    written.write_text(yaml.safe_dump(config))
    written.chmod(0o600)
    return written


def start_processes(
    cluster: Cluster,
    controller_kubeconfig: Path,
    namespaces: list[str],
    log_dir: Path,
    controller_args: Sequence[str] = (),
    *,
    wrapper: Sequence[str] = (),
) -> tuple[Process, Process]:
    """Start a mesh emulator and a controller (as the chart's ServiceAccount) that both watch
    only ``namespaces``, logging into ``log_dir``; the caller kills them. On a real mesh the
    emulator is not started (real proxies serve the metrics). ``wrapper`` runs the controller
    (``READ_ONLY``: as the chart does, on a read-only filesystem)."""
    emulator = Process(
        "emulator",
        [
            sys.executable, "-m", "canary.emulator",
            "--kubeconfig", str(cluster.kubeconfig),
            "--targets-dir", str(cluster.targets_dir),
            "--targets-file", f"{namespaces[0]}.json",
            *(arg for ns in namespaces for arg in ("--namespace", ns)),
            "--port", "0",
            "--policy-grpc", cluster.policy_grpc,
        ],
        log_dir / "emulator.log",
    )  # fmt: skip
    controller = Process(
        "controller",
        [
            *wrapper,
            sys.executable, "-m", "canary", "run",
            "--kubeconfig", str(controller_kubeconfig),
            "--prometheus-url", cluster.prometheus_url,
            "--watch-namespace", ",".join(namespaces),
            "--tick", "2s",
            "--no-leader-elect",
            "--http-port", "0",
            *controller_args,
        ],
        log_dir / "controller.log",
    )  # fmt: skip
    for process in (emulator, controller) if cluster.traffic != "mesh" else (controller,):
        process.start()
    return emulator, controller


@pytest.fixture
def release_env(
    cluster: Cluster,
    kube: client.ApiClient,
    namespace: str,
    tmp_path: Path,
    controller_kubeconfig: Path,
) -> Iterator[Callable[..., Release]]:
    """Install podinfo in the test's namespace and start its emulator and controller."""
    started: list[Process] = []

    def make(
        router: str = "HTTPRoute",
        rps: int = 100,
        api_version: str = "",
        controller_args: Sequence[str] = (),
        read_only: bool = False,
    ) -> Release:
        install_podinfo(kube, namespace, router, rps, api_version, traffic=cluster.traffic)
        kubeconfig = controller_kubeconfig
        if read_only:
            kubeconfig = self_contained(controller_kubeconfig, cluster.dev_dir / namespace)
        emulator, controller = start_processes(
            cluster,
            kubeconfig,
            [namespace],
            tmp_path,
            controller_args,
            wrapper=READ_ONLY if read_only else (),
        )
        started.extend((emulator, controller))
        return Release(namespace, kube, controller, emulator, router, api_version)

    try:
        yield make
    finally:
        for process in reversed(started):
            process.kill()
