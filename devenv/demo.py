"""`make demo`: a healthy release promoted and a faulty one rolled back, on the local cluster.

Run as ``python -m devenv.demo`` after ``python -m devenv up`` (the Makefile does both). It
installs examples/demo/podinfo.yaml in a fresh ``demo`` namespace, starts the mesh emulator and
the controller for that namespace, releases examples/demo/release-healthy.yaml and then
release-faulty.yaml, shows each with ``canary watch``, and prints a summary. The emulator and
the controller stop at the end; the control plane keeps running (``make dev-down`` stops it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from devenv import layout

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "examples" / "demo"
NAMESPACE = "demo"
RELEASES = (("release-healthy.yaml", "podinfo-6-1-0"), ("release-faulty.yaml", "podinfo-6-2-0"))


def _env() -> dict[str, str]:
    env_file = layout.DevDir(layout.default_dev_dir()).env_file
    pairs = (line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    return {**os.environ, **dict(pairs)}


def _kubectl(env: dict[str, str], *args: str, check: bool = True) -> str:
    done = subprocess.run(
        [env["KUBECTL"], *args], env=env, capture_output=True, text=True, check=False
    )
    if check and done.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def _start(name: str, argv: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    log = (logs / f"{name}.log").open("wb")
    print(f"  {name:<10} started (log: {logs / f'{name}.log'})")
    return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _summary(rollout: dict[str, Any]) -> list[str]:
    status = rollout.get("status", {})
    start, end = _time(status.get("startedAt")), _time(status.get("finishedAt"))
    took = f"{(end - start).total_seconds():.0f}s" if start and end else "?"
    steps = status.get("steps", [])
    failed = sum(s["canary"]["failures"] for s in steps)
    served = sum(s["canary"]["requests"] for s in steps)
    lines = [
        f"{rollout['metadata']['name']}: {status.get('phase')} after {took}; "
        f"canary served {served} requests, {failed} failed",
    ]
    for s in steps:
        lines.append(
            f"    step {s['index'] + 1}: weight {s['weight']:>3}%  {s['verdict']:<7} "
            f"canary {s['canary']['failures']}/{s['canary']['requests']} failed, "
            f"stable {s['stable']['failures']}/{s['stable']['requests']}"
        )
    lines.append(f"    {status.get('message', '')}")
    return lines


def main() -> int:
    """Run the demo; 0 when the healthy release was promoted and the faulty one rolled back."""
    env = _env()
    logs = layout.default_dev_dir() / "demo"
    logs.mkdir(parents=True, exist_ok=True)
    print(f"namespace {NAMESPACE}: fresh podinfo (4 replicas, 100 req/s from the emulator)")
    _kubectl(env, "delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true")
    _kubectl(env, "apply", "-f", str(DEMO / "podinfo.yaml"))
    python = sys.executable
    processes = [
        _start(
            "emulator",
            [python, "-m", "canary.emulator", "--namespace", NAMESPACE, "--port", "0",
             "--targets-file", "demo.json"],
            env,
            logs,
        ),
        _start(
            "controller",
            [python, "-m", "canary", "run", "--watch-namespace", NAMESPACE, "--tick", "2s",
             "--no-leader-elect", "--http-port", "0"],
            env,
            logs,
        ),
    ]  # fmt: skip
    outcomes: dict[str, dict[str, Any]] = {}
    try:
        _kubectl(env, "-n", NAMESPACE, "rollout", "status", "deployment/podinfo", "--timeout=120s")
        for manifest, name in RELEASES:
            print(f"\n$ kubectl apply -f examples/demo/{manifest} && canary watch {name}")
            _kubectl(env, "apply", "-f", str(DEMO / manifest))
            subprocess.run(
                [python, "-m", "canary", "-n", NAMESPACE, "watch", name, "--timeout", "300"],
                env=env,
                check=False,
            )
            outcomes[name] = json.loads(
                _kubectl(env, "-n", NAMESPACE, "get", "rollout", name, "-o", "json")
            )
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
    print("\nsummary")
    for rollout in outcomes.values():
        print("\n".join(f"  {line}" for line in _summary(rollout)))
    print("\n$ canary -n demo get")
    subprocess.run([python, "-m", "canary", "-n", NAMESPACE, "get"], env=env, check=False)
    print("\nThe control plane keeps running; `make dev-down` stops it.")
    phases = [outcomes.get(name, {}).get("status", {}).get("phase") for _, name in RELEASES]
    return 0 if phases == ["Succeeded", "RolledBack"] else 1


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"demo finished in {time.monotonic() - started:.0f}s")
    sys.exit(code)
