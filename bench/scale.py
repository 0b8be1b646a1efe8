"""Controller scale against the real local control plane (BENCHMARK.md §2, issue 16).

N Rollouts run at once in one namespace, each with its own Deployment (1 pod), apex Service
(with emulated load) and HTTPRoute (``--router TrafficSplit``: an SMI TrafficSplit, which
Linkerd's SMI adaptor turns into a ServiceProfile, and which has no status to wait for), 10% of
them bad (their canary fails 30% of requests). One
``canary run`` process (as the cluster admin, 4 workers), one mesh emulator, the dev
environment's Prometheus. Measured from outside the controller:

- API requests: the kube-apiserver's own ``apiserver_request_total`` (scraped from its
  ``/metrics``), by verb and resource, for the resources the controller touches; on a cluster
  that runs only the benchmark, the emulator and the harness only list and watch, so GETs and
  writes of these resources are the controller's;
- the controller's own requests, from the kube-apiserver's audit log: the controller runs as a
  ServiceAccount of its own (``bench.accounts``), so the steady window's GETs are its alone,
  even on a cluster shared with other tests (the namespace controller deleting an earlier
  test's namespace, Linkerd's SMI adaptor answering that, GET these resources too);
- the controller's own ``/metrics``: reconciles, snapshot queries and their duration;
- peak RSS (``VmHWM``) and CPU seconds from ``/proc``;
- reaction latency of each bad Rollout: from the first sample of its canary's failures in
  Prometheus to its route's canary weight back at 0 (the harness watches the routes);
- wrong decisions: a good Rollout rolled back or failed, a bad one promoted; for the good ones
  rolled back with a canary not ready, and for up to 100 promoted, how long after the
  Rollout's creation its canary's ReplicaSet was scaled up, its pod created and bound, from the
  namespace's Events (``canary_pipeline``).

``python -m bench.scale --n 10 --n 100`` writes the table into docs/benchmarks.md;
``tests/integration/test_scale_keeps_reads_cached_and_queries_batched.py`` runs a short N = 50.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config

from bench import accounts
from canary.adapters.kube.informer import Informer
from canary.adapters.kube.workloads import RELEASE_ANNOTATION
from canary.adapters.routers import httproute
from canary.core import measuring, weights
from canary.model.base import parse_duration
from canary.model.rollout import ROLLOUT_LABEL
from canary.runtime.controller import WORK
from devenv.cluster import DevEnv

REPO = Path(__file__).resolve().parents[1]
GROUP, VERSION = "canary.dev", "v1alpha1"
OURS = ("rollouts", "rolloutpolicies", "deployments", "services", "httproutes", "trafficsplits")
"""The resources whose requests are counted."""
OTHERS = ("deployments/status", "httproutes/status")
"""Writes of other controllers (kube-controller-manager, Linkerd's policy controller), left out
of the API server's counts."""
ACCOUNT = "canary-scale"
"""The ServiceAccount the controller runs as (in the run's namespace): its requests are the
ones the audit log attributes to it."""
ROUTES = {
    "HTTPRoute": ("gateway.networking.k8s.io", "v1", "httproutes"),
    "TrafficSplit": ("split.smi-spec.io", "v1alpha2", "trafficsplits"),
}
"""Where the harness watches each router's objects (group, version, plural)."""
APP_PORT = 9898
"""Every app's apex Service port (the route's parent, the Rollout's ``service.port``)."""
GOOD, BAD = "Succeeded", "RolledBack"
FINISHED = frozenset({GOOD, BAD, "Failed"})
GETTING = frozenset({"Initializing", "Promoting", GOOD})
"""Phases entered by a reconcile that GETs (creating the canary; promoting)."""
GRACE = 5.0
"""Seconds a measured steady window must stay followed by quiet: a reconcile that GETs writes
the phase that shows it a moment after its GET (later under load)."""


@dataclass(frozen=True)
class Setup:
    """One scale run."""

    n: int
    namespace: str
    interval: str = "15s"
    steps: tuple[int, ...] | None = None  # None: the default steps
    tick: str = "5s"
    workers: int = 4
    kube_qps: float = 20.0  # the controller's client-side rate limit (its defaults)
    kube_burst: int = 30
    prometheus_timeout: str = "30s"  # the controller's --prometheus-timeout (its default)
    rps: int = 20
    timeout: float = 900.0
    steady: float = 20.0  # seconds of the steady-state window (no Rollout changing phase)
    early: bool = False  # end once the steady window is measured and both kinds have finished
    log_level: str = "info"  # the controller's: info logs each Rollout's events and phases
    router: str = "HTTPRoute"  # or "TrafficSplit"
    warm: float = 0.0
    """Seconds of an unmeasured first round (release 2, then deleted) before the measured one
    (release 3): a fleet's second release, whose Services and routes exist and are accepted."""
    custom_query: str | None = None
    """A custom metric every Rollout's policy asks (no bound it can break: it adds queries)."""
    slow_query: str | None = None
    """app-0's only custom metric instead (a tenant's slow query; app-0 is a good release)."""
    nice_stand_ins: bool = False
    """Run the stand-ins (``STAND_INS``) at nice ``STAND_IN_NICE`` while the run lasts."""

    def bad(self, i: int) -> bool:
        """Every tenth Rollout is bad."""
        return i % 10 == 9


STAND_INS = (
    "kwok",
    "kube-controller-manager",
    "kube-scheduler",
    "linkerd-policy-controller",
    "linkerd-smi-adaptor",
)
"""The dev environment's components that stand in for a cluster's nodes and mesh (with the
mesh emulator, the apps and their proxies). In a cluster they run on other machines than the
controller and Prometheus; here they share two cores with them."""

STAND_IN_NICE = 10
"""``--nice-stand-ins``: the stand-ins' nice value (the controller, Prometheus, the API server
and etcd keep 0), so that on this machine they take what the reaction's path leaves."""

NICED = f"the mesh emulator and {', '.join(STAND_INS)} at nice {STAND_IN_NICE}"
"""What ``--nice-stand-ins`` does, in words (its help and the report's header)."""


def renice(pids: Iterable[int], nice: int) -> None:
    """Set every thread of each process group in ``pids`` to ``nice``."""
    for pid in pids:
        os.setpriority(os.PRIO_PGRP, pid, nice)


def stand_in_pids(env: dict[str, str]) -> list[int]:
    """The process groups of the dev environment's ``STAND_INS`` that are running."""
    components = component_pids(env)
    return [components[name] for name in STAND_INS if name in components]


STABLE_ERROR_RATE = 0.001
"""The share of requests every app's stable pod fails."""
BAD_ERROR_RATE = 0.3
"""The share of requests a bad release's canary fails."""
FALSE_ROLLBACK_RATE = 2e-5
"""The policy's bound on rolling back a good release: small, since a run counts any wrong
decision among hundreds of releases."""


@dataclass
class Report:
    """What one run measured."""

    n: int
    seconds: float = 0.0
    reconciles: float = 0.0
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Every client's, from ``apiserver_request_total``."""
    controller_requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    """The controller's own, from the audit log."""
    steady_gets: int = -1
    steady_reconciles: float = 0.0
    steady_window: tuple[float, float] | None = None
    """The steady window's start and end, seconds from the round's start."""
    steady_objects: Counter[str] = field(default_factory=Counter)
    """The steady window's GETs by ``resource ns/name``."""
    history: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    """Rollout → (seconds from the round's start, phase) at each first look in a phase."""
    snapshots: float = 0.0
    prometheus_snapshots: list[dict[str, float]] | None = None
    """Prometheus' own timings (its query log's ``stats.timings``, seconds) of each counters
    query of this run's namespace it ran during the round; None without a query log."""
    ticks: float = 0.0
    value_queries: float = 0.0
    query_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    cpu_seconds: float = 0.0
    bad: int = 0
    """How many of the run's Rollouts were bad (the most ``reactions`` can hold)."""
    reactions: dict[str, float] = field(default_factory=dict)
    """Bad app → its reaction: from its failures seen in Prometheus to its route seen back on
    stable (each bad Rollout for which the harness saw both)."""
    reaction_parts: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Timed bad app seen RollingBack → from its failures visible to that phase seen (the
    tick's look and the queue), and from then to its route back at 0 (the rollback's
    writes)."""
    untimed: dict[str, str] = field(default_factory=dict)
    """Bad app → why its reaction was not timed (what the harness's looks never saw)."""
    decisions: dict[str, Decision] = field(default_factory=dict)
    """The timed bad Rollouts' failed steps, from the controller's log (``decisions``)."""
    phases: dict[str, str] = field(default_factory=dict)
    wrong: list[str] = field(default_factory=list)
    entered: dict[str, list[float]] = field(default_factory=dict)
    """Phase → seconds from the round's start to each Rollout's first look in that phase."""
    diagnosis: str = ""
    """Why each wrong Rollout ended as it did: its status, and the logs that name it."""
    pipeline: dict[str, tuple[int, dict[str, list[float]]]] = field(default_factory=dict)
    """Group of Rollouts (the good ones rolled back for a canary not ready; up to 100 promoted)
    → how many were traced, and by Event reason of ``PIPELINE`` the seconds from each one's
    creation to its canary's first such Event (``canary_pipeline``)."""
    unfinished: int = 0
    missed_looks: int = 0
    """Looks (one a second) the harness lost to a timed-out Prometheus query or /metrics read."""
    waits: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    """Work (failing, verdict, routine) → the round's ``canary_workqueue_wait_seconds``
    buckets: (upper bound s, Rollouts handed out at most that late), cumulative."""
    request_times: dict[str, tuple[float, float]] = field(default_factory=dict)
    """The controller's requests to the API server in the round (watches left out), by verb
    and resource (``PUT rollouts/status``): how many, and their seconds in all
    (``canary_kube_request_duration_seconds``)."""
    throttled: tuple[float, float] = (0.0, 0.0)
    """How many requests the controller sent in the round, and the seconds in all that the
    client-side rate limit held them back (``canary_kube_rate_limiter_wait_seconds``)."""
    split: str = ""
    """Where each bad canary's decision waited, split with Prometheus' samples and query log
    (``bench.decision_split``), as text; empty until ``split_decisions`` fills it."""
    splits: dict[str, Any] = field(default_factory=dict)
    """Rollout → its ``bench.decision_split.Split`` (``split_decisions``)."""
    component_cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds each process (with its process group) used during the round: the
    controller, the emulator and the dev environment's components; ``machine``: every CPU
    second the machine's cores were busy."""

    @property
    def steady_by_resource(self) -> Counter[str]:
        """The steady window's GETs by resource: which read missed the cache."""
        by: Counter[str] = Counter()
        for obj, count in self.steady_objects.items():
            by[obj.split(" ", 1)[0]] += count
        return by

    def per_minute(self, verbs: tuple[str, ...]) -> float:
        total = sum(v for (verb, _), v in self.requests.items() if verb in verbs)
        return 60 * total / self.seconds if self.seconds else 0.0

    def per_reconcile(self, verbs: tuple[str, ...]) -> float:
        total = sum(v for (verb, _), v in self.requests.items() if verb in verbs)
        return total / self.reconciles if self.reconciles else 0.0


def apiserver_requests(api: client.ApiClient) -> Counter[tuple[str, str]]:
    """``apiserver_request_total`` summed by (verb, resource), for canary's resources."""
    request = api.param_serialize(
        method="GET", resource_path="/metrics", auth_settings=["BearerToken"]
    )
    response: Any = api.call_api(*request)
    response.read()
    counts: Counter[tuple[str, str]] = Counter()
    for line in response.data.decode().splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        if labels.get("resource") in OURS and resource not in OTHERS:
            counts[labels["verb"], resource] += int(float(line.rsplit(" ", 1)[1]))
    return counts


def app_deployment(name: str) -> dict[str, Any]:
    """An app's Deployment: one kwok pod labelled ``app: <name>``, failing 0.1% of requests."""
    labels = {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {"sim.canary.dev/error-rate": str(STABLE_ERROR_RATE)},
                },
                "spec": {"containers": [{"name": "app", "image": "app:1"}]},
            },
        },
    }


