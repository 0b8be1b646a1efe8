"""Linkerd's real control-plane pieces in the dev environment: the policy controller (it writes
HTTPRoute status, serves the proxies' OutboundPolicies API and Linkerd's admission webhook) and
the linkerd-smi adaptor (it turns TrafficSplits into ServiceProfile ``dstOverrides``).

Called by `tools` (to find the binaries and CRDs) and by `cluster` (bootstrap objects, command
lines, the webhook registration). It starts nothing itself.

The webhook is served over HTTPS on 127.0.0.1 with the dev CA's serving certificate (kubert's
``--server-*`` flags) and registered by ``url``, as Linkerd's chart registers it by Service: the
same kinds, the same namespace opt-out label, and its default ``failurePolicy: Ignore``.

Where the binaries come from, first match wins:
1. ``$CANARY_LINKERD_POLICY_CONTROLLER`` / ``$CANARY_LINKERD_SMI_ADAPTOR`` (each names one binary;
   ``$CANARY_LINKERD_DIR`` names a directory laid out as below);
2. ``../shared/linkerd/`` beside the clone (``bin/``, ``crds/``), as this project's CI has it;
3. a build from source into ``<cache>/linkerd-<commit>/`` (``tools``, from the commits named
   here).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devenv import layout
from devenv.errors import DevEnvError

LINKERD2_REPO = "https://github.com/linkerd/linkerd2"
LINKERD2_COMMIT = "b24cd405"
SMI_REPO = "https://github.com/linkerd/linkerd-smi"
SMI_COMMIT = "c0c39b1e"
SMI_SDK_MODULE = (
    "github.com/servicemeshinterface/smi-sdk-go@d4e76b1cd7a33ead5f38d1262dd838a31c80f4e5"
)

POLICY_CONTROLLER = "linkerd-policy-controller"
SMI_ADAPTOR = "linkerd-smi-adaptor"
ENV_VARS = {
    POLICY_CONTROLLER: "CANARY_LINKERD_POLICY_CONTROLLER",
    SMI_ADAPTOR: "CANARY_LINKERD_SMI_ADAPTOR",
}
SHARED_DIR = layout.REPO_ROOT.parent / "shared" / "linkerd"

CONTROL_PLANE_NS = "linkerd"
EGRESS_NS = "linkerd-egress"
DESTINATION = "linkerd-destination"
# The policy controller's Lease holder name: only the holder writes route status.
HOLDER = "linkerd-policy-dev"
CLUSTER_DOMAIN = "cluster.local"
# Covers the dev environment's Service and pod CIDRs (components.SERVICE_CIDR, POD_CIDR).
CLUSTER_NETWORKS = "10.0.0.0/8"


@dataclass(frozen=True)
class Linkerd:
    """The two binaries and the CRD files (Linkerd's and linkerd-smi's TrafficSplit)."""

    policy_controller: Path
    smi_adaptor: Path
    crds: Path


def find() -> Linkerd | None:
    """The Linkerd pieces from an environment variable or ``../shared/linkerd/``; None when
    they must be built (``tools`` does that)."""
    base = Path(os.environ.get("CANARY_LINKERD_DIR") or SHARED_DIR)
    found = {name: _binary(name, base) for name in (POLICY_CONTROLLER, SMI_ADAPTOR)}
    crds = base / "crds"
    policy, adaptor = found[POLICY_CONTROLLER], found[SMI_ADAPTOR]
    if policy is not None and adaptor is not None and crds.is_dir():
        return Linkerd(policy, adaptor, crds)
    return None


def _binary(name: str, base: Path) -> Path | None:
    explicit = os.environ.get(ENV_VARS[name])
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise DevEnvError(f"${ENV_VARS[name]}={explicit} is not an executable file")
        return path
    candidate = base / "bin" / name
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


def bootstrap() -> list[tuple[str, dict[str, Any]]]:
    """``(collection path, object)`` pairs the policy controller needs before it starts: its
    namespace, the egress namespace, and a Deployment ``linkerd-destination`` that it reads at
    start-up and makes the owner of its status-writer Lease (no replicas: nothing runs)."""
    labels = {"app": "linkerd-destination"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": DESTINATION, "namespace": CONTROL_PLANE_NS},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "destination", "image": "none.invalid/x:0"}]},
            },
        },
    }
    namespaces = [
        ("/api/v1/namespaces", {"metadata": {"name": name}})
        for name in (CONTROL_PLANE_NS, EGRESS_NS)
    ]
    return [
        *namespaces,
        (f"/apis/apps/v1/namespaces/{CONTROL_PLANE_NS}/deployments", deployment),
    ]


@dataclass(frozen=True)
class PolicyPorts:
    admin: int
    grpc: int
    admission: int


def policy_controller(
    binary: Path, kubeconfig: Path, ports: PolicyPorts, cert: Path, key: Path
) -> list[str]:
    """The policy controller's command line; `cert` and `key` (PEM) serve the webhook."""
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--admin-addr=127.0.0.1:{ports.admin}",
        f"--grpc-addr=127.0.0.1:{ports.grpc}",
        f"--server-addr=127.0.0.1:{ports.admission}",
        f"--server-tls-certs={cert}",
        f"--server-tls-key={key}",
        f"--control-plane-namespace={CONTROL_PLANE_NS}",
        f"--policy-deployment-name={DESTINATION}",
        f"--cluster-networks={CLUSTER_NETWORKS}",
        f"--identity-domain={CLUSTER_DOMAIN}",
        f"--cluster-domain={CLUSTER_DOMAIN}",
        "--default-policy=all-unauthenticated",
        "--default-opaque-ports=25,587,3306,5432",
        f"--global-egress-network-namespace={EGRESS_NS}",
        "--log-level=info",
        "--log-format=plain",
    ]


