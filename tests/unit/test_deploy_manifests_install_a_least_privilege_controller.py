"""deploy/*.yaml: the objects an install creates fit together, and RBAC grants only what the
controller uses (checked against a real API server by the integration tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _objects() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def test_every_object_of_an_install_is_there() -> None:
    """Namespace, ServiceAccount, ClusterRole(+Binding), Deployment and Service, named canary."""
    assert set(_objects()) == {
        ("Namespace", "canary-system"),
        ("ServiceAccount", "canary"),
        ("ClusterRole", "canary"),
        ("ClusterRoleBinding", "canary"),
        ("Deployment", "canary"),
        ("Service", "canary"),
    }
    for (kind, _), obj in _objects().items():
        if kind not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == "canary-system"


def test_the_pieces_refer_to_each_other() -> None:
    """The binding ties the role to the account the pod runs as; the Service selects the pod."""
    objects = _objects()
    binding = objects[("ClusterRoleBinding", "canary")]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "canary",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "canary", "namespace": "canary-system"}
    ]
    deployment = objects[("Deployment", "canary")]
    pod = deployment["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == "canary"
    assert (
        deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    )
    service = objects[("Service", "canary")]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    assert container["args"][0] == "run"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]


def test_rbac_grants_exactly_what_the_controller_uses() -> None:
    """Each (group, resource) gets exactly the verbs the controller needs; nothing else."""
    role = _objects()[("ClusterRole", "canary")]
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    watch = {"get", "list", "watch"}
    assert granted == {
        ("canary.dev", "rollouts"): watch | {"patch"},
        ("canary.dev", "rolloutpolicies"): watch,
        ("canary.dev", "rollouts/status"): {"update", "patch"},
        ("apps", "deployments"): watch | {"create", "patch", "update"},
        ("", "services"): watch | {"create", "patch"},
        ("gateway.networking.k8s.io", "httproutes"): watch | {"create", "patch"},
        ("policy.linkerd.io", "httproutes"): watch | {"create", "patch"},
        ("split.smi-spec.io", "trafficsplits"): watch | {"create", "patch"},
        ("", "events"): {"create", "patch"},
        ("", "secrets"): {"get"},
        ("coordination.k8s.io", "leases"): {"get", "create", "update"},
        ("authentication.k8s.io", "tokenreviews"): {"create"},
        ("authorization.k8s.io", "subjectaccessreviews"): {"create"},
    }
