"""Fixtures that give integration tests a real, ready local control plane.

`cluster` (session): with ``CANARY_E2E_KUBECONFIG`` set, a cluster of one's own with real
Linkerd (``make e2e-kind``: its Prometheus at ``CANARY_E2E_PROMETHEUS_URL``, traffic from real
proxies and load generators, so no emulator is started); otherwise it reuses the developer's
running dev environment (`make dev-up`, in `.dev/`) when there is one, or starts its own in
`.dev/pytest/` and stops it when the session ends, whatever the tests did. It drives
`python -m devenv` in a subprocess, so the components are never children of the test process.
`kube` (session) is a `kubernetes` API client for the dev admin; `namespace` (function) is a
fresh namespace, deleted after the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

from devenv import layout

_REPO_ROOT = Path(__file__).resolve().parents[2]


def _devenv(dev_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devenv", f"--dir={dev_dir}", *args],
        cwd=_REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def _read_env(env_file: Path) -> dict[str, str]:
    lines = env_file.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


@dataclass(frozen=True)
class Cluster:
    """A running dev environment, as the tests see it."""

    dev_dir: Path
    kubeconfig: Path
    prometheus_url: str
    targets_dir: Path
    kubectl: Path
    owned: bool  # started by this test session (and so stopped by it)
    policy_grpc: str = ""  # host:port of Linkerd's policy controller gRPC API
    traffic: str = "emulated"  # or "mesh": real Linkerd proxies and real load generators

    def stop_prometheus(self) -> None:
        """Stops Prometheus; its URL refuses connections until `start_prometheus`."""
        self._run("stop", "prometheus")

    def start_prometheus(self) -> None:
        """Starts Prometheus again on the same port with the same data; returns once ready."""
        self._run("start", "prometheus")

    def stop(self, component: str) -> None:
        """Stops one component (`kube-apiserver`, `prometheus`, …) keeping its data and port."""
        self._run("stop", component)

    def start(self, component: str) -> None:
        """Starts a stopped component again; returns once the API server or Prometheus is
        ready."""
        self._run("start", component)

    def revive(self) -> None:
        """Starts again every component that exited (as a kubelet would)."""
        self._run("revive")

    def api_client(self) -> client.ApiClient:
        """A new API client for the dev admin (close it when done)."""
        api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig)
        )
        return api

    def _run(self, *args: str) -> None:
        result = _devenv(self.dev_dir, *args)
        if result.returncode != 0:
            raise RuntimeError(f"devenv {' '.join(args)} failed:\n{result.stdout}{result.stderr}")


def _cluster_from(dev_dir: Path, owned: bool) -> Cluster:
    env = _read_env(layout.DevDir(dev_dir).env_file)
    return Cluster(
        dev_dir=dev_dir,
        kubeconfig=Path(env["KUBECONFIG"]),
        prometheus_url=env["PROMETHEUS_URL"],
        targets_dir=Path(env["PROMETHEUS_TARGETS_DIR"]),
        kubectl=Path(env["KUBECTL"]),
        owned=owned,
        policy_grpc=env.get("LINKERD_POLICY_GRPC", ""),
    )


E2E_KUBECONFIG = "CANARY_E2E_KUBECONFIG"
E2E_PROMETHEUS_URL = "CANARY_E2E_PROMETHEUS_URL"


def _cluster_from_environment(kubeconfig: str) -> Cluster:
    kubectl = shutil.which("kubectl")
    if not kubectl or E2E_PROMETHEUS_URL not in os.environ:
        pytest.fail(
            f"{E2E_KUBECONFIG} needs kubectl on PATH and {E2E_PROMETHEUS_URL} "
            "(the mesh's Prometheus, e.g. a port-forward of linkerd-viz's)",
            pytrace=False,
        )
    return Cluster(
        dev_dir=layout.default_dev_dir() / "e2e",
        kubeconfig=Path(kubeconfig),
        prometheus_url=os.environ[E2E_PROMETHEUS_URL],
        targets_dir=Path(),
        kubectl=Path(kubectl),
        owned=False,
        traffic="mesh",
    )


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """A ready control plane: the cluster the environment names, the running dev environment,
    or one started for this session."""
    if kubeconfig := os.environ.get(E2E_KUBECONFIG):
        yield _cluster_from_environment(kubeconfig)
        return
    shared = layout.default_dev_dir()
    if _devenv(shared, "status").returncode == 0:
        yield _cluster_from(shared, owned=False)
        return
    own = Path(os.environ.get("CANARY_TEST_DEV_DIR", shared / "pytest"))
    try:
        started = _devenv(own, "up")
        if started.returncode != 0:
            pytest.fail(
                f"could not start the dev environment:\n{started.stdout}{started.stderr}",
                pytrace=False,
            )
        yield _cluster_from(own, owned=True)
    finally:
        _devenv(own, "down")


@pytest.fixture(scope="session")
def kube(cluster: Cluster) -> Iterator[client.ApiClient]:
    """An API client for the dev admin, shared by the session."""
    api = cluster.api_client()
    try:
        yield api
    finally:
        api.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def namespace(kube: client.ApiClient) -> Iterator[str]:
    """A fresh, uniquely named namespace, deleted (without waiting) after the test."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name)