# What Linkerd's chart sends to the policy validator (CREATE and UPDATE; not `/status`).
WEBHOOK_RESOURCES = {
    "policy.linkerd.io": [
        "authorizationpolicies",
        "egressnetworks",
        "httplocalratelimitpolicies",
        "httproutes",
        "meshtlsauthentications",
        "networkauthentications",
        "serverauthorizations",
        "servers",
    ],
    "gateway.networking.k8s.io": ["grpcroutes", "httproutes", "tcproutes", "tlsroutes"],
}
WEBHOOK_OPT_OUT_LABEL = "config.linkerd.io/admission-webhooks"


def policy_webhook(admission_port: int, ca_pem: bytes) -> dict[str, Any]:
    """The ValidatingWebhookConfiguration that sends policy and route writes to the policy
    controller on 127.0.0.1, trusting `ca_pem`."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "linkerd-policy-validator-webhook-config"},
        "webhooks": [
            {
                "name": "linkerd-policy-validator.linkerd.io",
                "clientConfig": {
                    "url": f"https://127.0.0.1:{admission_port}/",
                    "caBundle": base64.b64encode(ca_pem).decode(),
                },
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": WEBHOOK_OPT_OUT_LABEL, "operator": "NotIn", "values": ["disabled"]}
                    ]
                },
                "rules": [
                    {
                        "operations": ["CREATE", "UPDATE"],
                        "apiGroups": [group],
                        "apiVersions": ["*"],
                        "resources": resources,
                    }
                    for group, resources in WEBHOOK_RESOURCES.items()
                ],
                # Linkerd's chart default: writes go through when the controller is down.
                "failurePolicy": "Ignore",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 5,
            }
        ],
    }


def smi_adaptor(binary: Path, kubeconfig: Path, metrics_port: int) -> list[str]:
    """The linkerd-smi adaptor's command line (Go flags take one dash)."""
    return [
        str(binary),
        f"-kubeconfig={kubeconfig}",
        f"-cluster-domain={CLUSTER_DOMAIN}",
        f"-metrics-addr=127.0.0.1:{metrics_port}",
        "-worker-threads=2",
    ]