def scale_analysis(interval: str) -> dict[str, Any]:
    """The policy's analysis every Rollout of the run is judged by (``bench.scale_floor``
    judges the twin's by it too)."""
    return {
        "interval": interval,
        "minRequestsPerStep": 10,
        "successRate": {"min": 95},
        # Ville's bound per release: at N = 1000 (900 good) at most 1.8% chance of any wrong
        # rollback in a run; at N = 50 (45 good) at most 0.09%.
        "compareWithStable": {"falseRollbackRate": FALSE_ROLLBACK_RATE},
    }


def _apply(api: client.ApiClient, setup: Setup) -> None:
    apps: Any = client.AppsV1Api(api)
    core: Any = client.CoreV1Api(api)
    custom: Any = client.CustomObjectsApi(api)
    core.create_namespace({"metadata": {"name": setup.namespace}})
    analysis = scale_analysis(setup.interval)
    if setup.custom_query is not None:
        analysis["metrics"] = [_unbounded("custom", setup.custom_query)]
    policy: dict[str, Any] = {"traffic": {"router": setup.router}, "analysis": analysis}
    if setup.steps is not None:
        policy["steps"] = [{"setWeight": w} for w in setup.steps]
    custom.create_namespaced_custom_object(
        GROUP, VERSION, setup.namespace, "rolloutpolicies",
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "RolloutPolicy",
         "metadata": {"name": "scale"}, "spec": policy},
    )  # fmt: skip

    def app(i: int) -> None:
        name = f"app-{i}"
        labels = {"app": name}
        apps.create_namespaced_deployment(setup.namespace, app_deployment(name))
        core.create_namespaced_service(
            setup.namespace,
            {
                "metadata": {"name": name, "annotations": {"sim.canary.dev/rps": str(setup.rps)}},
                "spec": {"selector": labels, "ports": [{"name": "http", "port": APP_PORT}]},
            },
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(app, range(setup.n)))


def _unbounded(name: str, query: str) -> dict[str, Any]:
    """A custom metric no answer fails (a check needs a bound: an unreachable one)."""
    return {"name": name, "query": query, "max": 1e300}


def _start_rollouts(api: client.ApiClient, setup: Setup, version: int) -> None:
    custom: Any = client.CustomObjectsApi(api)

    def start(i: int) -> None:
        release: dict[str, Any] = {"images": {"app": f"app:{version}"}}
        if setup.bad(i):
            release["templatePatch"] = {
                "metadata": {"annotations": {"sim.canary.dev/error-rate": str(BAD_ERROR_RATE)}}
            }
        spec: dict[str, Any] = {
            "targetRef": {"name": f"app-{i}"},
            "release": release,
            "service": {"name": f"app-{i}", "port": APP_PORT},
            "policyRef": {"name": "scale"},
        }
        if i == 0 and setup.slow_query is not None:
            spec["analysis"] = {"metrics": [_unbounded("slow", setup.slow_query)]}
        custom.create_namespaced_custom_object(
            GROUP, VERSION, setup.namespace, "rollouts",
            {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Rollout",
             "metadata": {"name": f"app-{i}-v{version}"}, "spec": spec},
        )  # fmt: skip

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(start, range(setup.n)))


def canary_weight(route: dict[str, Any]) -> int:
    """The percent of a route's weight on backends named ``*-canary`` (an HTTPRoute's
    ``backendRefs``, or a TrafficSplit's ``backends``, whose weights may be quantities)."""
    spec = route.get("spec") or {}
    if "backends" in spec:
        refs = [(b.get("service"), b.get("weight", 0)) for b in spec.get("backends") or []]
    else:
        refs = [
            (ref.get("name"), ref.get("weight", 1))
            for rule in spec.get("rules") or []
            for ref in rule.get("backendRefs") or []
        ]
    total = canary = Fraction(0)
    for name, weight in refs:
        share = weights.parse_quantity(weight)
        total += share
        canary += share if str(name or "").endswith("-canary") else 0
    return round(100 * canary / total) if total else 0


class Process:
    """A child process with its log file, in its own session."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        with log.open("wb") as handle:
            self.popen = subprocess.Popen(
                argv, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO,
                start_new_session=True, env=env,
            )  # fmt: skip

    def proc(self, key: str) -> str:
        """A line of /proc/<pid>/status."""
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
        return ""

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the process so far."""
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()


def groups_cpu_seconds(pgids: Iterable[int]) -> dict[int, float]:
    """User + system CPU seconds of every live process in each of the process groups
    ``pgids`` (each component runs in its own session, so its group holds it and its
    children), from one pass over ``/proc``."""
    totals = dict.fromkeys(pgids, 0)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        group = int(fields[2])
        if group in totals:
            totals[group] += int(fields[11]) + int(fields[12])
    tick = os.sysconf("SC_CLK_TCK")
    return {group: jiffies / tick for group, jiffies in totals.items()}


def machine_busy_seconds() -> float:
    """CPU seconds the machine's cores have been busy since boot (``/proc/stat``: all but idle
    and iowait)."""
    jiffies = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(jiffies) - jiffies[3] - jiffies[4]) / os.sysconf("SC_CLK_TCK")


def component_pids(env: dict[str, str]) -> dict[str, int]:
    """The dev environment's components (``state.json`` of ``DEV_DIR``, when ``env`` names
    it) by name: pid, which is also its process group."""
    if "DEV_DIR" not in env:
        return {}
    state = DevEnv(Path(env["DEV_DIR"])).state()
    return {} if state is None else {name: p.pid for name, p in state.processes.items()}


def cpu_table(reports: list[Report]) -> str:
    """CPU seconds a minute by process in each round, busiest first, and the machine's."""
    rows = []
    for r in reports:
        if not r.component_cpu or not r.seconds:
            continue
        busy = r.component_cpu.get("machine", 0.0)
        named = {k: v for k, v in r.component_cpu.items() if k != "machine"}
        parts = [
            f"{name} {60 * seconds / r.seconds:.1f}"
            for name, seconds in sorted(named.items(), key=lambda item: -item[1])
        ]
        rest = busy - sum(named.values())
        rows.append(
            f"- N = {r.n}: {', '.join(parts)}, everything else {60 * rest / r.seconds:.1f}; "
            f"the machine {60 * busy / r.seconds:.1f} of {60 * (os.cpu_count() or 1)} "
            "CPU s/min"
        )
    return "\n".join(rows)


def app_index(app: str) -> int:
    """``i`` of the app ``app-i``."""
    return int(app.rsplit("-", 1)[1])


