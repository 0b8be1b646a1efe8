"""Chaos on the real control plane: ten concurrent Rollouts of mixed outcomes (healthy, error
regression, latency regression, approval gate), two controller replicas sharing the Lease, and
faults at randomly drawn moments: SIGKILL of a replica (restarted at once, as a kubelet would),
the kube-apiserver stopped then restarted, Prometheus stopped then restarted.

Checked after every fault and at the end: every Rollout ends in the phase its behaviour
deserves; every stored version of every route (read from etcd's own watch, which outlives the
API server's outage) has weights in 0–100 summing to 100; each route walks a prefix of its steps
then back to 0; a rollback leaves the stable Deployment as it was (status aside); no route rose
while Prometheus was down; and the API server's audit log shows writes only from the replica
that last won the Lease (each process names itself in its user agent).

Defaults are the short variant of `make test`; `make chaos` sets CANARY_CHAOS_KILLS=100 and the
issue's 30 s and 60 s outages, and new waves of releases start while faults remain. The seed
is printed (CANARY_CHAOS_SEED replays the same fault schedule).

False failures: healthy releases fail no request (error rate 0) and their latency is lognormal
with p50 10 ms, p99 50 ms, as the stable's (a request over the 400 ms ceiling has probability
5e-8, far inside the p99 SLO). Every check, the absolute ones included, is an e-value in the
judge's one combined test, so such a release is rolled back with probability at most the
policy's ``falseRollbackRate``, 1e-5 (Ville's bound, docs/analysis.md; the default 1e-2 would
allow 1% per release). A wave has 5 healthy or approval releases: at most 5e-5 a wave, so a run
of up to twenty waves (the short variant starts one, and another only if all ten finished
during its faults) fails falsely with probability below 0.1%. ``holdAbove`` 1e4 keeps a healthy
step from holding on weak evidence (a check's e-value above 1e4 has probability at most 1e-4),
so no healthy release waits out the 600 s. Regressions fail their first windows whatever the
draw: 20% errors against a stable failing none reach log(1e5) = 11.5 nats in a few failures,
and a canary of p50 300 ms, p99 2 s has about a third of its requests above the 400 ms ceiling.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bench.accounts import audit_events
from devenv import layout
from devenv.cluster import State
from tests.integration.conftest import Cluster
from tests.integration.e2e import chaos
from tests.integration.e2e.conftest import GROUP, VERSION, Process

pytestmark = pytest.mark.integration

KILLS = int(os.environ.get("CANARY_CHAOS_KILLS", "3"))
APISERVER_DOWN = float(os.environ.get("CANARY_CHAOS_APISERVER_DOWN", "10"))
PROMETHEUS_DOWN = float(os.environ.get("CANARY_CHAOS_PROMETHEUS_DOWN", "10"))
SEED = int(os.environ.get("CANARY_CHAOS_SEED") or random.SystemRandom().randrange(2**31))

APPS = 10
BEHAVIOURS = ("healthy", "errors", "latency", "approval")
DESERVED = {"healthy": "Succeeded", "errors": "RolledBack", "latency": "RolledBack"}
DESERVED["approval"] = "Succeeded"
HEALTHY = {"error-rate": "0", "latency-p50-ms": "10", "latency-p99-ms": "50"}
BEHAVIOUR = {
    "healthy": HEALTHY,
    "approval": HEALTHY,
    "errors": {**HEALTHY, "error-rate": "0.2"},
    "latency": {**HEALTHY, "latency-p50-ms": "300", "latency-p99-ms": "2000"},
}
STEPS = [20, 50, 100]
APPROVAL_STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"setWeight": 100}]
TERMINAL = {"Succeeded", "RolledBack", "Failed", "Aborted", "Superseded"}
LEASE = ("canary-system", "canary-controller")
LEASE_DURATION = 10  # seconds: a killed leader's Lease is taken over this long after
AGENT = "canary/chaos-"  # the user agent of this test's replicas: canary/chaos-<x>_<suffix>
BLIND_GRACE = 5.0  # a decision read from Prometheus just before it stopped may land this late
WAVE_TIMEOUT = 600.0
# What the client raises while the API server is down or restarting: such a read or write is
# tried again on the next pass.
DOWN = (ApiException, urllib3.exceptions.HTTPError, OSError)


def _annotations(behaviour: str) -> dict[str, str]:
    return {f"sim.canary.dev/{key}": value for key, value in BEHAVIOUR[behaviour].items()}


def _install(api: client.ApiClient, namespace: str) -> None:
    """Ten Deployments app-0…app-9 of 2 pods, their Services with load, a policy each."""
    apps: Any = client.AppsV1Api(api)
    core: Any = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    for i in range(APPS):
        name = f"app-{i}"
        labels = {"app": name}
        template = {
            "metadata": {"labels": labels, "annotations": _annotations("healthy")},
            "spec": {
                "containers": [{"name": "app", "image": "ghcr.io/stefanprodan/podinfo:6.0.0"}]
            },
        }
        apps.create_namespaced_deployment(
            namespace,
            {
                "metadata": {"name": name},
                "spec": {
                    "replicas": 2,
                    "strategy": {"rollingUpdate": {"maxSurge": "100%", "maxUnavailable": 0}},
                    "selector": {"matchLabels": labels},
                    "template": template,
                },
            },
        )
        core.create_namespaced_service(
            namespace,
            {
                "metadata": {"name": name, "annotations": {"sim.canary.dev/rps": "50"}},
                "spec": {"selector": labels, "ports": [{"name": "http", "port": 9898}]},
            },
        )
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "rolloutpolicies",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "RolloutPolicy",
                "metadata": {"name": name},
                "spec": {
                    "service": {"name": name, "port": 9898},
                    "traffic": {"router": "HTTPRoute"},
                    "steps": [{"setWeight": w} for w in STEPS],
                    "analysis": {
                        "interval": "2s",
                        "minRequestsPerStep": 40,
                        "successRate": {"min": 98},
                        "latency": {"percentile": 99, "maxMs": 400},
                        "compareWithStable": {"falseRollbackRate": 0.00001, "holdAbove": 10000},
                    },
                },
            },
        )


class Recorder:
    """Every version etcd stores of the namespace's HTTPRoutes, as it is written: one watch
    stream from the start (etcd is never stopped), so no version is missed, even while the API
    server is down."""

    def __init__(self, etcd_port: int, namespace: str) -> None:
        prefix = f"/registry/gateway.networking.k8s.io/httproutes/{namespace}/"
        self.body = json.dumps(
            {
                "create_request": {
                    "key": base64.b64encode(prefix.encode()).decode(),
                    "range_end": base64.b64encode((prefix[:-1] + "0").encode()).decode(),
                }
            }
        )
        self.connection = http.client.HTTPConnection("127.0.0.1", etcd_port)
        self.samples: list[chaos.Sample] = []
        self.problems: list[str] = []
        self.versions = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True, name="recorder")

    def start(self) -> None:
        self.connection.connect()
        self.socket = self.connection.sock
        self.connection.request("POST", "/v3/watch", body=self.body)
        self.reply = self.connection.getresponse()
        json.loads(self.reply.readline())  # the watch is created: versions from now on come
        self.thread.start()

    def _run(self) -> None:
        try:
            for line in self.reply:
                for event in json.loads(line).get("result", {}).get("events", []):
                    if event.get("type") == "DELETE":
                        continue
                    route = json.loads(base64.b64decode(event["kv"]["value"]))
                    self.versions += 1
                    self.problems.extend(chaos.route_problems(route))
                    name = route["metadata"]["name"]
                    sample = chaos.Sample(time.monotonic(), name, chaos.canary_weight(route))
                    self.samples.append(sample)
        except (OSError, ValueError, http.client.HTTPException) as error:
            if not self.stopping:
                self.problems.append(f"the etcd watch ended: {error!r}")
        else:
            if not self.stopping:
                self.problems.append("the etcd watch ended")

    def stop(self) -> None:
        """End the watch: shutting the socket down wakes the reading thread (closing the
        reply under it would wait for the read's lock)."""
        self.stopping = True
        self.socket.shutdown(socket.SHUT_RDWR)
        self.thread.join(30)
        self.connection.close()

    def walks(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for sample in self.samples:
            found.setdefault(sample.route, []).append(sample.canary)
        return found


@dataclass
class Replicas:
    """Two controller processes with leader election, and a keeper restarting any that exits
    (as the kubelet restarts a killed container)."""

    processes: list[Process]
    restarts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopped: threading.Event = field(default_factory=threading.Event)

    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def _start(self, process: Process) -> None:
        process.start()
        assert process.popen is not None
        self.started.append(process.popen)  # every one is accounted for at stop()

    def start(self) -> None:
        for process in self.processes:
            self._start(process)
        threading.Thread(target=self._keep, daemon=True, name="keeper").start()

    def _keep(self) -> None:
        while not self.stopped.wait(0.5):
            with self.lock:
                for process in self.processes:
                    if process.popen is not None and process.popen.poll() is not None:
                        self._start(process)
                        self.restarts += 1

    def kill(self, process: Process) -> None:
        with self.lock:
            process.kill(signal.SIGKILL)
        # the keeper starts it again within half a second

    def stop(self) -> None:
        self.stopped.set()
        with self.lock:
            for process in self.processes:
                process.kill()
            for popen in self.started:  # none should run still; none is left running
                if popen.poll() is None:
                    os.killpg(popen.pid, signal.SIGKILL)
                    popen.wait()


@dataclass
class Tracked:
    """One Rollout of the test: what it deserves, and its stable Deployment at creation."""

    name: str
    app: str
    behaviour: str
    stable: dict[str, Any]
    phase: str = ""
    approved: bool = False


class Chaos:
    """The run: waves of ten Rollouts, the faults, and the checks after each."""

    def __init__(
        self,
        cluster: Cluster,
        kube: client.ApiClient,
        namespace: str,
        replicas: Replicas,
        recorder: Recorder,
    ) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.kube: Any = kube
        self.replicas, self.recorder = replicas, recorder
        self.custom: Any = client.CustomObjectsApi(kube)
        self.apps: Any = client.AppsV1Api(kube)
        self.coordination: Any = client.CoordinationV1Api(kube)
        self.rng = random.Random(SEED)
        self.rollouts: list[Tracked] = []
        self.problems: list[str] = []
        self.wave = 0
        self.blind: list[tuple[float, float]] = []
        self.kills = 0
        self.leader_kills = 0

    def fail(self, what: str) -> None:
        print(f"chaos: seed {SEED}: FAILED {what}", file=sys.stderr, flush=True)
        pytest.fail(
            f"seed {SEED}: {what}\n--- replica logs\n"
            + "\n".join(p.tail(15) for p in self.replicas.processes),
            pytrace=False,
        )

    # --- releases -------------------------------------------------------------------------

    def start_wave(self) -> None:
        """A new release of every app, behaviours shuffled per wave."""
        behaviours = [BEHAVIOURS[i % len(BEHAVIOURS)] for i in range(APPS)]
        self.rng.shuffle(behaviours)
        for i, behaviour in enumerate(behaviours):
            app = f"app-{i}"
            name = f"{app}-w{self.wave}-{behaviour}"
            stable = self.kube.sanitize_for_serialization(
                self.apps.read_namespaced_deployment(app, self.namespace)
            )
            spec: dict[str, Any] = {
                "targetRef": {"kind": "Deployment", "name": app},
                "policyRef": {"name": app},
                "release": {
                    "images": {"app": f"ghcr.io/stefanprodan/podinfo:6.{self.wave + 1}.{i}"},
                    "templatePatch": {"metadata": {"annotations": _annotations(behaviour)}},
                },
            }
            if behaviour == "approval":
                spec["steps"] = APPROVAL_STEPS
            self.custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                "rollouts",
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "Rollout",
                    "metadata": {"name": name},
                    "spec": spec,
                },
            )
            self.rollouts.append(Tracked(name, app, behaviour, stable))
        self.wave += 1

    def current(self) -> list[Tracked]:
        return self.rollouts[-APPS:]

    def tend(self) -> None:
        """Read every Rollout: approve open gates, judge finished ones, start the next wave
        when the current one is done (the API server may be down: then nothing this time)."""
        try:
            found: Any = self.custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "rollouts", _request_timeout=5
            )["items"]
        except DOWN:
            return
        phases = {item["metadata"]["name"]: item.get("status", {}) for item in found}
        for tracked in self.rollouts:
            if tracked.phase in TERMINAL:
                continue
            status = phases.get(tracked.name, {})
            phase = status.get("phase", "")
            if phase == "WaitingApproval" and not tracked.approved:
                self._approve(tracked)
            if phase in TERMINAL:
                try:
                    self._judge(tracked, phase)
                except DOWN:
                    continue
            tracked.phase = phase

    def _approve(self, tracked: Tracked) -> None:
        command = {"at": datetime.now(UTC).isoformat(), "actor": "chaos", "comment": ""}
        patch = {"metadata": {"annotations": {"canary.dev/approve": json.dumps(command)}}}
        try:
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "rollouts", tracked.name, patch
            )
            tracked.approved = True
        except DOWN:
            return

    def _judge(self, tracked: Tracked, phase: str) -> None:
        deserved = DESERVED[tracked.behaviour]
        if phase == "RolledBack":
            after = self.kube.sanitize_for_serialization(
                self.apps.read_namespaced_deployment(tracked.app, self.namespace)
            )
            changed = chaos.stable_changes(tracked.stable, after)
            if changed:
                self.problems.append(f"{tracked.name}'s rollback changed {tracked.app}: {changed}")
        if phase != deserved:
            self.problems.append(f"{tracked.name} ended {phase}, deserved {deserved}")

    def done(self) -> bool:
        return all(t.phase in TERMINAL for t in self.current())

    def run_for(self, seconds: float, more_waves: bool) -> None:
        """Tend the Rollouts for ``seconds``, starting waves while ``more_waves``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.tend()
            if more_waves and self.done():  # (the API server is up: no outage runs here)
                self.start_wave()
            time.sleep(1)

    # --- faults ---------------------------------------------------------------------------

    def holder(self) -> str:
        lease = self.coordination.read_namespaced_lease(LEASE[1], LEASE[0])
        return str(lease.spec.holder_identity or "")

    def kill(self) -> None:
        """SIGKILL the Lease holder (three times in four) or the other replica."""
        try:
            holder = self.holder()
        except DOWN:
            holder = ""
        leaders = [
            p for p in self.replicas.processes if holder.startswith(f"{(p.env or {})['POD_NAME']}_")
        ]
        others = [p for p in self.replicas.processes if p not in leaders]
        victim = leaders[0] if leaders and self.rng.random() < 0.75 else self.rng.choice(others)
        self.leader_kills += victim in leaders
        self.replicas.kill(victim)
        self.kills += 1

    @contextmanager
    def stopped(self, component: str) -> Iterator[None]:
        self.cluster.stop(component)
        try:
            yield
        finally:
            self.cluster.start(component)

    def api_outage(self) -> None:
        with self.stopped("kube-apiserver"):
            time.sleep(APISERVER_DOWN)

    def prometheus_outage(self) -> None:
        with self.stopped("prometheus"):
            blind_from = time.monotonic() + BLIND_GRACE
            self.run_for(PROMETHEUS_DOWN, more_waves=False)
            self.blind.append((blind_from, time.monotonic()))

    def check(self, after: str) -> None:
        """The checks after a fault (components that exited started again first): a live
        leader within two minutes, no invalid route version, no Rollout ended in the wrong phase,
        no advance while blind."""
        self.cluster.revive()  # what exited in the outage, as the kubelet would
        deadline = time.monotonic() + 120
        while not self._led():
            if time.monotonic() > deadline:
                self.fail(f"after {after}: no replica renewed the Lease within 120 s")
            time.sleep(1)
        problems = [*self.recorder.problems, *self.problems]
        for start, end in self.blind:
            problems += [f"rose while blind: {s}" for s in chaos.blind_advances(
                self.recorder.samples, start, end
            )]  # fmt: skip
        if problems:
            self.fail(f"after {after}: " + "\n".join(problems))

    def _led(self) -> bool:
        try:
            lease = self.coordination.read_namespaced_lease(LEASE[1], LEASE[0])
        except DOWN:
            return False
        renewed = lease.spec.renew_time
        return (
            bool(lease.spec.holder_identity)
            and renewed is not None
            and (datetime.now(UTC) - renewed).total_seconds() < LEASE_DURATION
        )


def _etcd_port(cluster: Cluster) -> int:
    state = State.from_json(layout.DevDir(cluster.dev_dir).state_file.read_text())
    return state.ports["etcd"]


def _replica(
    letter: str, cluster: Cluster, kubeconfig: Path, namespace: str, logs: Path
) -> Process:
    return Process(
        f"replica-{letter}",
        [
            sys.executable, "-m", "canary", "run",
            "--kubeconfig", str(kubeconfig),
            "--prometheus-url", cluster.prometheus_url,
            "--watch-namespace", namespace,
            "--tick", "2s",
            "--lease-namespace", LEASE[0],
            "--lease-duration", f"{LEASE_DURATION}s",
            "--http-port", "0",
        ],
        logs / f"replica-{letter}.log",
        env={"POD_NAME": f"chaos-{letter}"},
    )  # fmt: skip


def test_releases_survive_kills_outages_and_two_replicas(
    cluster: Cluster,
    kube: client.ApiClient,
    namespace: str,
    controller_kubeconfig: Path,
    tmp_path: Path,
) -> None:
    """Ten mixed Rollouts under seeded random faults each end as they deserve, with valid
    weights in every stored route version, no skipped step, untouched stable Deployments on
    rollback, no advance while blind, and writes only from the Lease holder."""
    print(f"\nchaos: seed {SEED} (CANARY_CHAOS_SEED replays it), {KILLS} kills", file=sys.stderr)
    started = time.monotonic()
    audit = layout.DevDir(cluster.dev_dir).audit_log
    audit_offset = audit.stat().st_size if audit.exists() else 0
    _install(kube, namespace)
    emulator = Process(
        "emulator",
        [
            sys.executable, "-m", "canary.emulator",
            "--kubeconfig", str(cluster.kubeconfig),
            "--targets-dir", str(cluster.targets_dir),
            "--targets-file", f"{namespace}.json",
            "--namespace", namespace,
            "--port", "0",
            "--policy-grpc", cluster.policy_grpc,
        ],
        tmp_path / "emulator.log",
    )  # fmt: skip
    # The emulator is the test's traffic, not the system under test: kept running like a replica.
    processes = [_replica(x, cluster, controller_kubeconfig, namespace, tmp_path) for x in "ab"]
    replicas = Replicas(processes)
    support = Replicas([emulator])
    recorder = Recorder(_etcd_port(cluster), namespace)
    recorder.start()
    support.start()
    replicas.start()
    run = Chaos(cluster, kube, namespace, replicas, recorder)
    faults: list[Callable[[], None]] = [run.kill] * KILLS + [run.api_outage, run.prometheus_outage]
    run.rng.shuffle(faults)
    try:
        run.start_wave()
        for number, fault in enumerate(faults, 1):
            run.run_for(run.rng.uniform(1.0, 6.0), more_waves=True)
            fault()
            run.check(f"fault {number}/{len(faults)} ({fault.__name__})")
            print(
                f"chaos: fault {number}/{len(faults)} ({fault.__name__}) survived at "
                f"{time.monotonic() - started:.0f}s; finished Rollouts "
                f"{sum(t.phase in TERMINAL for t in run.rollouts)}/{len(run.rollouts)}",
                file=sys.stderr,
            )
        deadline = time.monotonic() + WAVE_TIMEOUT
        while not run.done():
            if time.monotonic() > deadline:
                late = [(t.name, t.phase) for t in run.current() if t.phase not in TERMINAL]
                run.fail(f"Rollouts not finished {WAVE_TIMEOUT:.0f}s after the last fault: {late}")
            run.run_for(2, more_waves=False)
        run.check("the last wave")
    finally:
        replicas.stop()
        support.stop()
        recorder.stop()
    walks = {
        route: chaos.walk_problems(weights, STEPS) for route, weights in recorder.walks().items()
    }
    assert [p for problems in walks.values() for p in problems] == [], f"seed {SEED}"
    assert len(walks) == APPS, f"seed {SEED}: routes seen {sorted(walks)}"
    events = list(audit_events(audit, audit_offset, AGENT))
    assert chaos.writes_by_non_holders(events, AGENT, LEASE) == [], f"seed {SEED}"
    holders = {
        e["userAgent"]
        for e in events
        if e["verb"] in chaos.WRITES
        and e["objectRef"].get("resource") == "leases"
        and 200 <= e.get("responseStatus", {}).get("code", 0) < 300
    }
    # A killed leader never comes back as the same process: another one must have taken over.
    assert len(holders) >= min(2, 1 + run.leader_kills), f"seed {SEED}: holders {holders}"
    finished = [t for t in run.rollouts if t.phase in TERMINAL]
    assert len(finished) == len(run.rollouts)
    print(
        f"chaos: seed {SEED}: {run.kills} kills ({run.leader_kills} of the leader), "
        f"{replicas.restarts} replica restarts, API server down {APISERVER_DOWN:.0f}s, "
        f"Prometheus down {PROMETHEUS_DOWN:.0f}s; {len(finished)} Rollouts in {run.wave} waves "
        f"all as deserved; {recorder.versions} route versions, invalid weights: 0; "
        f"{len(events)} audit events of the replicas, {len(holders)} processes led in turn, "
        f"writes without the Lease: 0; "
        f"{time.monotonic() - started:.0f}s",
        file=sys.stderr,
    )
