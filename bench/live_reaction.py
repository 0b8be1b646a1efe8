"""Live reaction times (gate v2, issue 15): how soon canary's real controller, on the local
control plane, takes a failing canary's traffic back, next to the digital twin's figure.

One namespace with podinfo (4 replicas, stable failing 0.1%, 100 req/s from the mesh emulator,
routed by an HTTPRoute through Linkerd's real policy controller), the gate benchmark's policy
(steps 5, 10, 20, 50, 100%, success rate ≥ 99%, p99 ≤ 500 ms, the default interval and minimum;
``canary run``'s defaults: tick 2 s, settle 12 s; the dev Prometheus scrapes every 10 s as
linkerd-viz's does), one ``canary run --record`` and one emulator. Then, one after the other,
Rollouts whose canary fails 100% or 10% of requests. The harness reads the canary pods' proxy
counters from the emulator every 0.2 s (the data plane's truth, not Prometheus') and the
controller's tape, and reports per run:

- **reaction**: from the controller's first write of a canary weight above 0 to the last moment
  the canary received a request (traffic back on stable where it flows);
- the same from the canary's first failed request;
- the failed requests the canary served.

The twin (``bench.twin``) is measured the same way: from its first weight write to the moment
its last route change takes effect, and the failures its canary served.

    python -m bench.live_reaction --runs 5        # make bench-reaction; writes docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from bench import twin
from bench.baselines import STEPS
from bench.scenarios import BY_KEY
from devenv import layout
from tests.integration.conftest import Cluster
from tests.integration.e2e.conftest import Release, install_podinfo, start_processes, stop_all

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Gate v2: live reaction times (issue 15)"
POLL_S = 0.2
QUIET_S = 3.0
"""Seconds without a canary request after the weight-0 write that end a run's watch."""
SCENARIOS = {"S2-errors": "1.0", "S2-errors-10%": "0.1"}
"""The twin's scenario → the live canary's ``sim.canary.dev/error-rate``."""


def cluster_at(dev_dir: Path) -> tuple[Cluster, bool]:
    """The dev environment in ``dev_dir`` (started if it is not running), and whether this
    harness started it."""
    devenv = [sys.executable, "-m", "devenv", "--dir", str(dev_dir)]
    started = subprocess.run([*devenv, "status"], capture_output=True, check=False).returncode != 0
    if started:
        subprocess.run([*devenv, "up"], check=True, cwd=REPO)
    lines = layout.DevDir(dev_dir).env_file.read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if "=" in line)
    cluster = Cluster(
        dev_dir=dev_dir,
        kubeconfig=Path(env["KUBECONFIG"]),
        prometheus_url=env["PROMETHEUS_URL"],
        targets_dir=Path(env["PROMETHEUS_TARGETS_DIR"]),
        kubectl=Path(env["KUBECTL"]),
        owned=started,
        policy_grpc=env.get("LINKERD_POLICY_GRPC", ""),
    )
    return cluster, started


@dataclass
class Canary:
    """The canary pods' inbound counters as last read from the emulator (a pod's counters are
    kept after it is gone), and when they moved."""

    requests: dict[str, int]
    failures: dict[str, int]
    earlier: frozenset[str] = frozenset()
    """Pods of an earlier run's canary, left out."""
    first_failure: float | None = None
    last_request: float | None = None

    def read(self, targets: Path, now: float) -> None:
        """Read every canary pod's ``/metrics`` the emulator serves."""
        try:
            groups = json.loads(targets.read_text())
        except (OSError, ValueError):
            return
        before = sum(self.requests.values()), sum(self.failures.values())
        for group in groups:
            labels = group["labels"]
            if labels.get("deployment") != "podinfo-canary" or labels["pod"] in self.earlier:
                continue
            url = f"http://{group['targets'][0]}{labels['__metrics_path__']}"
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    text = reply.read().decode()
            except OSError:
                continue
            ok = failed = 0
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name == "response_total" and sample.labels["direction"] == "inbound":
                        if sample.labels["classification"] == "failure":
                            failed += int(sample.value)
                        else:
                            ok += int(sample.value)
            pod = labels["pod"]
            self.requests[pod] = max(self.requests.get(pod, 0), ok + failed)
            self.failures[pod] = max(self.failures.get(pod, 0), failed)
        requests, failures = sum(self.requests.values()), sum(self.failures.values())
        if requests > before[0]:
            self.last_request = now
        if failures > before[1] and self.first_failure is None:
            self.first_failure = now