def explain(rollout: dict[str, Any]) -> str:
    """A Rollout's status as a person reads it after a wrong end: phase and message, its
    conditions, and each step with its weight, verdict, counts, checks and message."""
    meta, status = rollout.get("metadata") or {}, rollout.get("status") or {}
    lines = [
        f"Rollout {meta.get('name', '?')}: phase {status.get('phase', '?')} "
        f"(canary weight {status.get('canaryWeight', '?')}): {status.get('message', '')}"
    ]
    for c in status.get("conditions") or []:
        lines.append(
            f"  condition {c.get('type')}={c.get('status')} {c.get('reason')} "
            f"at {c.get('lastTransitionTime')}: {c.get('message', '')}"
        )
    for step in status.get("steps") or []:
        arms = ", ".join(
            f"{arm} {s.get('failures', 0)}/{s.get('requests', 0)} failed"
            for arm in ("canary", "stable")
            if (s := step.get(arm) or {})
        )
        lines.append(
            f"  step {step.get('index')} weight {step.get('weight')} {step.get('verdict')} "
            f"{step.get('startedAt')}..{step.get('finishedAt') or ''} ({arms}): "
            f"{step.get('message', '')}"
        )
        for check in step.get("checks") or []:
            lines.append(
                f"    check {check.get('name')} {check.get('verdict')} value "
                f"{check.get('value')} limit {check.get('limit')}: {check.get('message', '')}"
            )
    return "\n".join(lines)


PIPELINE = ("ScalingReplicaSet", "SuccessfulCreate", "Scheduled")
"""The Events that mark a canary pod's way up: kube-controller-manager scaled the canary's
ReplicaSet up and created its pod, kube-scheduler bound it. kwok, which then marks it Ready,
records none."""


def event_time(event: dict[str, Any]) -> datetime | None:
    """When an Event (core/v1, as listed) happened: its ``eventTime`` (events.k8s.io
    reporters such as kube-scheduler), else its ``firstTimestamp``."""
    at = event.get("eventTime") or event.get("firstTimestamp")
    return datetime.fromisoformat(at) if at else None


def canary_pipeline(
    events: Iterable[dict[str, Any]], app: str, since: datetime
) -> dict[str, float]:
    """Seconds from ``since`` (its Rollout's creation) to the first Event of each ``PIPELINE``
    reason at or after it, of ``app``'s canary Deployment, ReplicaSets and pods; a reason
    that never came is left out."""
    prefix = f"{app}-canary"
    first: dict[str, float] = {}
    for event in events:
        name = (event.get("involvedObject") or {}).get("name", "")
        reason, at = event.get("reason"), event_time(event)
        if reason not in PIPELINE or at is None or at < since:
            continue
        if name == prefix or name.startswith(f"{prefix}-"):
            seconds = (at - since).total_seconds()
            first[reason] = min(first.get(reason, seconds), seconds)
    return first


def pipeline_account(report: Report) -> str:
    """For each group of ``report.pipeline``: how many Rollouts, and per Event reason how many
    of them had it, with the median, p90 and most seconds after the Rollout's creation."""
    parts = []
    for group, (count, by_reason) in report.pipeline.items():
        reasons = []
        for reason in PIPELINE:
            seconds = sorted(by_reason.get(reason, []))
            if not seconds:
                reasons.append(f"{reason} none")
                continue
            reasons.append(
                f"{reason} {len(seconds)} (median {statistics.median(seconds):.1f}, p90 "
                f"{quantile(seconds, 0.9):.1f}, most {seconds[-1]:.1f} s)"
            )
        parts.append(f"{group} ({count}): " + "; ".join(reasons))
    return "; ".join(parts) if parts else "no Rollout to trace"


@dataclass(frozen=True)
class Decision:
    """One bad Rollout's failed step, from the controller's log: seconds from the step's
    start (its ``step_advanced``) to its ``analysis_failed``, and to the tick's first
    ``failing_measured`` of it (None: no tick found it failing; its reconcile failed it on
    custom metrics, or on a look the tick offered unjudged); what the tick found failing first
    (``early look`` or ``window``), and how many ticks found it failing before the decision.
    Found → decided is the queue and the reconcile; start → found, the evidence, Prometheus'
    scrapes and the tick."""

    decided: float
    found: float | None = None
    by: str = ""
    ticks: int = 0
    started: datetime | None = None
    """When the step started (its ``step_advanced``)."""
    failures: int | None = None
    """How many canary failures the tick's first ``failing_measured`` counted."""


SAME_TICK = timedelta(seconds=1)
"""``failing_measured`` lines of one Rollout this close together came from one tick (ticks
are seconds apart; one tick logs its lines within milliseconds)."""


def decisions(lines: Iterable[str], names: set[str]) -> dict[str, Decision]:
    """For each Rollout of ``names`` whose analysis failed in the controller log's ``lines``
    (JSON, one event a line): its ``Decision``."""
    started: dict[str, datetime] = {}
    found: dict[str, tuple[datetime, str, int, datetime, int | None]] = {}
    out: dict[str, Decision] = {}
    for line in lines:
        if '"rollout"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        name, event = entry.get("rollout"), entry.get("event")
        if name not in names or name in out:
            continue
        at = datetime.fromisoformat(entry["timestamp"])
        if event == "step_advanced":
            started[name] = at
            found.pop(name, None)
        elif event == "failing_measured":
            seen = found.get(name)
            if seen is None:
                failed = re.match(r"(\d+)/", str(entry.get("canary", "")))
                counted = int(failed[1]) if failed else None
                found[name] = (at, entry.get("by", ""), 1, at, counted)
            else:  # one tick may log a window and an early look: lines a tick apart count
                first, by, ticks, last, counted = seen
                found[name] = (first, by, ticks + (at - last > SAME_TICK), at, counted)
        elif event == "analysis_failed" and name in started:
            start, seen = started[name], found.get(name)
            decided = (at - start).total_seconds()
            if seen is None:
                out[name] = Decision(decided, started=start)
            else:
                first, by, ticks, _, counted = seen
                out[name] = Decision(
                    decided, (first - start).total_seconds(), by, ticks, start, counted
                )
    return out


def split_decisions(setup: Setup, env: dict[str, str], log: Path, report: Report) -> str:
    """``bench.decision_split``'s account of the measured round (release 3 after a warm-up
    round, else 2), from the controller's ``log`` and the dev environment's Prometheus; what
    failed instead, when Prometheus could not answer. Each Rollout's split goes into
    ``report.splits``."""
    from bench import decision_split  # noqa: PLC0415 (it imports this module)

    query_log = env.get("PROMETHEUS_QUERY_LOG")
    if query_log is None:
        return "not split: no PROMETHEUS_QUERY_LOG"
    lines = log.read_text(errors="replace").splitlines()
    try:
        splits = decision_split.round_splits(
            lines,
            setup.namespace,
            n=setup.n,
            version=3 if setup.warm else 2,
            query_log=Path(query_log),
            prometheus=env["PROMETHEUS_URL"],
        )
    except OSError as error:
        return f"not split: {error}"
    report.splits = splits
    return decision_split.account(splits)


SLOWEST = 3
"""How many of the slowest reactions ``slowest_account`` follows through their parts."""


def slowest_account(report: Report, count: int = SLOWEST) -> str:
    """The ``count`` slowest reactions (at 100 bad Rollouts the slowest is the p99 quoted),
    each through every part the run measured of it: the harness's
    (failures visible → RollingBack seen → route at 0), the controller's log (step start →
    found failing → analysis failed) and Prometheus' (``report.splits``)."""
    if not report.reactions:
        return "the slowest reactions: none timed"
    from bench import decision_split  # noqa: PLC0415 (it imports this module)

    rolling = report.reaction_parts
    slowest = sorted(report.reactions.items(), key=lambda item: -item[1])[:count]
    lines = [f"the {len(slowest)} slowest reactions, in parts:"]
    for app, reaction in slowest:
        parts = []
        if app in rolling:
            before, after = rolling[app]
            parts.append(
                f"failures visible → RollingBack seen {before:.1f} s, → route at 0 {after:.1f} s"
            )
        name, decision = next(
            ((k, d) for k, d in report.decisions.items() if k.rsplit("-v", 1)[0] == app),
            (None, None),
        )
        if decision is not None:
            found = (
                f"found failing {decision.found:.1f} s (by {decision.by or 'no tick'}), "
                if decision.found is not None
                else "not found failing by the tick, "
            )
            parts.append(f"step start → {found}analysis failed {decision.decided:.1f} s")
        split = report.splits.get(name) if name is not None else None
        if split is not None:
            parts.append(
                "; ".join(
                    f"{label} {value:.1f}{unit}" if unit else f"{label} {value:g}"
                    for key, label, unit in decision_split.PARTS
                    if (value := getattr(split, key)) is not None
                )
            )
        lines.append(f"- {app} {reaction:.1f} s: " + "; ".join(parts or ["no parts known"]))
    return "\n".join(lines)


def decisions_account(report: Report) -> str:
    """Where the bad Rollouts' decisions went, from the controller's log (``decisions``)."""
    if not report.decisions:
        return "decisions in the controller's log: none"
    decided = sorted(d.decided for d in report.decisions.values())
    text = (
        f"decisions in the controller's log ({len(decided)} bad Rollouts failed): step start → "
        f"analysis failed median {statistics.median(decided):.1f} s, p90 "
        f"{quantile(decided, 0.9):.1f} s, most {decided[-1]:.1f} s"
    )
    found = [d for d in report.decisions.values() if d.found is not None]
    if not found:
        return f"{text}; none found failing by the tick"
    measured = sorted(d.found for d in found if d.found is not None)
    waited = sorted(d.decided - d.found for d in found if d.found is not None)
    by = Counter(d.by for d in found)
    again = sum(1 for d in found if d.ticks > 1)
    return (
        f"{text}; {len(found)} found failing by the tick ({by['early look']} by an early look, "
        f"{by['window']} by a window): step start → found median "
        f"{statistics.median(measured):.1f} s, p90 {quantile(measured, 0.9):.1f} s; found → "
        f"analysis failed median {statistics.median(waited):.2f} s, p90 "
        f"{quantile(waited, 0.9):.2f} s, most {waited[-1]:.2f} s; found again by a later tick "
        f"before the decision: {again}"
    )


