"""The controller as the chart's ServiceAccount, as it runs in a real install.

`install(cluster, *paths)` applies manifests (`deploy/` is the chart rendered with its default
values) with kubectl, as a new user would; ``bench.accounts.token_kubeconfig`` (shared with the
scale harness) writes a kubeconfig that
authenticates with a TokenRequest token of a ServiceAccount, so a `canary run` started with it
has exactly the rights the chart's RBAC grants, not the dev admin's.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import yaml
from kubernetes import client

from devenv import tools
from tests.integration.conftest import Cluster

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def install(cluster: Cluster, *paths: Path) -> None:
    """`kubectl apply --server-side` of the manifests (idempotent on a reused cluster)."""
    argv = [str(cluster.kubectl), "--kubeconfig", str(cluster.kubeconfig), "apply"]
    argv += ["--server-side", "--force-conflicts"]
    for path in paths:
        argv += ["-f", str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"kubectl apply failed:\n{done.stdout}{done.stderr}"


def client_for(kubeconfig: Path) -> client.ApiClient:
    """An API client authenticated by a kubeconfig written by `token_kubeconfig`."""
    config = yaml.safe_load(kubeconfig.read_text())
    configuration = client.Configuration()
    configuration.host = config["clusters"][0]["cluster"]["server"]
    configuration.ssl_ca_cert = config["clusters"][0]["cluster"]["certificate-authority"]
    configuration.api_key = {"authorization": config["users"][0]["user"]["token"]}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(configuration)


def wait_until_allowed(api: client.ApiClient, namespace: str, timeout: float = 10) -> None:
    """Returns once the account may list Rollouts in `namespace`: a new binding reaches the
    authorizer's cache within moments."""
    custom = client.CustomObjectsApi(api)
    deadline = time.monotonic() + timeout
    while True:
        try:
            custom.list_namespaced_custom_object("canary.dev", "v1alpha1", namespace, "rollouts")
            return
        except client.ApiException as error:
            if error.status != 403 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def helm_binary() -> Path:
    """The cached helm (`make dev-tools` builds it; built here if the cache lacks it)."""
    return tools.helm(lambda _: None)


def helm(cluster: Cluster, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Runs helm against the dev cluster as the admin, its state under ``home``."""
    env = {
        **os.environ,
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    argv = [str(helm_binary()), "--kubeconfig", str(cluster.kubeconfig), *args]
    return subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
