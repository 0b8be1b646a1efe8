"""How many simulated requests the pure traffic model handles per second of CPU.

Run: ``.venv/bin/python bench/sim_throughput.py`` (prints a table; about 15 s). Each row advances
one Mesh (stable and canary backends, 95/5) in virtual time for a fixed CPU budget and counts the
requests it simulated; counters are read every 10 virtual seconds, as the gate benchmark scrapes.
"""

from __future__ import annotations

import platform
import time

from canary.sim.traffic import Backend, Behaviour, Mesh

BUDGET_CPU_SECONDS = 1.5

SCENARIOS = [
    # (requests/s, virtual seconds per advance, pods per backend)
    (1, 1.0, 1),
    (10, 1.0, 1),
    (100, 1.0, 1),
    (100, 10.0, 1),
    (1_000, 1.0, 1),
    (1_000, 1.0, 10),
    (1_000, 0.5, 10),
    (10_000, 1.0, 10),
    (100_000, 1.0, 10),
]


def run(rps: float, step: float, pods: int) -> tuple[float, float]:
    """Simulated requests per CPU-second and advance() calls per CPU-second."""
    mesh = Mesh(seed=1)
    stable = tuple(f"stable-{i}" for i in range(pods))
    canary = tuple(f"canary-{i}" for i in range(pods))
    for name in stable:
        mesh.set_pod(name, Behaviour(error_rate=0.001, latency_p50_ms=20, latency_p99_ms=80))
    for name in canary:
        mesh.set_pod(name, Behaviour(error_rate=0.02, latency_p50_ms=25, latency_p99_ms=200))
    backends = {"stable": Backend(95, stable), "canary": Backend(5, canary)}
    scrape_every = max(1, round(10.0 / step))
    requests = calls = 0
    start = time.process_time()
    while time.process_time() - start < BUDGET_CPU_SECONDS:
        for _ in range(50):
            requests += mesh.advance(step, rps, backends)
            calls += 1
            if calls % scrape_every == 0:
                mesh.inbound_all()
    elapsed = time.process_time() - start
    return requests / elapsed, calls / elapsed


def main() -> None:
    """Print the table."""
    print(
        f"# canary.sim.traffic throughput — {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, one core"
    )
    print(
        f"{'req/s':>8} {'step s':>7} {'pods/backend':>13} {'sim req per CPU-s':>18} "
        f"{'advance() per CPU-s':>20}"
    )
    for rps, step, pods in SCENARIOS:
        per_cpu, calls = run(rps, step, pods)
        print(f"{rps:>8} {step:>7} {pods:>13} {per_cpu:>18,.0f} {calls:>20,.0f}")


if __name__ == "__main__":
    main()