def lines_naming(log: Path, needles: tuple[str, ...]) -> list[str]:
    """The lines of ``log`` that contain any of ``needles``."""
    if not log.exists():
        return []
    with log.open(errors="replace") as handle:
        return [line.rstrip("\n") for line in handle if any(n in line for n in needles)]


def _tail(log: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of ``log``."""
    if not log.exists():
        return []
    return log.read_text(errors="replace").splitlines()[-lines:]


def _controller_metrics(url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as reply:
        return metric_samples(reply.read().decode())


def metric_samples(text: str) -> dict[str, float]:
    """The samples of a /metrics answer, by name with its labels as written."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def query_log_size(path: str | None) -> int:
    """Where the next line of Prometheus' query log will start (0 when there is none yet)."""
    try:
        return os.path.getsize(path) if path else 0
    except FileNotFoundError:
        return 0


def counters_queries(
    path: str | None, offset: int, namespace: str
) -> list[dict[str, float]] | None:
    """The timings Prometheus logged, after byte ``offset`` of its query log at ``path``, for
    each counters query (the controller's one query a tick) that asked for ``namespace``'s
    pods; None when there is no query log."""
    if not path or not os.path.exists(path):
        return None
    found = []
    with open(path, "rb") as log:
        log.seek(offset)
        for line in log:
            try:
                entry = json.loads(line)
            except ValueError:  # a line still being written
                continue
            query = entry.get("params", {}).get("query", "")
            if "response_latency_ms_bucket" in query and namespace in query:
                found.append(entry.get("stats", {}).get("timings", {}))
    return found


def prometheus_account(report: Report) -> str:
    """How many counters queries Prometheus ran and how long they took by its own timings,
    against the controller's count and its own wait for the answers."""
    logged = report.prometheus_snapshots
    if logged is None:
        return "Prometheus' query log: none (no PROMETHEUS_QUERY_LOG)"

    def spread(key: str) -> str:
        values = [t.get(key, 0.0) for t in logged]
        if not values:
            return "-"
        return f"{statistics.median(values):.3f} / {quantile(values, 0.9):.3f}"

    waited = report.query_seconds / report.snapshots if report.snapshots else 0.0
    return (
        f"Prometheus logged {len(logged)} counters queries of this run (the controller counted "
        f"{report.snapshots:.0f} answered); Prometheus' own time a query, median / p90 s: "
        f"total {spread('execTotalTime')}, queued {spread('execQueueTime')}, evaluating "
        f"{spread('evalTotalTime')} (of it the selection and sums {spread('innerEvalTime')}); "
        f"the controller waited {waited:.3f} s on average for an answer, read and parsed"
    )


def _count_work(report: Report, before: dict[str, float], after: dict[str, float]) -> None:
    """The round's reconciles, queries and workers' waits, from two reads of the controller's
    /metrics."""
    report.reconciles = after["canary_reconcile_total"] - before["canary_reconcile_total"]
    snapshot = 'canary_prometheus_query_duration_seconds_count{query="snapshot"}'
    value = 'canary_prometheus_query_duration_seconds_count{query="value"}'
    total = 'canary_prometheus_query_duration_seconds_sum{query="snapshot"}'
    report.snapshots = after.get(snapshot, 0) - before.get(snapshot, 0)
    report.value_queries = after.get(value, 0) - before.get(value, 0)
    report.query_seconds = after.get(total, 0) - before.get(total, 0)
    report.waits = {work: wait_buckets(before, after, work) for work in WORK}
    report.request_times = kube_requests(before, after)
    throttled = "canary_kube_rate_limiter_wait_seconds"
    report.throttled = (
        after.get(f"{throttled}_count", 0) - before.get(f"{throttled}_count", 0),
        after.get(f"{throttled}_sum", 0) - before.get(f"{throttled}_sum", 0),
    )


def kube_requests(
    before: dict[str, float], after: dict[str, float]
) -> dict[str, tuple[float, float]]:
    """The controller's requests to the API server between two reads of its /metrics, by verb
    and resource (``PUT rollouts/status``): how many, and their seconds in all."""
    found: dict[str, tuple[float, float]] = {}
    prefix = "canary_kube_request_duration_seconds_count{"
    for name, value in after.items():
        if not name.startswith(prefix):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', name))
        count = value - before.get(name, 0.0)
        total = name.replace("_count{", "_sum{", 1)
        seconds = after.get(total, 0.0) - before.get(total, 0.0)
        if count > 0:
            what = "/".join(p for p in (labels["resource"], labels["subresource"]) if p)
            found[f"{labels['verb']} {what or '(discovery)'}"] = (count, seconds)
    return found


def requests_account(report: Report) -> str:
    """The controller's requests to the API server in the round, busiest first, with their mean
    time, and how long the client-side rate limit held them back."""
    if not report.request_times:
        return "none counted"
    parts = [
        f"{what} {count:,.0f} at {seconds / count:.3f} s"
        for what, (count, seconds) in sorted(report.request_times.items(), key=lambda i: -i[1][0])
    ]
    sent, held = report.throttled
    limit = f"{held / sent:.3f} s" if sent else "-"
    return f"{'; '.join(parts)}; the client-side rate limit held a request {limit} on average"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(url: str, log: Path, deadline: float) -> None:
    """Until the controller's /readyz answers 200 (it leads and its caches are synced)."""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=5) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the controller did not get ready; log:\n{log.read_text()[-3000:]}")


def _failures_visible(prometheus: str, namespace: str) -> set[str]:
    """Canary Deployments whose failures Prometheus has samples of."""
    query = (
        f'sum by (deployment) (response_total{{namespace="{namespace}", direction="inbound", '
        f'classification="failure", deployment=~".*-canary"}}) > 0'
    )
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as reply:
        result = json.loads(reply.read())["data"]["result"]
    return {r["metric"]["deployment"] for r in result}


