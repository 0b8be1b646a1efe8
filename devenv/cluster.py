"""One local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok,
Prometheus, and Linkerd's real policy controller and SMI adaptor as background processes on
127.0.0.1, described by `<devdir>/state.json`.

Called by the CLI (`python -m devenv up|down|status|stop|start`), which `make dev-up` and the
pytest fixture run. `up` is idempotent: a healthy environment is left alone. Every process runs
in its own process group and is recorded as soon as it starts, so `down` (also run when `up`
fails half-way) stops exactly what was started, by process id, and nothing else.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devenv import components, layout, linkerd, pki, processes, prometheus, tools
from devenv.errors import DevEnvError
from devenv.probes import KubeApi, get, tls_context, wait_for

Report = Callable[[str], None]

# Start order; `down` stops in reverse.
# How each Linkerd process says it is ready.
LINKERD_READY = {"linkerd-policy-controller": "/ready", "linkerd-smi-adaptor": "/metrics"}
COMPONENTS = (
    "prometheus",
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "linkerd-policy-controller",
    "linkerd-smi-adaptor",
)
READY_TIMEOUT = 90.0


@dataclass(frozen=True)
class State:
    """What `up` started, kept in `state.json` for `down`, `status` and restarts."""

    ports: dict[str, int]
    processes: dict[str, processes.Process]
    kubernetes_version: str
    kubectl: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "ports": self.ports,
                "processes": {name: p.to_json() for name, p in self.processes.items()},
                "kubernetesVersion": self.kubernetes_version,
                "kubectl": self.kubectl,
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> State:
        data = json.loads(text)
        return cls(
            ports={str(k): int(v) for k, v in data["ports"].items()},
            processes={
                str(name): processes.Process.from_json(record)
                for name, record in data["processes"].items()
            },
            kubernetes_version=str(data["kubernetesVersion"]),
            kubectl=str(data["kubectl"]),
        )


class DevEnv:
    """The dev environment rooted at one dev directory (`.dev/` by default)."""

    def __init__(self, root: Path, report: Report = print) -> None:
        self.dir = layout.DevDir(root.resolve())
        self.report = report

    # --- reading -----------------------------------------------------------------------------

    def state(self) -> State | None:
        try:
            return State.from_json(self.dir.state_file.read_text())
        except (OSError, ValueError, KeyError):
            return None

    def _save(self, state: State) -> None:
        self.dir.state_file.write_text(state.to_json() + "\n")

    def _api(self) -> KubeApi:
        state = self.state()
        if state is None:
            raise DevEnvError(f"no dev environment in {self.dir.root}")
        keys = self.dir.pki
        context = tls_context(keys / "ca.crt", keys / "admin.crt", keys / "admin.key")
        return KubeApi(f"https://127.0.0.1:{state.ports['kube-apiserver']}", context)

    def is_up(self) -> bool:
        """Every recorded process runs, the API server is ready and the env file is written."""
        state = self.state()
        if state is None or not self.dir.env_file.exists():
            return False
        if set(state.processes) != set(COMPONENTS):
            return False
        if not all(processes.is_running(p) for p in state.processes.values()):
            return False
        try:
            return self._api().ready()
        except OSError:  # certificates gone: not an environment that can be used
            return False

    def status(self) -> dict[str, str]:
        """component → 'running (pid N)' or 'stopped'."""
        state = self.state()
        result: dict[str, str] = {}
        for name in COMPONENTS:
            process = state.processes.get(name) if state else None
            if process is not None and processes.is_running(process):
                port = state.ports.get(name) if state else None
                where = f" on 127.0.0.1:{port}" if port else ""
                result[name] = f"running (pid {process.pid}){where}"
            else:
                result[name] = "stopped"
        return result

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Serialises `up`, `down`, `stop` and `start` on one dev directory across processes."""
        self.dir.root.mkdir(parents=True, exist_ok=True)
        with (self.dir.root / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    # --- up ----------------------------------------------------------------------------------

    def up(self) -> bool:
        """Starts the environment and waits until it is ready; False if it already was."""
        with self._exclusive():
            return self._up()

    def _up(self) -> bool:
        if self.is_up():
            self.report(f"dev environment already up ({self.dir.root}); nothing to do")
            return False
        if self.state() is not None:
            self.report("found a stopped or half-started environment: cleaning it up first")
            self._down(quiet=True)
        started = time.monotonic()
        with self._step("tools (build/fetch/cache)"):
            toolset = tools.ensure(lambda line: self.report(f"    {line}"))
        try:
            self._start(toolset)
        except BaseException:
            self.report("start failed: stopping what was started (logs are kept)")
            self._down(quiet=True)
            raise
        self.report(f"dev environment ready in {time.monotonic() - started:.1f}s")
        for line in self.dir.env_file.read_text().splitlines():
            self.report(f"  {line}")
        self.report(f"  (use it with: set -a; . {self.dir.env_file}; set +a)")
        return True

    @contextmanager
    def _step(self, what: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        self.report(f"  {what:<44} {time.monotonic() - started:6.1f}s")

    def _fresh_dir(self) -> None:
        for path in (
            self.dir.etcd_data,
            self.dir.prometheus_dir,
            self.dir.pki,
            self.dir.logs,
        ):
            shutil.rmtree(path, ignore_errors=True)
        for path in (self.dir.kubeconfig, self.dir.env_file, self.dir.state_file):
            path.unlink(missing_ok=True)
        for path in (self.dir.logs, self.dir.targets_dir, self.dir.prometheus_data):
            path.mkdir(parents=True)

    def _start(self, toolset: tools.Toolset) -> None:
        self._fresh_dir()
        ports = _free_ports(
            "etcd",
            "etcd-peer",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
            "prometheus",
            "linkerd-policy-controller",
            "linkerd-policy-grpc",
            "linkerd-policy-admission",
            "linkerd-smi-adaptor",
        )
        state = State(ports, {}, toolset.kubernetes_version, str(toolset.kubectl))
        self._save(state)

        def spawn(name: str, argv: list[str]) -> processes.Process:
            process = processes.spawn(
                name, argv, self.dir.log(name), components.ENVIRONMENT.get(name)
            )
            state.processes[name] = process
            self._save(state)
            return process

        with self._step("certificates and kubeconfigs"):
            setup = components.Setup(toolset, pki.create(self.dir.pki), ports, self.dir)
            keys = setup.keys
            server = f"https://127.0.0.1:{ports['kube-apiserver']}"
            for user in components.USERS:
                pki.write_kubeconfig(
                    setup.kubeconfig(user), server, keys.ca.cert, setup.identity(user), user
                )

        self.dir.prometheus_config.write_text(
            prometheus.config(
                self.dir.targets_dir, ports["prometheus"], self.dir.prometheus_query_log
            )
        )
        prom = spawn(
            "prometheus",
            prometheus.argv(
                toolset.prometheus,
                self.dir.prometheus_config,
                self.dir.prometheus_data,
                ports["prometheus"],
            ),
        )
        with self._step(f"etcd ready on 127.0.0.1:{ports['etcd']}"):
            etcd = spawn("etcd", components.etcd(setup))
            wait_for(
                "etcd",
                lambda: '"health":"true"' in get(f"http://127.0.0.1:{ports['etcd']}/health")[1],
                READY_TIMEOUT,
                etcd.log,
                etcd,
            )
        api = KubeApi(server, tls_context(keys.ca.cert, keys.admin.cert, keys.admin.key))
        self.dir.audit_policy.write_text(components.AUDIT_POLICY)
        with self._step(f"kube-apiserver {toolset.kubernetes_version} ready on {server}"):
            apiserver = spawn("kube-apiserver", components.kube_apiserver(setup))
            wait_for("kube-apiserver", api.ready, READY_TIMEOUT, apiserver.log, apiserver)
        serving = tls_context(keys.ca.cert)
        # Nodes first: kwok takes up the Nodes it finds at start at once, while newly created
        # ones may wait for its next pass.
        for node in components.FAKE_NODES:
            api.request("POST", "/api/v1/nodes", components.node(node))
        with self._step("controller-manager, scheduler, kwok started"):
            controllers = {
                "kube-controller-manager": spawn(
                    "kube-controller-manager", components.kube_controller_manager(setup)
                ),
                "kube-scheduler": spawn("kube-scheduler", components.kube_scheduler(setup)),
            }
            kwok = spawn("kwok", components.kwok(setup))
        with self._step("CRDs applied and Established"):
            self._install_crds(toolset)
        with self._step(f"{len(components.FAKE_NODES)} kwok Nodes Ready"):
            wait_for("kwok (Nodes Ready)", lambda: _nodes_ready(api), READY_TIMEOUT, kwok.log, kwok)
        with self._step("controller-manager and scheduler healthy"):
            for name, process in controllers.items():
                url = f"https://127.0.0.1:{ports[name]}/healthz"
                wait_for(
                    name,
                    lambda url=url: get(url, serving)[0] == 200,  # type: ignore[misc]
                    READY_TIMEOUT,
                    process.log,
                    process,
                )
            wait_for(
                "kube-controller-manager (default ServiceAccount)",
                lambda: _exists(api, "/api/v1/namespaces/default/serviceaccounts/default"),
                READY_TIMEOUT,
                controllers["kube-controller-manager"].log,
                controllers["kube-controller-manager"],
            )
        with self._step("linkerd policy controller and smi adaptor ready"):
            self._start_linkerd(api, setup, spawn)
        with self._step(f"prometheus ready on 127.0.0.1:{ports['prometheus']}"):
            self._wait_prometheus(prom, ports["prometheus"])
        self._write_env(ports, toolset)

    def _start_linkerd(
        self,
        api: KubeApi,
        setup: components.Setup,
        spawn: Callable[[str, list[str]], processes.Process],
    ) -> None:
        """The policy controller needs its bootstrap objects (and the CRDs) before it starts,
        and is ready once its admin server says so and its webhook answers over TLS (then the
        webhook is registered); the adaptor once it serves metrics."""
        for collection, body in linkerd.bootstrap():
            api.request("POST", collection, body)
        mesh, ports, keys = setup.toolset.linkerd, setup.ports, setup.keys
        admission = ports["linkerd-policy-admission"]
        policy = spawn(
            "linkerd-policy-controller",
            linkerd.policy_controller(
                mesh.policy_controller,
                self.dir.kubeconfig,
                linkerd.PolicyPorts(
                    ports["linkerd-policy-controller"], ports["linkerd-policy-grpc"], admission
                ),
                # The dev CA's 127.0.0.1 certificate, which kube-apiserver already trusts.
                keys.serving.cert,
                keys.serving.key,
            ),
        )
        adaptor = spawn(
            "linkerd-smi-adaptor",
            linkerd.smi_adaptor(
                mesh.smi_adaptor, self.dir.kubeconfig, ports["linkerd-smi-adaptor"]
            ),
        )
        serving = tls_context(keys.ca.cert)
        checks = (
            (policy, f"http://127.0.0.1:{ports[policy.name]}/ready", 200),
            # Anything but a POST to / is answered 404: the TLS server is up.
            (policy, f"https://127.0.0.1:{admission}/", 404),
            (adaptor, f"http://127.0.0.1:{ports[adaptor.name]}/metrics", 200),
        )
        for process, url, status in checks:
            wait_for(
                process.name,
                lambda url=url, status=status: get(url, serving)[0] == status,  # type: ignore[misc]
                READY_TIMEOUT,
                process.log,
                process,
            )
        api.request(
            "POST",
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
            linkerd.policy_webhook(admission, keys.ca.cert.read_bytes()),
        )

    def _wait_linkerd(self, process: processes.Process, port: int) -> None:
        url = f"http://127.0.0.1:{port}{LINKERD_READY[process.name]}"
        wait_for(process.name, lambda: get(url)[0] == 200, READY_TIMEOUT, process.log, process)

    def _wait_prometheus(self, process: processes.Process, port: int) -> None:
        wait_for(
            "prometheus",
            lambda: get(f"http://127.0.0.1:{port}/-/ready")[0] == 200,
            READY_TIMEOUT,
            process.log,
            process,
        )

    def _write_env(self, ports: dict[str, int], toolset: tools.Toolset) -> None:
        lines = [
            f"KUBECONFIG={self.dir.kubeconfig}",
            f"PROMETHEUS_URL=http://127.0.0.1:{ports['prometheus']}",
            f"PROMETHEUS_TARGETS_DIR={self.dir.targets_dir}",
            f"PROMETHEUS_QUERY_LOG={self.dir.prometheus_query_log}",
            f"KUBECTL={toolset.kubectl}",
            f"HELM={toolset.helm}",
            f"AUDIT_LOG={self.dir.audit_log}",
            f"LINKERD_POLICY_GRPC=127.0.0.1:{ports['linkerd-policy-grpc']}",
        ]
        self.dir.env_file.write_text("\n".join(lines) + "\n")

    def _install_crds(self, toolset: tools.Toolset) -> None:
        # Linkerd's CRDs include linkerd-smi's TrafficSplit (it stores v1alpha1).
        sources = [toolset.gateway_api_crds, toolset.linkerd.crds]
        sources += sorted(layout.PROJECT_CRDS_DIR.glob("*.yaml"))
        args = [arg for source in sources for arg in ("-f", str(source))]
        self._kubectl("apply", "--server-side", "--force-conflicts", *args)
        self._kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")

    def _kubectl(self, *args: str) -> None:
        state = self.state()
        assert state is not None
        log = self.dir.log("kubectl")
        with log.open("a") as out:
            out.write(f"$ kubectl {' '.join(args)}\n")
            out.flush()
            proc = subprocess.run(
                [state.kubectl, f"--kubeconfig={self.dir.kubeconfig}", *args],
                stdout=out,
                stderr=out,
                check=False,
            )
        if proc.returncode != 0:
            raise DevEnvError(f"kubectl {args[0]} failed (exit code {proc.returncode})", log)

    # --- down, stop, start -------------------------------------------------------------------

    def down(self, quiet: bool = False) -> list[str]:
        """Stops every recorded process (whole process groups); returns the names stopped."""
        with self._exclusive():
            return self._down(quiet)

    def _down(self, quiet: bool) -> list[str]:
        state = self.state()
        stopped: list[str] = []
        if state is not None:
            for name in reversed(COMPONENTS):
                process = state.processes.get(name)
                if process is not None and processes.stop(process):
                    stopped.append(name)
        for path in (self.dir.env_file, self.dir.kubeconfig, self.dir.state_file):
            path.unlink(missing_ok=True)
        if not quiet:
            if stopped:
                self.report(f"stopped: {', '.join(stopped)} (logs kept in {self.dir.logs})")
            else:
                self.report("dev environment was not running")
        return stopped

    def stop(self, name: str) -> None:
        """Stops one component and keeps its record, so `start` brings it back the same."""
        with self._exclusive():
            process = self._record(name)
            processes.stop(process)
        self.report(f"stopped {name} (pid {process.pid})")

    def start(self, name: str) -> None:
        """Starts a stopped component again with the same command line (so port and data);
        returns once Prometheus, the API server or Linkerd's process is ready again."""
        with self._exclusive():
            self._start_again(name)

    def revive(self) -> list[str]:
        """Starts again every component that exited, as a kubelet restarts a crashed container
        (Linkerd's policy controller exits when it cannot renew its Lease while the API server
        is down); returns their names."""
        with self._exclusive():
            state = self.state()
            if state is None:
                raise DevEnvError(f"no dev environment in {self.dir.root}")
            exited = [
                name
                for name in COMPONENTS
                if name in state.processes and not processes.is_running(state.processes[name])
            ]
            for name in exited:
                self._start_again(name)
        return exited

    def _start_again(self, name: str) -> None:
        process = self._record(name)
        if processes.is_running(process):
            self.report(f"{name} is already running (pid {process.pid})")
            return
        state = self.state()
        assert state is not None
        restarted = processes.spawn(
            name, list(process.argv), process.log, components.ENVIRONMENT.get(name)
        )
        state.processes[name] = restarted
        self._save(state)
        if name == "prometheus":
            self._wait_prometheus(restarted, state.ports["prometheus"])
        elif name == "kube-apiserver":
            wait_for("kube-apiserver", self._api().ready, READY_TIMEOUT, restarted.log, restarted)
        elif name in LINKERD_READY:
            self._wait_linkerd(restarted, state.ports[name])
        self.report(f"started {name} (pid {restarted.pid})")

    def _record(self, name: str) -> processes.Process:
        state = self.state()
        if state is None or name not in state.processes:
            raise DevEnvError(f"{name} is not part of a dev environment in {self.dir.root}")
        return state.processes[name]


def _free_ports(*names: str) -> dict[str, int]:
    """Distinct free TCP ports on 127.0.0.1 (all held open until every one is chosen)."""
    sockets = []
    try:
        for _ in names:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return {name: sock.getsockname()[1] for name, sock in zip(names, sockets, strict=True)}
    finally:
        for sock in sockets:
            sock.close()


def _nodes_ready(api: KubeApi) -> bool:
    nodes = api.request("GET", "/api/v1/nodes")["items"]
    ready = [
        node
        for node in nodes
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in node.get("status", {}).get("conditions", [])
        )
    ]
    return len(ready) == len(components.FAKE_NODES)


def _exists(api: KubeApi, path: str) -> bool:
    try:
        api.request("GET", path)
    except OSError:
        return False
    return True
