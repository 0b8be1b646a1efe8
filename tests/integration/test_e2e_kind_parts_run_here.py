"""`make e2e-kind` cannot run here (no Docker), so its parts that need none are checked here: the
script is shellcheck-clean, its test selection picks the releases a real mesh can judge and none
that are faulty only through the emulator, and the manifests it deploys (emojivoto, the fortio
load generator of the e2e tests in mesh mode) are accepted by a real API server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration.conftest import Cluster
from tests.integration.e2e.conftest import loadgen

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "hack" / "e2e-kind.sh"


def test_script_is_shellcheck_clean() -> None:
    """shellcheck (Debian's, from `make dev-system`) finds nothing in hack/e2e-kind.sh."""
    done = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_selection_is_what_a_real_mesh_can_judge() -> None:
    """The script's selection collects every healthy release of the router matrix (the one a
    custom metric rolls back included: real proxies count its requests too) and emojivoto's web
    release, and no release that is faulty only through sim annotations."""
    args = subprocess.run(
        ["bash", str(SCRIPT), "selection"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert collected.returncode == 0, collected.stdout + collected.stderr
    names = [line.split("::", 1)[1] for line in collected.stdout.splitlines() if "::" in line]
    assert sorted(names) == [
        "test_a_custom_metric_out_of_bounds_rolls_a_healthy_canary_back",
        "test_healthy_release_is_promoted[httproute-gateway-v1]",
        "test_healthy_release_is_promoted[httproute-gateway-v1beta1]",
        "test_healthy_release_is_promoted[httproute-linkerd-v1beta3]",
        "test_healthy_release_is_promoted[trafficsplit-v1alpha1]",
        "test_healthy_release_is_promoted[trafficsplit-v1alpha2]",
        "test_web_release_as_good_as_stable_is_promoted",
    ]


def test_manifests_are_accepted_by_the_api_server(
    cluster: Cluster, kube: client.ApiClient, namespace: str
) -> None:
    """A server-side dry run of emojivoto and its policies and releases, and of the e2e
    tests' fortio load generator, is accepted (schemas, CRDs, admission)."""
    example = REPO / "examples" / "emojivoto"
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    for path in [example / "namespace.yaml"] + [
        example / name
        for name in (
            "emojivoto.yaml",
            "policies.yaml",
            "release-web.yaml",
            "release-voting-faulty.yaml",
        )
    ]:
        scoped = [] if path.name == "namespace.yaml" else ["-n", namespace]
        done = subprocess.run(
            [str(cluster.kubectl), "apply", "--dry-run=server", *scoped, "-f", str(path)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"{path.name}: {done.stderr}"
    apps: Any = client.AppsV1Api(kube)
    created = apps.create_namespaced_deployment(namespace, loadgen(100), dry_run="All")
    assert created.spec.template.spec.containers[0].args[:3] == ["load", "-qps", "100"]