class Harness:
    """The apps of a run, the emulator, the controller, and the harness's own watches of the
    routes and Rollouts (a watch each: the harness adds no GET and no LIST per second)."""

    def __init__(self, setup: Setup, kubeconfig: Path, env: dict[str, str], workdir: Path) -> None:
        self.setup, self.env = setup, env
        self.api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig)
        )
        workdir.mkdir(parents=True, exist_ok=True)
        _apply(self.api, setup)
        controller_kubeconfig = self._account(workdir)
        self.audit = accounts.AuditLog(
            Path(env["AUDIT_LOG"]), f"system:serviceaccount:{setup.namespace}:{ACCOUNT}", OURS
        )
        child_env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        ns, port = setup.namespace, _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.emulator = Process(
            [sys.executable, "-m", "canary.emulator", "--kubeconfig", str(kubeconfig),
             "--targets-dir", env["PROMETHEUS_TARGETS_DIR"], "--targets-file", f"{ns}.json",
             "--namespace", ns, "--port", "0",
             "--policy-grpc", env.get("LINKERD_POLICY_GRPC", "")],
            workdir / "emulator.log", child_env,
        )  # fmt: skip
        self.controller = Process(
            [sys.executable, "-m", "canary", "run", "--kubeconfig", str(controller_kubeconfig),
             "--prometheus-url", env["PROMETHEUS_URL"], "--watch-namespace", ns,
             "--tick", setup.tick, "--no-leader-elect", "--http-address", "127.0.0.1",
             "--http-port", str(port),
             "--workers", str(setup.workers), "--kube-qps", str(setup.kube_qps),
             "--kube-burst", str(setup.kube_burst), "--log-level", setup.log_level,
             "--prometheus-timeout", setup.prometheus_timeout],
            workdir / "controller.log", {**child_env, "KUBECONFIG": str(controller_kubeconfig)},
        )  # fmt: skip
        if setup.nice_stand_ins:
            renice([self.emulator.popen.pid, *stand_in_pids(env)], STAND_IN_NICE)
        self.stop = threading.Event()
        custom: Any = client.CustomObjectsApi(self.api)
        self.custom = custom
        group, version, plural = ROUTES[setup.router]
        self.routes = Informer(
            setup.router,
            [(ns, lambda **kw: custom.list_namespaced_custom_object(
                group, version, ns, plural, **kw))],
        )  # fmt: skip
        self.rollouts = Informer(
            "Rollout",
            [(ns, lambda **kw: custom.list_namespaced_custom_object(
                GROUP, VERSION, ns, "rollouts", **kw))],
        )  # fmt: skip
        apps: Any = client.AppsV1Api(self.api)
        self.canaries = Informer(
            "Deployment",
            [(ns, lambda **kw: apps.list_namespaced_deployment(
                ns, label_selector=ROLLOUT_LABEL, **kw))],
            _release_of,
        )  # fmt: skip
        """The canary Deployments' release annotation (which Rollout's release each runs)."""
        for informer in (self.routes, self.rollouts, self.canaries):
            threading.Thread(target=informer.run, args=(None, self.stop), daemon=True).start()
        try:
            _wait_ready(self.url, workdir / "controller.log", time.monotonic() + 180)
            for informer in (self.routes, self.rollouts, self.canaries):
                informer.wait_synced(60)
        except BaseException:
            self.close()
            raise

    def _account(self, workdir: Path) -> Path:
        """The controller's own identity: a ServiceAccount bound to cluster-admin (the run
        measures load, not RBAC, which the e2e tests check against the chart's), so that the
        audit log tells its requests from everyone else's on a shared cluster."""
        ns = self.setup.namespace
        core: Any = client.CoreV1Api(self.api)
        rbac: Any = client.RbacAuthorizationV1Api(self.api)
        core.create_namespaced_service_account(ns, {"metadata": {"name": ACCOUNT}})
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": f"{ACCOUNT}-{ns}"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": ns}],
            }
        )
        return accounts.token_kubeconfig(
            self.api, ns, ACCOUNT, workdir / "controller.kubeconfig", hours=48
        )

    def reconciles(self) -> float:
        return _controller_metrics(self.url)["canary_reconcile_total"]

    def phases(self) -> dict[str, str]:
        return {
            r["metadata"]["name"]: (r.get("status") or {}).get("phase", "")
            for r in self.rollouts.values(self.setup.namespace)
        }

    def creating(self, phases: dict[str, str]) -> set[str]:
        """``creating`` on the harness's view of the canary Deployments."""
        ns = self.setup.namespace
        return creating(phases, lambda deployment: self.canaries.get(ns, deployment))

    def rollout(self, name: str) -> dict[str, Any]:
        """The cached Rollout ``name`` (empty when there is none)."""
        for r in self.rollouts.values(self.setup.namespace):
            if r["metadata"]["name"] == name:
                return dict(r)
        return {}

    def diagnose(self, names: list[str], lines: int = 40) -> str:
        """Why each of ``names`` ended as it did: its status (``explain``), the controller's
        and the emulator's log lines that name it, and the controller log's tail."""
        parts = []
        for name in names:
            app = name.rsplit("-v", 1)[0]
            parts.append(explain(self.rollout(name)))
            for process in (self.controller, self.emulator):
                naming = lines_naming(process.log, (name, f"{app}-canary", f'"{app}"'))
                parts.append(f"{process.log.name} lines naming {name} ({len(naming)}):")
                parts.extend(f"  {line}" for line in naming[-lines:])
        tail = _tail(self.controller.log, lines)
        parts.append(f"{self.controller.log.name}, last {len(tail)} lines:")
        parts.extend(f"  {line}" for line in tail)
        return "\n".join(parts)

    def round(self, version: int, until: float = float("inf")) -> Report:
        """Release version ``version`` of every app; run until all are finished (or the
        round's timeout, or the monotonic time ``until``); measure."""
        setup, report = self.setup, Report(self.setup.n)
        requests_before = apiserver_requests(self.api)
        controller_before = self.audit.requests()
        metrics_before = _controller_metrics(self.url)
        cpu_before = self.controller.cpu_seconds()
        groups_before = self.group_cpu()
        query_log = self.env.get("PROMETHEUS_QUERY_LOG")
        logged_before = query_log_size(query_log)
        log_before = self.controller.log.stat().st_size
        started = time.monotonic()
        # The looks begin with the creation, not after it: creating 1000 Rollouts takes tens
        # of seconds, in which the first bad ones can fail and roll back unseen (run F left
        # app-9, app-19, app-29 and app-39 untimed so).
        creator = ThreadPoolExecutor(1, thread_name_prefix="creating")
        created = creator.submit(_start_rollouts, self.api, setup, version)
        creator.shutdown(wait=False)
        watch = _Watch(self, started, version)
        _look(watch, report, created, min(started + setup.timeout, until))
        report.seconds = time.monotonic() - started
        report.prometheus_snapshots = counters_queries(query_log, logged_before, setup.namespace)
        report.requests = apiserver_requests(self.api) - requests_before
        report.controller_requests = self.audit.requests() - controller_before
        metrics = _controller_metrics(self.url)
        _count_work(report, metrics_before, metrics)
        report.peak_rss_mb = self.rss_mb("VmHWM")
        report.cpu_seconds = self.controller.cpu_seconds() - cpu_before
        report.component_cpu = {
            name: seconds - groups_before.get(name, 0.0)
            for name, seconds in self.group_cpu().items()
        }
        report.phases = watch.last
        _time_reactions(report, watch, setup, version)
        report.decisions = self.decisions(version, log_before)
        for i in range(setup.n):
            phase = watch.last.get(f"app-{i}-v{version}", "")
            wrong = phase == GOOD if setup.bad(i) else phase in (BAD, "Failed")
            if wrong:
                name = f"app-{i}-v{version}"
                message = (self.rollout(name).get("status") or {}).get("message", "")
                report.wrong.append(f"{name}: {phase}: {message}")
            if phase not in FINISHED:
                report.unfinished += 1
        if report.wrong or (report.unfinished and not setup.early):
            running = [n for n, p in sorted(watch.last.items()) if p not in FINISHED]
            explained = [w.split(":", 1)[0] for w in report.wrong] + running[:3]
            report.diagnosis = self.diagnose(explained)
            not_ready = [w.split(":", 1)[0] for w in report.wrong if "not ready" in w]
            promoted = [n for n, p in sorted(watch.last.items()) if p == GOOD][:100]
            report.pipeline = self.pipeline({"not ready": not_ready, "promoted": promoted})
        return report

    def decisions(self, version: int, offset: int) -> dict[str, Decision]:
        """The bad Rollouts' decisions of round ``version``, from the controller's log past
        ``offset`` (its size when the round began)."""
        bad = {f"app-{i}-v{version}" for i in range(self.setup.n) if self.setup.bad(i)}
        with self.controller.log.open("rb") as handle:
            handle.seek(offset)
            return decisions((line.decode(errors="replace") for line in handle), bad)

    def pipeline(
        self, groups: dict[str, list[str]]
    ) -> dict[str, tuple[int, dict[str, list[float]]]]:
        """For each group of Rollouts: how long after its creation each one's canary had
        each Event of ``PIPELINE`` (one list of the namespace's Events)."""
        core: Any = client.CoreV1Api(self.api)
        answer = core.list_namespaced_event(self.setup.namespace, _preload_content=False)
        events = json.loads(answer.data)["items"]
        out: dict[str, tuple[int, dict[str, list[float]]]] = {}
        for group, names in groups.items():
            traced, by_reason = 0, dict[str, list[float]]()
            for name in names:
                created = self.rollout(name).get("metadata", {}).get("creationTimestamp")
                if not created:
                    continue
                since = datetime.fromisoformat(created)
                traced += 1
                app = name.rsplit("-v", 1)[0]
                for reason, seconds in canary_pipeline(events, app, since).items():
                    by_reason.setdefault(reason, []).append(seconds)
            out[group] = (traced, by_reason)
        return out

    def group_cpu(self) -> dict[str, float]:
        """CPU seconds so far of the controller, the emulator and the dev environment's
        components (each with its process group), and the machine's busy seconds."""
        pids = {
            "controller": self.controller.popen.pid,
            "emulator": self.emulator.popen.pid,
            **component_pids(self.env),
        }
        seconds = groups_cpu_seconds(pids.values())
        found = {name: seconds[pid] for name, pid in pids.items()}
        return {**found, "machine": machine_busy_seconds()}

    def rss_mb(self, key: str = "VmRSS") -> float:
        """The controller's resident memory now (VmRSS) or at its peak (VmHWM), in MB."""
        return int(self.controller.proc(key).split()[0]) / 1024

    def delete_rollouts(self, timeout: float = 600.0) -> None:
        """Delete every Rollout (a soak round's end: the caches must let them go). A loaded
        API server may time out deleting a thousand at once (504), or drop the connection,
        after deleting some: the collection is asked again, for what is left, until
        ``timeout``."""
        delete_all(
            lambda: self.custom.delete_collection_namespaced_custom_object(
                GROUP, VERSION, self.setup.namespace, "rollouts"
            ),
            timeout,
        )

    def cached(self) -> dict[str, float]:
        """The controller's caches now: kind → objects held, and ``<kind> index`` → index
        keys held (``canary_cache_objects``, ``canary_cache_index_keys``)."""
        found = {}
        for name, value in _controller_metrics(self.url).items():
            match = re.fullmatch(r'canary_cache_(objects|index_keys)\{kind="([^"]*)"\}', name)
            if match:
                found[match[2] + (" index" if match[1] == "index_keys" else "")] = value
        return found

    def rollouts_let_go(self, timeout: float = 120.0) -> float:
        """Seconds until the controller's caches hold no Rollout and no index key of one
        (after ``delete_rollouts``); ``timeout`` plus one when they still do by then."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            held = self.cached()
            if held.get("Rollout", 0) == 0 and held.get("Rollout index", 0) == 0:
                return time.monotonic() - started
            time.sleep(1)
        return timeout + 1

    def routes_accepted(self, until: float) -> int:
        """Wait (until the monotonic time ``until``) for every app's route to be accepted by
        its parent (HTTPRoute status; a TrafficSplit has none, so all count); return how many
        are."""
        ns = self.setup.namespace
        while True:
            routes = self.routes.values(ns)
            accepted = sum(
                1 for r in routes if self.setup.router == "TrafficSplit" or _accepted(r, ns)
            )
            if accepted >= self.setup.n or time.monotonic() >= until:
                return accepted
            time.sleep(5)

    def close(self) -> None:
        self.stop.set()
        self.controller.stop()
        self.emulator.stop()
        if self.setup.nice_stand_ins:  # the dev environment outlives the run: back to 0
            renice(stand_in_pids(self.env), 0)
        client.CoreV1Api(self.api).delete_namespace(self.setup.namespace)
        rbac = client.RbacAuthorizationV1Api(self.api)
        rbac.delete_cluster_role_binding(f"{ACCOUNT}-{self.setup.namespace}")
        self.api.close()  # type: ignore[no-untyped-call]


def _look(watch: _Watch, report: Report, created: Future[None], end: float) -> None:
    """Look once a second until the Rollouts are created and ``watch`` is done, or the
    monotonic time ``end``; raises what the creation raised."""
    while time.monotonic() < end and not (created.done() and watch.done(report)):
        if created.done() and created.exception() is not None:
            break
        time.sleep(1)
        try:
            watch.observe(report)
        except OSError as error:  # Prometheus or /metrics timed out (saturated): look again
            report.missed_looks += 1
            print(f"look missed ({error}); {report.missed_looks} so far", flush=True)
    created.result()


def _time_reactions(report: Report, watch: _Watch, setup: Setup, version: int) -> None:
    """The bad Rollouts' reaction times, whole and in parts. Bad apps only: a good canary's
    rare failures (0.1%) are visible too, and its route is back at 0 once promoted, which is
    no reaction."""
    report.bad = sum(1 for i in range(setup.n) if setup.bad(i))
    for i in range(setup.n):
        app = f"app-{i}"
        if setup.bad(i) and app not in watch.back:
            report.untimed[app] = (
                "its route at 0 after its failures were seen"
                if app in watch.visible
                else "its failures while this round's canary had traffic"
                if app in watch.shifted
                else "its canary with traffic in a judged phase"
            )
    for app, back in watch.back.items():
        if not setup.bad(app_index(app)):
            continue
        visible = watch.visible[app]
        report.reactions[app] = back - visible
        seen = report.history.get(f"{app}-v{version}", [])
        rolling = next((watch.started + t for t, p in seen if p == "RollingBack"), None)
        if rolling is not None:
            report.reaction_parts[app] = (rolling - visible, back - rolling)


def _shifted(routes: list[dict[str, Any]], phases: dict[str, str], version: int) -> set[str]:
    """The apps whose route sends their canary traffic while this round's Rollout (release
    ``version``) is being judged. Only then is the canary's traffic this round's: at the start
    of a round the last release's Rollout may still be rolling its route back, and that
    canary's failures are still in Prometheus, which would time a reaction from before this
    round's canary ran (run T timed one at 353 s where the controller rolled back 97 s after the
    step began)."""
    return {
        app
        for r in routes
        if canary_weight(r) > 0
        and phases.get(f"{(app := r['metadata']['name'])}-v{version}") in measuring.JUDGED_PHASES
    }


class _Watch:
    """What the harness sees during a round: when each bad canary's failures became visible
    in Prometheus, when its route was back at 0, and a steady window of Progressing Rollouts
    in which the API server's GET count is compared."""

    def __init__(self, harness: Harness, started: float, version: int) -> None:
        self.h = harness
        self.version = version
        self.visible: dict[str, float] = {}
        self.shifted: set[str] = set()
        self.back: dict[str, float] = {}
        self.last: dict[str, str] = {}
        self.steady: tuple[float, float, Counter[str]] | None = None
        """A steady window's start, reconciles and GETs by object so far."""
        self.started = started
        self.seen: set[tuple[str, str]] = set()
        self.measured: tuple[float, float, float, Counter[str]] | None = None
        """A steady window's start, end, reconciles and GETs by object, waiting out its
        grace."""

    def done(self, report: Report) -> bool:
        if self.h.setup.early and report.steady_gets >= 0:
            ended = set(self.last.values())
            return GOOD in ended and BAD in ended
        return bool(self.last) and all(p in FINISHED for p in self.last.values())

    def observe(self, report: Report) -> None:
        now, ns = time.monotonic(), self.h.setup.namespace
        failing = _failures_visible(self.h.env["PROMETHEUS_URL"], ns)
        routes = self.h.routes.values(ns)
        phases = self.h.phases()
        # Failures count once this round's canary has had traffic (after a warm-up round,
        # the last release's canary series may still be in Prometheus: ``_shifted``).
        self.shifted.update(_shifted(routes, phases, self.version))
        for app in (dep.removesuffix("-canary") for dep in failing):
            if app in self.shifted:
                self.visible.setdefault(app, now)
        for route in routes:
            app = route["metadata"]["name"]
            if canary_weight(route) == 0 and app in self.visible and app not in self.back:
                self.back[app] = now
        for name, phase in phases.items():
            if phase and (name, phase) not in self.seen:
                self.seen.add((name, phase))
                report.entered.setdefault(phase, []).append(now - self.started)
                report.history.setdefault(name, []).append((now - self.started, phase))
        # Steady: every Rollout started, none creating its canary or promoting. The only
        # reconciles that GET are those that create a canary (while the Rollout is Initializing
        # and its canary Deployment does not run its release yet) or promote (a write re-reads
        # what it replaces); a Rollout waiting (for pods, for the mesh to accept its route),
        # measuring or rolling back reads only the cache, so those phase changes keep the
        # window. At least one Rollout must still be running, or the window would hold no
        # reconcile at all.
        entered = {p for name, p in phases.items() if self.last.get(name) != p}
        quiet = (
            len(phases) == self.h.setup.n
            and not entered & GETTING
            and all(p not in ("", "Pending", "Promoting") for p in phases.values())
            and not self.h.creating(phases)
            and any(p not in FINISHED for p in phases.values())
        )
        self.last = phases
        if report.steady_gets >= 0:
            return
        if not quiet:
            # A reconcile that GETs may have run: the window starts again (and a measured one
            # waiting out its grace is dropped: that reconcile's GET may lie inside it).
            self.steady, self.measured = None, None
        elif self.measured is not None:
            start, end, reconciles, objects = self.measured
            if now - end >= GRACE:
                report.steady_window = (start - self.started, end - self.started)
                report.steady_reconciles, report.steady_objects = reconciles, objects
                report.steady_gets = sum(objects.values())
        elif self.steady is None:
            self.steady = (now, self.h.reconciles(), self.h.audit.gets())
        elif now - self.steady[0] >= self.h.setup.steady:
            start, reconciles, gets = self.steady
            objects = self.h.audit.gets() - gets
            self.measured = (start, now, self.h.reconciles() - reconciles, objects)


