"""Command lines of the control-plane components, and the fake Nodes kwok plays the kubelet for.

Called by `cluster` when it starts each process. Pure: it builds lists of flags from the toolset,
the certificates, the chosen ports and the dev directory, and starts nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devenv import layout, linkerd, pki, tools

SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
FAKE_NODES = ("kwok-node-0", "kwok-node-1")

# Extra environment variables per component.
ENVIRONMENT: dict[str, dict[str, str]] = {
    # Debian's etcd 3.4.23 predates watch-progress requests, so the API server refuses streaming
    # lists. kwok's client-go asks for one on every (re)list and backs off after each refusal,
    # which left pods Pending for 10-40 s; plain LIST+WATCH makes them Ready in about a second.
    "kwok": {"KUBE_FEATURE_WatchListClient": "false"},
    # The policy controller's Lease holder identity (only the holder writes route status).
    "linkerd-policy-controller": {"HOSTNAME": linkerd.HOLDER},
}


# The API server records, at Metadata level (who, verb, resource, namespace, name, response
# code; no bodies), every request of a ServiceAccount outside kube-system: the tests derive the
# controller's least-privilege RBAC from what its ServiceAccount actually called.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
  - level: None
    userGroups: ["system:serviceaccounts:kube-system"]
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
"""


@dataclass(frozen=True)
class Setup:
    """Everything the command lines depend on."""

    toolset: tools.Toolset
    keys: pki.Pki
    ports: dict[str, int]
    dev: layout.DevDir

    def kubeconfig(self, user: str) -> Path:
        """The kubeconfig of a component (`admin` is the developer's `.dev/kubeconfig`)."""
        return self.dev.kubeconfig if user == "admin" else self.dev.pki / f"{user}.kubeconfig"

    def identity(self, user: str) -> pki.KeyPair:
        return {
            "admin": self.keys.admin,
            "kube-controller-manager": self.keys.controller_manager,
            "kube-scheduler": self.keys.scheduler,
            "kwok": self.keys.kwok,
        }[user]


USERS = ("admin", "kube-controller-manager", "kube-scheduler", "kwok")


def etcd(setup: Setup) -> list[str]:
    client = f"http://127.0.0.1:{setup.ports['etcd']}"
    peer = f"http://127.0.0.1:{setup.ports['etcd-peer']}"
    return [
        str(setup.toolset.etcd),
        "--name=dev",
        f"--data-dir={setup.dev.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=dev={peer}",
        "--logger=zap",
        "--log-level=warn",
        # The API server's watch cache only advances on events or on etcd's progress
        # notifications; without them a watch from a fresh list's resourceVersion on a quiet
        # resource fails with "Too large resource version" (etcd 3.4 defaults to 10m).
        "--experimental-watch-progress-notify-interval=1s",
    ]


def kube_apiserver(setup: Setup) -> list[str]:
    keys = setup.keys
    return [
        str(setup.toolset.kube_apiserver),
        f"--etcd-servers=http://127.0.0.1:{setup.ports['etcd']}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={setup.ports['kube-apiserver']}",
        f"--tls-cert-file={keys.serving.cert}",
        f"--tls-private-key-file={keys.serving.key}",
        f"--client-ca-file={keys.ca.cert}",
        # No aggregated API servers run here, but the controller manager and scheduler
        # read this CA from kube-system/extension-apiserver-authentication.
        f"--requestheader-client-ca-file={keys.ca.cert}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--authorization-mode=Node,RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={keys.service_account_pub}",
        f"--service-account-signing-key-file={keys.service_account_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # The built-in endpoint reconciler would publish 127.0.0.1 as the endpoint of the
        # `kubernetes` Service, which the API rejects (loopback); nothing here needs it.
        "--endpoint-reconciler-type=none",
        "--allow-privileged=true",
        "--profiling=false",
        # etcd 3.4 cannot serve watch-list streams (no RequestWatchProgress), so every client's
        # streaming list failed and kwok's Lease renewals kept conflicting: Nodes, and for good
        # every pod on them, went NotReady a few minutes in. Plain list+watch works.
        "--feature-gates=WatchList=false",
        f"--audit-policy-file={setup.dev.audit_policy}",
        f"--audit-log-path={setup.dev.audit_log}",
        "--audit-log-format=json",
        "--audit-log-mode=blocking",
    ]


