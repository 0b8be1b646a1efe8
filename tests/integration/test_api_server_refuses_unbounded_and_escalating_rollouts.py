"""The real API server, with the generated CRDs, refuses what the models refuse — unbounded
durations, counts and URLs, names too long to derive from, templatePatch fields outside the
allow-list — and `kubectl apply` names the field at fault."""

from __future__ import annotations

import copy
import json
import subprocess
from typing import Any

import pytest

from tests.integration.conftest import Cluster

pytestmark = pytest.mark.integration

ROLLOUT: dict[str, Any] = {
    "apiVersion": "canary.dev/v1alpha1",
    "kind": "Rollout",
    "metadata": {"name": "r"},
    "spec": {
        "targetRef": {"name": "podinfo"},
        "service": {"name": "podinfo", "port": 9898},
        "release": {"images": {"podinfo": "ghcr.io/stefanprodan/podinfo:6.1.0"}},
    },
}


def _kubectl(cluster: Cluster, namespace: str, *args: str) -> list[str]:
    return [str(cluster.kubectl), f"--kubeconfig={cluster.kubeconfig}", "-n", namespace, *args]


def _apply(cluster: Cluster, namespace: str, document: dict[str, Any]) -> tuple[int, str]:
    done = subprocess.run(
        _kubectl(cluster, namespace, "apply", "-f", "-"),
        input=json.dumps(document),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def _with(path: str, value: Any) -> dict[str, Any]:
    document = copy.deepcopy(ROLLOUT)
    *parents, last = path.split(".")
    node = document
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return document


LONG = "a" * 57
ESCALATING_PATCHES = {
    "serviceAccountName": {"spec": {"serviceAccountName": "cluster-admin"}},
    "hostPID": {"spec": {"hostPID": True}},
    "volumes": {"spec": {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}},
    "securityContext": {
        "spec": {"containers": [{"name": "podinfo", "securityContext": {"privileged": True}}]}
    },
    "valueFrom": {
        "spec": {
            "containers": [
                {
                    "name": "podinfo",
                    "env": [
                        {"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
                    ],
                }
            ]
        }
    },
}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            _with("spec.analysis", {"interval": "99999999999h"}),
            "spec.analysis.interval: Invalid value",
        ),
        (_with("spec.analysis", {"interval": "2h"}), "spec.analysis.interval: Invalid value"),
        (_with("spec.analysis", {"interval": "100ms"}), "must be at least 1s"),
        (
            _with("spec.steps", [{"setWeight": 5}, {"pause": {"duration": "721h"}}]),
            "must be at most 720h",
        ),
        (_with("spec.steps", [{"setWeight": 5}] * 101), "spec.steps: Too many"),
        (
            _with("spec.analysis", {"minRequestsPerStep": 10**12}),
            "spec.analysis.minRequestsPerStep: Invalid value",
        ),
        (
            _with("spec.notifications", [{"type": "webhook", "url": "https://u:p@x.example/h"}]),
            "spec.notifications[0].url: Invalid value",
        ),
        (
            _with("spec.notifications", [{"type": "webhook", "url": "file:///etc/passwd"}]),
            "spec.notifications[0].url: Invalid value",
        ),
        (_with("spec.service", {"name": LONG, "port": 80}), "spec.service: Invalid value"),
        (_with("spec.targetRef", {"name": LONG}), "spec.targetRef: Invalid value"),
        (_with("metadata.name", "r" * 64), "at most 63 characters"),
        (
            _with(
                "spec.release",
                {"templatePatch": {"metadata": {"annotations": {"linkerd.io/inject": "disabled"}}}},
            ),
            "spec.release.templatePatch.metadata.annotations: Invalid value",
        ),
        (
            _with(
                "spec.release",
                {"templatePatch": {"metadata": {"labels": {"config.linkerd.io/skip": "1"}}}},
            ),
            "spec.release.templatePatch.metadata.labels: Invalid value",
        ),
        *(
            (
                _with("spec.release", {"templatePatch": patch}),
                f'unknown field "spec.release.templatePatch.spec.{field}'
                if field in ("serviceAccountName", "hostPID", "volumes")
                else "unknown field",
            )
            for field, patch in ESCALATING_PATCHES.items()
        ),
    ],
    ids=[
        "overflowing-interval",
        "interval-above-1h",
        "interval-below-1s",
        "pause-above-720h",
        "101-steps",
        "huge-min-requests",
        "url-with-credentials",
        "file-url",
        "long-service",
        "long-target",
        "long-rollout-name",
        "linkerd-annotation",
        "linkerd-label",
        *ESCALATING_PATCHES,
    ],
)
def test_kubectl_apply_is_refused_at_the_field(
    cluster: Cluster, namespace: str, document: dict[str, Any], expected: str
) -> None:
    """kubectl apply fails, and the API server's message names the field."""
    code, output = _apply(cluster, namespace, document)
    assert code != 0, output
    assert expected in output


def test_an_allowed_release_patch_is_stored_as_sent(cluster: Cluster, namespace: str) -> None:
    """Image, env, args, resources (integer and string quantities), labels and annotations pass,
    and nothing is pruned."""
    patch = {
        "metadata": {"labels": {"team": "web"}, "annotations": {"sim.canary.dev/error-rate": "1"}},
        "spec": {
            "containers": [
                {
                    "name": "podinfo",
                    "image": "ghcr.io/stefanprodan/podinfo:6.1.1",
                    "env": [{"name": "LEVEL", "value": "debug"}],
                    "args": ["--level=debug"],
                    "resources": {"limits": {"cpu": 1, "memory": "128Mi"}},
                }
            ]
        },
    }
    document = _with("spec.release", {"templatePatch": patch})
    document["spec"]["analysis"] = {"interval": "1s"}
    document["spec"]["steps"] = [{"setWeight": 5}, {"pause": {"duration": "720h"}}]
    code, output = _apply(cluster, namespace, document)
    assert code == 0, output
    stored = subprocess.run(
        _kubectl(cluster, namespace, "get", "rollout", "r", "-o", "json"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(stored.stdout)["spec"]["release"]["templatePatch"] == patch
