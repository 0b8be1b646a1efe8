"""deploy/canary.yaml (the chart rendered with its default values): the objects of an install
fit together, run restricted and highly available, and RBAC never grants more than names allow
(which rules the controller needs is derived from the audit log by the e2e suite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _objects() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def test_every_object_of_an_install_is_there() -> None:
    """Namespace, account, cluster RBAC, Lease role, Deployment, Service, PDB, NetworkPolicy;
    the commands admission policy and the approver and operator roles people are bound to."""
    assert set(_objects()) == {
        ("Namespace", "canary-system"),
        ("ServiceAccount", "canary"),
        ("ClusterRole", "canary"),
        ("ClusterRoleBinding", "canary"),
        ("ClusterRole", "canary-api-auth"),
        ("ClusterRoleBinding", "canary-api-auth"),
        ("Role", "canary-leader-election"),
        ("RoleBinding", "canary-leader-election"),
        ("Deployment", "canary"),
        ("Service", "canary"),
        ("ValidatingAdmissionPolicy", "canary-commands"),
        ("ValidatingAdmissionPolicyBinding", "canary-commands"),
        ("ClusterRole", "canary-approver"),
        ("ClusterRole", "canary-operator"),
        ("PodDisruptionBudget", "canary"),
        ("NetworkPolicy", "canary"),
        ("ConfigMap", "canary-grafana-dashboard"),
    }
    cluster_scoped = (
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    )
    for (kind, _), obj in _objects().items():
        if kind not in cluster_scoped:
            assert obj["metadata"]["namespace"] == "canary-system"


def test_the_pieces_refer_to_each_other() -> None:
    """The bindings tie the roles to the pod's account; Service, PDB and policy select the pod."""
    objects = _objects()
    account = {"kind": "ServiceAccount", "name": "canary", "namespace": "canary-system"}
    for kind, name, role in [
        ("ClusterRoleBinding", "canary", ("ClusterRole", "canary")),
        ("RoleBinding", "canary-leader-election", ("Role", "canary-leader-election")),
    ]:
        binding = objects[(kind, name)]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": role[0],
            "name": role[1],
        }
        assert binding["subjects"] == [account]
    deployment = objects[("Deployment", "canary")]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert pod["spec"]["serviceAccountName"] == "canary"
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = objects[("Service", "canary")]
    assert service["spec"]["selector"].items() <= labels.items()
    pdb = objects[("PodDisruptionBudget", "canary")]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    policy = objects[("NetworkPolicy", "canary")]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    (container,) = pod["spec"]["containers"]
    assert container["args"][0] == "run"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    assert policy["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": "http"}]}]


def test_two_replicas_elect_a_leader_and_survive_a_drain() -> None:
    """2 replicas, leader election on (the Lease in the pod's namespace), PDB keeps one up."""
    objects = _objects()
    deployment = objects[("Deployment", "canary")]
    assert deployment["spec"]["replicas"] == 2
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "--no-leader-elect" not in container["args"]
    env = {e["name"]: e.get("valueFrom") for e in container["env"]}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert objects[("PodDisruptionBudget", "canary")]["spec"]["minAvailable"] == 1


def test_the_pod_meets_the_restricted_pod_security_standard() -> None:
    """Non-root, no privilege escalation, all capabilities dropped, RuntimeDefault seccomp,
    read-only root filesystem, requests and a memory limit."""
    pod = _objects()[("Deployment", "canary")]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert "memory" in container["resources"]["limits"]
    namespace = _objects()[("Namespace", "canary-system")]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def _rules(kind: str, name: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = _objects()[(kind, name)]["rules"]
    return rules


def test_no_rule_is_a_wildcard_or_deletes() -> None:
    """No '*', no delete/deletecollection (but of old finished Rollouts and of the canary's own
    autoscaler when the canary is scaled to zero), no list/watch of Secrets, no RBAC or pods
    access."""
    for rule in _rules("ClusterRole", "canary") + _rules("Role", "canary-leader-election"):
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
        # Retention; the canary's autoscaler, which would scale a canary at zero back up.
        deletes = (
            {"delete"}
            if rule["resources"] in (["rollouts"], ["horizontalpodautoscalers"])
            else set()
        )
        assert not {
            "delete",
            "deletecollection",
            "escalate",
            "bind",
            "impersonate",
        } - deletes & set(rule["verbs"]), rule
        assert not {"pods", "roles", "clusterroles", "rolebindings"} & set(rule["resources"])


def test_secrets_and_the_lease_are_granted_only_by_name() -> None:
    """Secrets: get, only the notification Secrets named in values; Lease: create, and
    get/update of the controller's own Lease only."""
    secrets = [r for r in _rules("ClusterRole", "canary") if "secrets" in r["resources"]]
    assert secrets == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["canary-notifications"],
            "verbs": ["get"],
        }
    ]
    assert _rules("Role", "canary-leader-election") == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["canary-controller"],
            "verbs": ["get", "update"],
        },
    ]
    assert not any("leases" in r["resources"] for r in _rules("ClusterRole", "canary"))