KCM_API_QPS = 200
"""kube-controller-manager's requests a second to the API server (its default is 20, burst 30).
At 1000 Rollouts its controllers waited on that limit: 201 s in all for its first 1,083 POSTs
while the scale benchmark set up its apps, 0.12 s for 14,395 at 200. It was not the only reason
good canaries missed the 10-minute progress deadline ("canary not ready": 204 in run N of
docs/benchmarks.md, 141 in run N3 with this limit)."""
KCM_SYNCS = 25
"""Workers of kube-controller-manager's Deployment and ReplicaSet controllers (default 5 each).
At 1000 Rollouts (run P of docs/benchmarks.md, 5 each) both were busy the whole run (0.45 s and
0.31 s a sync, waiting on an API server at ~200 ms a request): a Deployment change waited 75 s
in the queue on average, over 10 s for 35% of them, and the late canaries' pods were created
about 7 minutes after their Rollouts."""


def kube_controller_manager(setup: Setup) -> list[str]:
    keys = setup.keys
    return [
        str(setup.toolset.kube_controller_manager),
        *_component_flags(setup, "kube-controller-manager"),
        # Each controller acts with its own ServiceAccount's RBAC rights, as in kubeadm.
        "--use-service-account-credentials=true",
        f"--kube-api-qps={KCM_API_QPS}",
        f"--kube-api-burst={2 * KCM_API_QPS}",
        f"--concurrent-deployment-syncs={KCM_SYNCS}",
        f"--concurrent-replicaset-syncs={KCM_SYNCS}",
        f"--service-account-private-key-file={keys.service_account_key}",
        f"--root-ca-file={keys.ca.cert}",
        f"--cluster-signing-cert-file={keys.ca.cert}",
        f"--cluster-signing-key-file={keys.ca.key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--cluster-name=canary-dev",
        "--controllers=*",
        # kwok's fake Nodes have no kubelet: if a Node heartbeat is ever late the node lifecycle
        # controller marks every pod on it NotReady, and nothing marks them Ready again.
        "--node-monitor-grace-period=24h",
    ]


def kube_scheduler(setup: Setup) -> list[str]:
    return [str(setup.toolset.kube_scheduler), *_component_flags(setup, "kube-scheduler")]


def kwok(setup: Setup) -> list[str]:
    # Naming the stage files also keeps kwok from reading a ~/.kwok/kwok.yaml.
    stages = sorted(setup.toolset.kwok_stages.glob("*.yaml"))
    return [
        str(setup.toolset.kwok),
        f"--kubeconfig={setup.kubeconfig('kwok')}",
        *(f"--config={stage}" for stage in stages),
        "--manage-all-nodes=true",
        # The heartbeat stage only renews node status every ~10 min and counts on Leases for
        # liveness: without them the node controller marks Nodes (and pods) NotReady at ~40 s.
        "--node-lease-duration-seconds=40",
        f"--cidr={POD_CIDR}",
        "--node-ip=10.240.0.1",
        f"--server-address=127.0.0.1:{setup.ports['kwok']}",
    ]


def _component_flags(setup: Setup, name: str) -> list[str]:
    """Flags kube-controller-manager and kube-scheduler share."""
    kubeconfig = setup.kubeconfig(name)
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={setup.ports[name]}",
        f"--tls-cert-file={setup.keys.serving.cert}",
        f"--tls-private-key-file={setup.keys.serving.key}",
        # One instance of each: waiting for a leader lease would only slow the start.
        "--leader-elect=false",
    ]


def node(name: str) -> dict[str, Any]:
    """A Node that kwok manages: plenty of room, so scheduling never depends on capacity.
    Pods: 2,500 each (the scale benchmark's N = 1000 runs 1,000 stable and up to 1,000 canary
    pods; at 250 a node, half of them stayed Pending and held their Rollouts in Initializing)."""
    resources = {"cpu": "32", "memory": "256Gi", "pods": "2500"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
            "annotations": {"kwok.x-k8s.io/node": "fake"},
        },
        "status": {"allocatable": resources, "capacity": resources},
    }