def delete_all(delete: Callable[[], object], timeout: float, pause: float = 5.0) -> None:
    """Call ``delete`` (a delete-collection) until it answers, for up to ``timeout`` seconds:
    again, after ``pause``, when the API server timed out (504), was unavailable (503) or
    dropped the connection; any other error, or the last one after ``timeout``, is raised."""
    end = time.monotonic() + timeout
    while True:
        try:
            delete()
            return
        except (client.ApiException, urllib3.exceptions.HTTPError) as error:
            if not _transient(error) or time.monotonic() + pause > end:
                raise
            reason = (
                f"{error.status} {error.reason}"
                if isinstance(error, client.ApiException)
                else type(error).__name__
            )
            print(f"deleting the Rollouts failed at the API server ({reason}): again", flush=True)
            time.sleep(pause)


def _transient(error: Exception) -> bool:
    if isinstance(error, client.ApiException):
        return error.status in (503, 504)
    return True  # urllib3: the connection was refused, reset or dropped


def creating(phases: dict[str, str], release_of: Callable[[str], str | None]) -> set[str]:
    """The Initializing Rollouts whose canary Deployment does not run their release yet
    (``release_of``: a canary Deployment's name → the Rollout it runs, None when it does not
    exist): their next reconcile creates it, which GETs by design. At N = 1000 under the
    client's rate limit, a canary was made up to a minute after its Rollout was first seen
    Initializing (run I)."""
    return {
        name
        for name, phase in phases.items()
        if phase == "Initializing" and release_of(f"{name.rsplit('-v', 1)[0]}-canary") != name
    }


def _release_of(deployment: dict[str, Any]) -> str:
    """The Rollout whose release a canary Deployment runs (its release annotation is the
    Rollout's name, a dot and a digest: ``workloads.release_id``), or ""."""
    annotations = deployment.get("metadata", {}).get("annotations") or {}
    return str(annotations.get(RELEASE_ANNOTATION, "")).rsplit(".", 1)[0]


def _accepted(route: dict[str, Any], namespace: str) -> bool:
    """What the controller waits for: Linkerd's policy controller accepted the route for the
    app's apex Service (named as the route, ``APP_PORT``) and resolved its backends."""
    return httproute.accepted_for(route, namespace, route["metadata"]["name"], APP_PORT)


def run(setup: Setup, kubeconfig: Path, env: dict[str, str], workdir: Path) -> Report:
    """Set up, release every app once, run until all are finished (or ``setup.timeout``)."""
    harness = Harness(setup, kubeconfig, env, workdir)
    try:
        if not setup.warm:
            return harness.round(2)
        print(warm_up(harness), flush=True)
        return harness.round(3)
    finally:
        harness.close()


