"""Where the dev environment keeps its files, and the versions it pins.

Two places: the cache (`~/.cache/canary/`, outside the clone, shared by every clone and keyed by
version) holds built binaries and unpacked packages; the dev directory (`.dev/` in the clone)
holds one running environment: kubeconfig, env file, certificates, process records, logs, data.
This module only names paths; it creates nothing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
K8S_MODULE_DIR = PACKAGE_DIR / "k8s"
PROJECT_CRDS_DIR = REPO_ROOT / "crds"

KWOK_VERSION = "v0.8.0"
# The newest Gateway API release whose go.mod Go 1.26 accepts (v1.7.0 asks for Go 1.27); its
# standard channel serves HTTPRoute v1.
GATEWAY_API_VERSION = "v1.6.3"
# Helm, built with `go install` like kwok; the chart's tests and `make deploy` run it.
HELM_VERSION = "v3.22.0"
ETCD_PACKAGE = "etcd-server"
PROMETHEUS_PACKAGE = "prometheus"


def kubernetes_version() -> str:
    """The k8s.io/kubernetes release the wrapper module builds (its go.mod is the only record)."""
    text = (K8S_MODULE_DIR / "go.mod").read_text()
    match = re.search(r"^\s*(?:require\s+)?k8s\.io/kubernetes (v[0-9][^\s]*)", text, re.MULTILINE)
    if match is None:
        raise ValueError(f"{K8S_MODULE_DIR / 'go.mod'} does not require k8s.io/kubernetes")
    return match.group(1)


def cache_root() -> Path:
    """`$CANARY_CACHE_DIR`, else `$XDG_CACHE_HOME/canary`, else `~/.cache/canary`."""
    explicit = os.environ.get("CANARY_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "canary"


def default_dev_dir() -> Path:
    """`$CANARY_DEV_DIR`, else `.dev/` at the top of the clone."""
    explicit = os.environ.get("CANARY_DEV_DIR")
    return Path(explicit).resolve() if explicit else REPO_ROOT / ".dev"


@dataclass(frozen=True)
class DevDir:
    """The files of one dev environment, all under `root`."""

    root: Path

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def env_file(self) -> Path:
        return self.root / "env"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def prometheus_dir(self) -> Path:
        return self.root / "prometheus"

    @property
    def prometheus_data(self) -> Path:
        return self.prometheus_dir / "data"

    @property
    def prometheus_config(self) -> Path:
        return self.prometheus_dir / "prometheus.yml"

    @property
    def prometheus_query_log(self) -> Path:
        """Prometheus' log of every query it ran, with its own timings (JSON lines)."""
        return self.prometheus_dir / "queries.log"

    @property
    def targets_dir(self) -> Path:
        """File-discovery directory of the `linkerd-proxy` job (the mesh emulator fills it)."""
        return self.prometheus_dir / "targets"

    @property
    def audit_policy(self) -> Path:
        return self.root / "audit-policy.yaml"

    @property
    def audit_log(self) -> Path:
        """The API server's audit log: what ServiceAccounts did (see `components`)."""
        return self.logs / "audit.log"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"
