"""A namespaced install (helm, `watchNamespaces: [the app's namespace]`) runs releases as its
own ServiceAccount with leader election on: a healthy release is promoted and a faulty one
rolled back, and the notification webhook is read from the one Secret the chart names."""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from bench import accounts
from canary.adapters.kube.client import whoami
from canary.core import commands
from canary.core.vocabulary import Command, CommandKind
from devenv import manifests
from tests.integration import serviceaccount
from tests.integration.conftest import Cluster
from tests.integration.e2e.conftest import GROUP, VERSION, Process, Release, install_podinfo
from tests.local_http import local_address

pytestmark = pytest.mark.integration


class _Hooks(ThreadingHTTPServer):
    received: list[dict[str, Any]]


class _Hook(BaseHTTPRequestHandler):
    server: _Hooks

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        """Quiet."""


@pytest.fixture
def webhook() -> Iterator[_Hooks]:
    """A webhook receiver on this machine's non-loopback address (the controller never calls
    loopback; the test allows this address as an operator allows a private receiver)."""
    server = _Hooks((local_address(), 0), _Hook)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _command(kind: CommandKind, actor: str) -> str:
    """The annotation value of a command, in the canonical form the commands policy admits."""
    return commands.encode(Command(kind, datetime.now(UTC), actor))[commands.key(kind)]


def test_namespaced_install_promotes_and_rolls_back(
    cluster: Cluster,
    kube: client.ApiClient,
    namespace: str,
    tmp_path: Path,
    webhook: _Hooks,
) -> None:
    """Installed for one namespace; as its account: 6.1.0 waits for approval to start, then
    Succeeded; 6.2.0 (20% errors) RolledBack; 6.3.0 aborted at its pause, Aborted; the Lease
    held in the install's namespace, the webhook told of the promotion and the rollback."""
    core = client.CoreV1Api(kube)
    home = f"canary-ns-{uuid.uuid4().hex[:6]}"
    release = f"canary-{home[-6:]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=home)))
    helm_home = tmp_path / "helm"
    started: list[Process] = []
    try:
        # A release name of its own: its cluster-scoped objects (the API-auth and approver
        # roles, the commands policy) must not collide with deploy/'s, installed in this cluster.
        done = serviceaccount.helm(
            cluster, "install", release, str(manifests.CHART), "-n", home,
            "--set", f"watchNamespaces={{{namespace}}}", "--set", "serviceAccount.name=canary",
            home=helm_home,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        config = accounts.token_kubeconfig(kube, home, "canary", tmp_path / "sa.kubeconfig")
        with serviceaccount.client_for(config) as api:
            serviceaccount.wait_until_allowed(api, namespace)
        install_podinfo(kube, namespace, "HTTPRoute", 100)
        address, port = str(webhook.server_address[0]), int(webhook.server_address[1])
        url = f"http://{address}:{port}/hook"
        core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="canary-notifications"),
                string_data={"url": url},
            ),
        )
        client.CustomObjectsApi(kube).patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "rolloutpolicies", "podinfo",
            {"spec": {"notifications": [
                {"type": "webhook", "urlFrom": {"name": "canary-notifications", "key": "url"}}
            ]}},
        )  # fmt: skip
        emulator = Process(
            "emulator",
            [
                sys.executable, "-m", "canary.emulator",
                "--kubeconfig", str(cluster.kubeconfig),
                "--targets-dir", str(cluster.targets_dir),
                "--targets-file", f"{namespace}.json",
                "--namespace", namespace,
                "--port", "0",
            ],
            tmp_path / "emulator.log",
        )  # fmt: skip
        controller = Process(
            "controller",
            [
                sys.executable, "-m", "canary", "run",
                "--kubeconfig", str(config),
                "--prometheus-url", cluster.prometheus_url,
                "--watch-namespace", namespace,
                "--lease-namespace", home,
                "--tick", "2s",
                "--http-port", "0",
                "--outbound-allow", f"{address}/32",
            ],
            tmp_path / "controller.log",
        )  # fmt: skip
        for process in (emulator, controller):
            process.start()
            started.append(process)
        env = Release(namespace, kube, controller, emulator, "HTTPRoute")

        env.create("6.1.0", approvals={"beforeStart": True})
        waiting = env.wait("6.1.0", {"WaitingApproval", "RolledBack", "Failed"})
        assert waiting["status"]["phase"] == "WaitingApproval", waiting["status"]
        person = whoami(kube)  # the actor any commands admission policy would require
        env.annotate("6.1.0", "canary.dev/approve", _command("approve", person))
        promoted = env.wait("6.1.0", {"Succeeded", "RolledBack", "Failed"})
        assert promoted["status"]["phase"] == "Succeeded", promoted["status"]
        approvals = promoted["status"]["approvals"]
        assert [(a["gate"], a["decision"], a["actor"]) for a in approvals] == [
            ("beforeStart", "Approved", person)
        ]
        env.create("6.2.0", {"sim.canary.dev/error-rate": "0.2"})
        rolled_back = env.wait("6.2.0", {"Succeeded", "RolledBack", "Failed"})
        assert rolled_back["status"]["phase"] == "RolledBack", rolled_back["status"]
        stable = env.deployment("podinfo")
        assert stable.spec.template.spec.containers[0].image.endswith(":6.1.0")
        assert env.canary_weight() == 0
        env.create("6.3.0", steps=[{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}])
        env.wait("6.3.0", {"WaitingApproval"})
        assert env.canary_weight() == 20
        env.annotate("6.3.0", "canary.dev/abort", _command("abort", person))
        aborted = env.wait("6.3.0", {"Aborted", "RolledBack", "Failed", "Succeeded"})
        assert aborted["status"]["phase"] == "Aborted", aborted["status"]
        assert env.canary_weight() == 0
        assert env.deployment("podinfo-canary").spec.replicas == 0
        stable = env.deployment("podinfo")
        assert stable.spec.template.spec.containers[0].image.endswith(":6.1.0")

        leases: Any = client.CoordinationV1Api(kube)
        assert leases.read_namespaced_lease("canary-controller", home).spec.holder_identity
        # Notifications leave from the outbox after the status is written: allow them a moment.
        wanted = {("6.1.0", "Promoted"), ("6.2.0", "RolledBack")}
        deadline = time.monotonic() + 30
        while True:
            told = {(doc["rollout"]["name"], doc["event"]["reason"]) for doc in webhook.received}
            if wanted <= told or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert wanted <= told, told
    finally:
        for process in reversed(started):
            process.kill()
        serviceaccount.helm(cluster, "uninstall", release, "-n", home, home=helm_home)
        core.delete_namespace(home)