def warm_up(harness: Harness) -> str:
    """An unmeasured first round (release 2, at most ``setup.warm`` seconds), its Rollouts
    deleted, then a wait (up to 10 minutes) for the mesh to accept every route: what a fleet's
    second release finds. Before a first release no route can be accepted, as its canary
    Service, one of its backends, does not exist yet. What it did, in a sentence."""
    setup = harness.setup
    first = harness.round(2, time.monotonic() + setup.warm)
    harness.delete_rollouts()
    let_go = harness.rollouts_let_go()
    waited = time.monotonic()
    accepted = harness.routes_accepted(waited + 600)
    return (
        f"warm-up round (release 2, {first.seconds:.0f} s, not measured): {timeline(first)}; "
        f"Rollouts let go in {let_go:.0f} s; routes accepted by the mesh: {accepted} of "
        f"{setup.n} after {time.monotonic() - waited:.0f} s more"
    )


@dataclass
class Soak:
    """What a soak measured: RSS every minute, the rounds, and after each round's deletion
    how long the controller's caches took to hold no Rollout (and what they held then)."""

    samples: list[tuple[float, float]] = field(default_factory=list)
    """(minutes since the start, controller RSS MB), every minute."""
    rounds: list[Report] = field(default_factory=list)
    let_go: list[float] = field(default_factory=list)
    """Seconds from each round's deletion to no Rollout (nor index key) in the caches."""
    cached: list[dict[str, float]] = field(default_factory=list)
    """The caches' sizes by kind once each round's Rollouts were let go."""
    warm_up: str = ""
    """What the unmeasured first round did (``--warm``), before the soak's minutes began."""


def soak(
    setup: Setup, kubeconfig: Path, env: dict[str, str], workdir: Path, minutes: float
) -> Soak:
    """Release every app again and again for ``minutes``, deleting the finished Rollouts after
    each round and waiting for the controller's caches to let them go; the controller's RSS
    sampled every minute. With ``setup.warm``, first ``run``'s unmeasured warm-up round (not
    counted in ``minutes``): without it, the first round's releases wait for the mesh to
    accept routes whose canary Services they create, and some wait out their progress
    deadline."""
    harness = Harness(setup, kubeconfig, env, workdir)
    found = Soak()
    try:
        version = 2
        if setup.warm:
            found.warm_up = warm_up(harness)
            print(found.warm_up, flush=True)
            version = 3
        started = time.monotonic()

        def sample() -> None:
            while not harness.stop.wait(60):
                found.samples.append(((time.monotonic() - started) / 60, harness.rss_mb()))

        threading.Thread(target=sample, daemon=True).start()
        until = started + minutes * 60
        while time.monotonic() < until:
            found.rounds.append(harness.round(version, until))
            harness.delete_rollouts()
            found.let_go.append(harness.rollouts_let_go())
            found.cached.append(harness.cached())
            print(
                f"soak round {len(found.rounds)}: {timeline(found.rounds[-1])}; Rollouts let go "
                f"in {found.let_go[-1]:.0f} s; caches {found.cached[-1]}",
                table(found.rounds[-1:], parse_duration(setup.tick).total_seconds()),
                f"workers took Rollouts: {waits(found.rounds[-1])}",
                steady_account(found.rounds[-1]),
                sep="\n",
                flush=True,
            )
            version += 1
        return found
    finally:
        harness.close()


def slope(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of RSS over time, MB per hour."""
    if len(samples) < 2:
        return float("nan")
    return statistics.linear_regression(*zip(*samples, strict=True)).slope * 60


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` as this benchmark quotes it: the value at 0-based rank
    ``int(q * n)`` of the sorted values (for 100 values, p90 is the 91st); NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def table(reports: list[Report], tick: float) -> str:
    """The Markdown table of the runs."""
    rows = [
        "| N | run s | peak RSS MB | CPU s/min | reconciles | API writes/reconcile | "
        "GETs/reconcile (all) | controller GETs in steady window | "
        "API req/min (GET, LIST, writes) | "
        "queries/tick | query s (mean) | reaction median / p99 s (bad Rollouts timed) | wrong | "
        "unfinished |",
        "|" + "---|" * 14,
    ]
    writes = ("POST", "PUT", "PATCH", "DELETE", "APPLY", "UPDATE", "CREATE")
    for r in reports:
        ticks = r.seconds / tick
        cpu = 60 * r.cpu_seconds / r.seconds
        per_minute = ", ".join(
            f"{r.per_minute(verbs):.0f}" for verbs in (("GET",), ("LIST",), writes)
        )
        query = r.query_seconds / r.snapshots if r.snapshots else 0.0
        latencies = list(r.reactions.values())
        median = statistics.median(latencies) if latencies else float("nan")
        rows.append(
            f"| {r.n} | {r.seconds:.0f} | {r.peak_rss_mb:.0f} | {cpu:.1f} | {r.reconciles:.0f} "
            f"| {r.per_reconcile(writes):.2f} | {r.per_reconcile(('GET',)):.2f} "
            f"| {r.steady_gets} (of {r.steady_reconciles:.0f} reconciles) | {per_minute} "
            f"| {r.snapshots / ticks:.2f} | {query:.3f} "
            f"| {median:.1f} / {quantile(latencies, 0.99):.1f} ({len(latencies)} of {r.bad}) "
            f"| {len(r.wrong)} "
            f"| {r.unfinished} |"
        )
    return "\n".join(rows)


def wait_buckets(
    before: dict[str, float], after: dict[str, float], work: str
) -> list[tuple[float, float]]:
    """``canary_workqueue_wait_seconds`` of ``work`` between two reads of /metrics: (upper
    bound, count at most that late), cumulative, soonest first (+Inf last)."""
    found = []
    for name, value in after.items():
        if name.startswith("canary_workqueue_wait_seconds_bucket{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', name))
            if labels.get("work") == work:
                found.append((float(labels["le"]), value - before.get(name, 0.0)))
    return sorted(found)


def wait_quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """The upper bound of the bucket holding the ``q`` quantile (nan with no sample)."""
    if not buckets or buckets[-1][1] <= 0:
        return float("nan")
    total = buckets[-1][1]
    return next(bound for bound, count in buckets if count >= q * total)


def reaction_parts(report: Report) -> str:
    """Where the bad Rollouts' reaction went: before and after they were seen RollingBack; and
    the bad Rollouts not timed, by what the looks never saw."""
    parts = []
    for name, values in (
        ("failures visible → RollingBack seen", [a for a, _ in report.reaction_parts.values()]),
        ("RollingBack seen → route at 0", [b for _, b in report.reaction_parts.values()]),
    ):
        if values:
            median, p99 = statistics.median(values), quantile(values, 0.99)
            parts.append(f"{name} median {median:.1f} s, p99 {p99:.1f} s")
    text = (
        f"reaction in parts ({len(report.reaction_parts)} Rollouts): " + "; ".join(parts)
        if parts
        else "reaction in parts: no bad Rollout was seen RollingBack"
    )
    if report.untimed:
        never = Counter(report.untimed.values())
        text += f"; {len(report.untimed)} untimed, the looks never saw " + ", ".join(
            f"{why} ({count}: {', '.join(a for a, w in report.untimed.items() if w == why)})"
            for why, count in never.most_common()
        )
    return text


def waits(report: Report) -> str:
    """How late the workers took Rollouts, by work (``canary_workqueue_wait_seconds``): what
    the queue's backlog cost."""
    parts = []
    for work, buckets in sorted(report.waits.items()):
        count = buckets[-1][1] if buckets else 0
        parts.append(
            f"{work} {count:.0f} taken, median ≤ {wait_quantile(buckets, 0.5):g} s, "
            f"p99 ≤ {wait_quantile(buckets, 0.99):g} s past due"
        )
    return "; ".join(parts)


def steady_account(report: Report, most: int = 20) -> str:
    """The steady window: when it was, its GETs by resource, and for each object GET in it
    (the first ``most``) the phases its app's Rollout was first seen in, with when: a GET
    near a phase that GETs by design (creating a canary, promoting) that the harness saw
    late is not a cache miss."""
    if report.steady_window is None:
        return "steady window: none measured"
    start, end = report.steady_window
    lines = [
        f"steady window {start:.0f}-{end:.0f} s (+{GRACE:.0f} s grace): {report.steady_gets} "
        f"GETs, {report.steady_reconciles:.0f} reconciles; by resource: "
        + (", ".join(f"{res} {n}" for res, n in report.steady_by_resource.most_common()) or "-")
    ]
    for obj, count in report.steady_objects.most_common(most):
        app = re.search(r"app-\d+", obj)
        phases = [
            f"{name} " + ", ".join(f"{phase} {t:.0f}" for t, phase in seen)
            for name, seen in sorted(report.history.items())
            if app and name.startswith(f"{app[0]}-v")
        ]
        lines.append(f"  {obj} x{count}: {'; '.join(phases) or 'no Rollout seen'}")
    if len(report.steady_objects) > most:
        lines.append(f"  ... and {len(report.steady_objects) - most} more objects")
    return "\n".join(lines)


def timeline(report: Report) -> str:
    """When the Rollouts of a run first showed each phase: how many, first, median, last
    (seconds from the round's start), in the order the phases were first reached."""
    order = sorted(report.entered.items(), key=lambda item: min(item[1]))
    return "; ".join(
        f"{phase} {len(times)}: {min(times):.0f}/{statistics.median(times):.0f}/{max(times):.0f}s"
        for phase, times in order
    )


def _env(dev_dir: Path) -> dict[str, str]:
    lines = (dev_dir / "env").read_text().splitlines()
    found = dict(line.split("=", 1) for line in lines if "=" in line)
    return {**found, "DEV_DIR": str(dev_dir)}


def _replace_section(path: Path, heading: str, text: str) -> None:
    """Put ``text`` (starting with ``heading``) in place of that section of ``path``."""
    old = path.read_text() if path.exists() else ""
    start = old.find(f"\n{heading}\n")
    if start >= 0:
        end = old.find("\n## ", start + 1)
        old = old[:start] + (old[end:] if end >= 0 else "")
    path.write_text(old.rstrip("\n") + "\n\n" + text)


def _machine() -> str:
    load = os.getloadavg()
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}: {os.cpu_count()} cores, "
        f"load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} at the end (a shared machine)"
    )


