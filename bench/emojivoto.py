"""How often the emojivoto example's faulty voting release would be promoted, on the twin.

The e2e test ``test_voting_release_failing_more_votes_is_rolled_back`` releases
``examples/emojivoto/release-voting-faulty.yaml`` under the example's ``voting`` policy and
asserts a rollback; its false-failure rate is this benchmark's miss rate. Everything is read
from the example's manifests: the policy's steps and analysis, the voting Service's request
rate and path mix, and which paths fail on stable and on the release. The real controller on
the twin (``bench.twin``) then releases that canary for each seed, and the same release of a
canary as good as stable, and prints how each run ended and how long it took.

``make bench-emojivoto`` (``python -m bench.emojivoto --seeds 10000``, one core);
``--no-detect`` runs the policy without its ``analysis.detect``, to see what that buys.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench import twin
from bench.gates import _quantiles
from bench.scenarios import Scenario, behaviour

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "emojivoto"
RATE = "sim.canary.dev/rps"
PATHS = "sim.canary.dev/paths"
FAILING = "sim.canary.dev/path-error-rates"


@dataclass(frozen=True)
class Voting:
    """The voting release as the example's manifests describe it."""

    rps: float
    stable_errors: float
    canary_errors: float
    steps: tuple[int, ...]
    analysis: dict[str, Any]


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((EXAMPLE / name).read_text()) if d]


def _named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def _error_rate(paths: dict[str, float], failing: dict[str, float]) -> float:
    """The share of calls that fail: each path's share times its error rate."""
    total = sum(paths.values())
    return sum(share * failing.get(path, 0.0) for path, share in paths.items()) / total


def voting() -> Voting:
    """Read the voting Service, Deployment, policy and faulty release from the example."""
    app = _docs("emojivoto.yaml")
    service = _named(app, "Service", "voting-svc")["metadata"]["annotations"]
    paths = json.loads(service[PATHS])
    pods = _named(app, "Deployment", "voting")["spec"]["template"]["metadata"]["annotations"]
    release = _named(_docs("release-voting-faulty.yaml"), "Rollout", "voting-2")
    patch = release["spec"]["release"]["templatePatch"]["metadata"]["annotations"]
    policy = _named(_docs("policies.yaml"), "RolloutPolicy", "voting")["spec"]
    return Voting(
        rps=float(service[RATE]),
        stable_errors=_error_rate(paths, json.loads(pods[FAILING])),
        canary_errors=_error_rate(paths, json.loads(patch[FAILING])),
        steps=tuple(step["setWeight"] for step in policy["steps"]),
        analysis=policy["analysis"],
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1000, help="seeds per release (1000)")
    parser.add_argument("--no-detect", action="store_true", help="drop analysis.detect")
    args = parser.parse_args(argv)
    twin.quiet()
    v = voting()
    analysis = dict(v.analysis)
    if args.no_detect:
        analysis.pop("detect", None)
    print(
        f"voting: {v.rps:g} req/s, stable {v.stable_errors:.1%} failed, faulty release "
        f"{v.canary_errors:.1%} ({v.canary_errors / v.stable_errors:.2f}×), steps "
        f"{', '.join(map(str, v.steps))}, detect {analysis.get('detect')}"
    )
    for name, bad in (("faulty", True), ("as stable", False)):
        canary = v.canary_errors if bad else v.stable_errors
        scenario = Scenario(
            name, name, behaviour(v.stable_errors, 2, 10), behaviour(canary, 2, 10), bad, v.rps
        )
        started, phases, ended = time.process_time(), Counter[str](), []
        for seed in range(args.seeds):
            run = twin.run(scenario, seed, analysis=analysis, steps=v.steps)
            phases["rolled back" if run.phase in twin.ROLLED_BACK else "promoted"] += 1
            ended.append(run.ended_s)
        wrong = phases["promoted" if bad else "rolled back"]
        # With no wrong run in n, 3/n bounds the rate at 95% confidence (the rule of three).
        rate = f"≤ {3 / args.seeds:.2%} at 95%" if wrong == 0 else f"{wrong / args.seeds:.2%}"
        print(
            f"{name} canary ({canary:.1%} failed): {dict(phases)} of {args.seeds}; wrong "
            f"{wrong} (rate {rate}); virtual s to decide "
            f"{_quantiles(ended)}; {time.process_time() - started:.1f} s of CPU"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