@dataclass(frozen=True)
class Run:
    """One live run."""

    scenario: str
    outcome: str
    reaction_s: float
    from_first_failure_s: float | None
    zero_written_s: float
    """From the first weight write to the weight-0 write (the controller's own view)."""
    failed: int


@dataclass
class Weights:
    """The route weights the controller wrote, read from its tape as it grows (only the new
    whole lines each time, so that polling stays cheap beside the run it measures)."""

    tape: Path
    offset: int = 0
    written: list[tuple[float, int]] = field(default_factory=list)

    def since(self, began: float) -> list[tuple[float, int]]:
        """The weights written at or after ``began`` (epoch seconds)."""
        with self.tape.open("rb") as file:
            file.seek(self.offset)
            data = file.read()
        whole = data[: data.rfind(b"\n") + 1]
        self.offset += len(whole)
        for line in whole.splitlines():
            if b'"kind":"weight"' in line and b'"refused"' not in line:
                entry = json.loads(line)
                self.written.append(
                    (datetime.fromisoformat(entry["at"]).timestamp(), int(entry["canary"]))
                )
        return [(at, weight) for at, weight in self.written if at >= began]


def one_run(env: Release, tape: Weights, targets: Path, scenario: str, index: int) -> Run:
    """Release one failing canary and watch it until its traffic is back on stable."""
    name = f"{'errors' if scenario == 'S2-errors' else 'errors-10'}-{index}"
    seen = Canary({}, {})
    seen.read(targets, 0.0)
    canary = Canary({}, {}, earlier=frozenset(seen.requests))
    began = time.time()
    env.create(name, {"sim.canary.dev/error-rate": SCENARIOS[scenario]})
    deadline = began + 300
    phase = ""
    while time.time() < deadline:
        now = time.time()
        canary.read(targets, now)
        phase = env.rollout(name).get("status", {}).get("phase", "")
        written = tape.since(began)
        first = next((at for at, weight in written if weight > 0), math.inf)
        zero = [at for at, weight in written if weight == 0 and at > first]
        finished = phase in {"RolledBack", "Failed", "Succeeded"}
        if finished and zero and now - max(zero[0], canary.last_request or 0) >= QUIET_S:
            break
        time.sleep(POLL_S)
    weights = tape.since(began)
    first = next(at for at, weight in weights if weight > 0)
    zero_at = next(at for at, weight in weights if weight == 0 and at > first)
    end = canary.last_request or zero_at
    return Run(
        scenario,
        phase,
        end - first,
        None if canary.first_failure is None else end - canary.first_failure,
        zero_at - first,
        sum(canary.failures.values()),
    )


def twin_figures(scenario: str, seeds: int) -> tuple[list[float], list[int]]:
    """The twin's reactions (first weight write → route at 0 in effect) and failed requests."""
    reactions, failed = [], []
    for seed in range(seeds):
        run = twin.run(BY_KEY[scenario], seed)
        if run.phase not in twin.ROLLED_BACK:
            continue
        first = next(d.seconds for d in run.trace if d.weight)
        reactions.append(run.ended_s - first)
        failed.append(run.world.canary_failures())
    return reactions, failed


def _stats(values: Sequence[float]) -> str:
    if not values:
        return "—"
    return f"{statistics.median(values):.1f} / {max(values):.1f}"