SCALE = "## Controller scale (BENCHMARK.md §2)"
SOAK = "## Controller soak (issue 16)"


def _command(args: argparse.Namespace, sizes: list[int]) -> str:
    """The bench.scale command a report quotes: the sizes, then every flag given a value other
    than its default (``_parser``'s), so the command reruns the same setup."""
    parser = _parser()

    def given(flags: tuple[str, ...]) -> list[tuple[str, Any]]:
        chosen = ((flag, getattr(args, flag.replace("-", "_"))) for flag in flags)
        return [
            (flag, value)
            for flag, value in chosen
            if value != parser.get_default(flag.replace("-", "_"))
        ]

    numbers = ("workers", "kube-qps", "kube-burst", "timeout", "warm", "rps")
    durations = ("interval", "tick", "prometheus-timeout")
    return (
        f"python -m bench.scale {' '.join(f'--n {n}' for n in sizes)}"
        + "".join(f" --{flag} {value:g}" for flag, value in given(numbers))
        + "".join(f" --router {value}" for _, value in given(("router",)))
        + (" --nice-stand-ins" if args.nice_stand_ins else "")
        + "".join(f" --{flag} {value}" for flag, value in given(durations))
        + "".join(
            f" --{flag} {shlex.quote(query)}"
            for flag, query in (
                ("custom-query", args.custom_query),
                ("slow-query", args.slow_query),
            )
            if query is not None
        )
    )


def _parser() -> argparse.ArgumentParser:
    """bench.scale's flags."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, action="append", help="Rollouts at once (repeatable)")
    parser.add_argument("--dev-dir", default=str(REPO / ".dev"), help="a running dev environment")
    parser.add_argument("--interval", default="15s", help="analysis interval (default 15s)")
    parser.add_argument("--workers", type=int, default=4, help="controller workers (default 4)")
    parser.add_argument(
        "--kube-qps", type=float, default=20.0, help="the controller's --kube-qps (default 20)"
    )
    parser.add_argument(
        "--kube-burst", type=int, default=30, help="the controller's --kube-burst (default 30)"
    )
    parser.add_argument(
        "--prometheus-timeout", default="30s",
        help="the controller's --prometheus-timeout (default 30s)",
    )  # fmt: skip
    parser.add_argument(
        "--rps", type=int, default=Setup.rps, help=f"each app's req/s (default {Setup.rps})"
    )
    parser.add_argument(
        "--tick", default=Setup.tick,
        help=f"the controller's --tick (default {Setup.tick}; the controller's own is 2s)",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=900, help="seconds a round may take")
    parser.add_argument("--soak", type=float, metavar="MINUTES", help="soak for MINUTES instead")
    parser.add_argument(
        "--router", choices=sorted(ROUTES), default="HTTPRoute", help="default HTTPRoute"
    )
    parser.add_argument(
        "--warm", type=float, default=0, metavar="SECONDS",
        help="first an unmeasured round of at most SECONDS (a fleet's first release), then "
        "the measured one",
    )  # fmt: skip
    parser.add_argument(
        "--custom-query", metavar="PROMQL",
        help="a custom metric every Rollout asks ({{namespace}}, {{canary}}...; never fails)",
    )  # fmt: skip
    parser.add_argument(
        "--slow-query", metavar="PROMQL",
        help="app-0's only custom metric instead: a tenant's slow query (never fails)",
    )  # fmt: skip
    parser.add_argument(
        "--nice-stand-ins", action="store_true",
        help=f"run {NICED}",
    )  # fmt: skip
    parser.add_argument("--output", default=str(REPO / "docs" / "benchmarks.md"))
    return parser


def main() -> int:
    parser = _parser()
    args = parser.parse_args()
    if args.rps < 1:
        parser.error("--rps must be at least 1")
    env = _env(Path(args.dev_dir))
    kubeconfig, work = Path(env["KUBECONFIG"]), REPO / ".dev" / "bench-scale"
    sizes = args.n or ([100] if args.soak else [10, 100])
    command = _command(args, sizes)
    if args.soak:
        setup = Setup(
            sizes[0], f"soak-{int(time.time())}", args.interval, timeout=args.timeout,
            workers=args.workers, kube_qps=args.kube_qps, kube_burst=args.kube_burst,
            warm=args.warm, prometheus_timeout=args.prometheus_timeout, rps=args.rps,
            tick=args.tick,
        )  # fmt: skip
        found = soak(setup, kubeconfig, env, work / "soak", args.soak)
        rounds, samples = found.rounds, found.samples
        finished = sum(r.n - r.unfinished for r in rounds)
        wrong = sum(len(r.wrong) for r in rounds)
        held = sorted({kind for cached in found.cached for kind in cached})
        text = (
            f"{SOAK}\n\n`make soak` (`{command} --soak {args.soak:g}`), {_machine()}. "
            f"{len(rounds)} rounds of {setup.n} Rollouts each (released, run until finished or "
            f"the round's timeout, deleted), after "
            f"{found.warm_up or 'no warm-up round'}: {finished} finished, {wrong} wrong "
            f"decisions. How late the workers took "
            f"Rollouts (`canary_workqueue_wait_seconds`), "
            + "; ".join(f"round {i}: {waits(r)}" for i, r in enumerate(rounds, 1))
            + ". "
            f"Controller RSS every minute (MB): "
            f"{', '.join(f'{mb:.0f}' for _, mb in samples)}; slope "
            f"**{slope(samples):+.1f} MB/hour**. After each round's deletion, seconds until "
            f"the controller's caches held no Rollout and no index key "
            f"(`canary_cache_objects`, `canary_cache_index_keys`): "
            f"{', '.join(f'{s:.0f}' for s in found.let_go)}; the caches then held "
            + "; ".join(
                f"{kind} {', '.join(f'{c.get(kind, 0):.0f}' for c in found.cached)}"
                for kind in held
            )
            + ".\n"
        )
        print(text, flush=True)
        _replace_section(Path(args.output), SOAK, text)
        return 0
    reports, tick = [], parse_duration(args.tick).total_seconds()
    for n in sizes:
        setup = Setup(
            n, f"scale-{n}-{int(time.time())}", args.interval, timeout=args.timeout,
            workers=args.workers, kube_qps=args.kube_qps, kube_burst=args.kube_burst,
            router=args.router, warm=args.warm, prometheus_timeout=args.prometheus_timeout,
            custom_query=args.custom_query, slow_query=args.slow_query,
            nice_stand_ins=args.nice_stand_ins, rps=args.rps, tick=args.tick,
        )  # fmt: skip
        report = run(setup, kubeconfig, env, work / str(n))
        print(table([report], tick), timeline(report), f"workers took Rollouts: {waits(report)}",
              reaction_parts(report), decisions_account(report),
              f"the controller's API requests (mean s): {requests_account(report)}",
              f"looks missed: {report.missed_looks}", prometheus_account(report),
              steady_account(report), cpu_table([report]),
              f"canary pods' Events after the Rollout's creation: {pipeline_account(report)}",
              report.diagnosis, sep="\n",
              flush=True)  # fmt: skip
        report.split = split_decisions(setup, env, work / str(n) / "controller.log", report)
        print(report.split, slowest_account(report), sep="\n", flush=True)
        reports.append(report)
    text = (
        f"{SCALE}\n\n`make bench-scale` (`{command}`), {_machine()}. "
        f"Analysis interval {args.interval}, tick {args.tick}, {args.workers} workers, --kube-qps "
        f"{args.kube_qps:g}/--kube-burst {args.kube_burst}, --prometheus-timeout "
        f"{args.prometheus_timeout}, 10% bad, default steps, router {args.router}, "
        f"{args.rps} req/s per app" + (f"; {NICED}" if args.nice_stand_ins else "") + ".\n\n"
        f"{table(reports, tick)}\n\n"
        + "How late the workers took Rollouts (`canary_workqueue_wait_seconds`):\n\n"
        + "\n".join(
            f"- N = {r.n}: {waits(r)}; {reaction_parts(r)}; {decisions_account(r)}."
            for r in reports
        )
        + "\n\nThe controller's requests to the API server, with their mean time "
        "(`canary_kube_request_duration_seconds`):\n\n"
        + "\n".join(f"- N = {r.n}: {requests_account(r)}." for r in reports)
        + "\n\nThe counters queries by Prometheus' query log:\n\n"
        + "\n".join(f"- N = {r.n}: {prometheus_account(r)}." for r in reports)
        + "\n\nWhere each bad canary's decision waited, with Prometheus' samples and query log "
        "(`bench.decision_split`):\n\n"
        + "\n\n".join(f"N = {r.n}: {r.split}\n\n{slowest_account(r)}" for r in reports)
        + "\n"
    )
    if cpu := cpu_table(reports):
        text += (
            f"\nCPU seconds a minute by process during each round (with its children):\n\n{cpu}\n"
        )
    _replace_section(Path(args.output), SCALE, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