def _p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def table(runs: list[Run], twins: dict[str, tuple[list[float], list[int]]]) -> str:
    """The section's table: live median / max, the twin's median / p95."""
    rows = [
        "| scenario | live runs | outcomes | reaction s (median / max) | from first failure s | "
        "weight-0 written s | failed requests (median / max) | twin: reaction s (median / p95) "
        "| twin: failed (median / p95) | twin seeds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario in SCENARIOS:
        mine = [r for r in runs if r.scenario == scenario]
        outcomes = ", ".join(sorted({r.outcome for r in mine}))
        firsts = [r.from_first_failure_s for r in mine if r.from_first_failure_s is not None]
        reactions, failed = twins[scenario]
        rows.append(
            f"| {scenario} | {len(mine)} | {outcomes} | {_stats([r.reaction_s for r in mine])} | "
            f"{_stats(firsts)} | {_stats([r.zero_written_s for r in mine])} | "
            f"{_stats([r.failed for r in mine])} | "
            f"{statistics.median(reactions):.1f} / {_p95(reactions):.1f} | "
            f"{statistics.median(failed):.0f} / {_p95(failed):.0f} | {len(reactions)} |"
        )
    return "\n".join(rows)


def policy_like_the_twin(api: client.ApiClient, namespace: str) -> None:
    """The namespace's RolloutPolicy with the gate benchmark's steps and analysis."""
    analysis: dict[str, Any] = {
        "interval": None,
        "minRequestsPerStep": None,
        **twin.ANALYSIS,
    }
    patch = {"spec": {"steps": [{"setWeight": w} for w in STEPS], "analysis": analysis}}
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        "canary.dev", "v1alpha1", namespace, "rolloutpolicies", "podinfo", patch
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the live releases, print the table, write it into docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="live runs per scenario")
    parser.add_argument("--twin-seeds", type=int, default=300)
    parser.add_argument("--dev-dir", type=Path, default=REPO / ".dev" / "pytest")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--output", default=str(REPO / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)
    twin.quiet()
    cluster, started = cluster_at(args.dev_dir)
    api = cluster.api_client()
    namespace = f"reaction-{uuid.uuid4().hex[:6]}"
    work = args.dev_dir / namespace
    work.mkdir(parents=True, exist_ok=True)
    tape = work / "tape.jsonl"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    processes = []
    runs: list[Run] = []
    loads: list[float] = []
    try:
        install_podinfo(api, namespace, "HTTPRoute", 100)
        policy_like_the_twin(api, namespace)
        emulator, controller = start_processes(
            cluster, cluster.kubeconfig, [namespace], work, ["--record", str(tape)]
        )
        processes = [emulator, controller]
        env = Release(namespace, api, controller, emulator, "HTTPRoute")
        targets = cluster.targets_dir / f"{namespace}.json"
        time.sleep(15)  # the stable pods ready and scraped before the first release
        weights = Weights(tape)
        for index in range(args.runs):
            for scenario in SCENARIOS:
                run = one_run(env, weights, targets, scenario, index)
                loads.append(os.getloadavg()[0])
                print(run, f"load {loads[-1]:.1f}", flush=True)
                runs.append(run)
    finally:
        stop_all(processes)
        core.delete_namespace(namespace)
        api.close()  # type: ignore[no-untyped-call]
        if started:
            subprocess.run(
                [sys.executable, "-m", "devenv", "--dir", str(args.dev_dir), "down"], check=False
            )
    twins = {scenario: twin_figures(scenario, args.twin_seeds) for scenario in SCENARIOS}
    text = "\n".join(
        [
            SECTION,
            "",
            f"`make bench-reaction` (`python -m bench.live_reaction --runs {args.runs} "
            f"--twin-seeds {args.twin_seeds}`), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
            f"{platform.machine()}, {os.cpu_count()} cores shared with other engineers' work, "
            f"load average (1 min) after each run {min(loads):.1f}–{max(loads):.1f}.",
            "",
            table(runs, twins),
            "",
        ]
    )
    print(text)
    if not args.no_write:
        _replace_section(Path(args.output), SECTION, text)
    return 0


def _replace_section(path: Path, heading: str, text: str) -> None:
    """Put ``text`` (starting with ``heading``) in place of that section of ``path``."""
    old = path.read_text()
    start = old.find(f"\n{heading}\n")
    if start >= 0:
        end = old.find("\n## ", start + 1)
        old = old[:start] + (old[end:] if end >= 0 else "")
    path.write_text(old.rstrip("\n") + "\n\n" + text)


if __name__ == "__main__":
    sys.exit(main())
