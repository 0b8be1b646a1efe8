"""Memory of the parsed Rollouts the controller's cache keeps, with each model's own set of
set-field names (pydantic's default) and with the sets shared (``share_field_sets``).

Run: ``python -m bench.parsed_memory [--n 1000] [--from ROLLOUTS.json]``. Without ``--from``
the Rollouts come from the digital twin: the real controller releasing a healthy canary
(S1, promoted through every step) and a bad one (S2-errors-10%, rolled back), 9 to 1 as in
``make bench-scale``, each run's final Rollout (status and all) copied under ``--n`` names.
With ``--from``, a ``kubectl get rollouts -o json`` list is parsed instead (for example the
scale benchmark's namespace at the end of its round). Each variant parses every object with
``parse_rollout``, as the cache does, keeps them all, and reports what ``tracemalloc`` counts.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import sys
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import twin
from bench.scenarios import BY_KEY
from canary.adapters.kube.rollouts import parse_rollout
from canary.model.base import share_field_sets


def from_twin(n: int, seeds: int = 20) -> list[dict[str, Any]]:
    """``n`` Rollouts whose statuses are twin runs' final ones (one bad in ten)."""
    twin.quiet()
    finals = []
    for seed in range(seeds):
        scenario = BY_KEY["S2-errors-10%" if seed % 10 == 9 else "S1"]
        run = twin.run(scenario, seed)
        assert run.rollout is not None
        finals.append(run.rollout.wire())
    objects = []
    for i in range(n):
        obj = copy.deepcopy(finals[i % len(finals)])
        obj["metadata"]["name"] = f"app-{i}-v2"
        obj["metadata"]["uid"] = f"uid-{i}"
        objects.append(obj)
    return objects


def kept_bytes(objects: list[dict[str, Any]], share: bool) -> int:
    """Bytes ``tracemalloc`` counts for the parsed objects, kept."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = []
    for obj in objects:
        rollout = parse_rollout(obj)
        if share:
            share_field_sets(rollout)
        kept.append(rollout)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del kept
    return used


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, measure both variants, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="Rollouts (twin source)")
    parser.add_argument("--from", dest="source", type=Path, help="a kubectl get -o json list")
    args = parser.parse_args(argv)
    if args.source:
        objects = json.loads(args.source.read_text())["items"]
        source = f"`{args.source.name}`"
    else:
        objects = from_twin(args.n)
        source = "twin (S1 ×9, S2-errors-10% ×1)"
    wire_kb = sum(len(json.dumps(o)) for o in objects) / len(objects) / 1024
    own = kept_bytes(objects, share=False)
    shared = kept_bytes(objects, share=True)
    n = len(objects)
    print(
        "| Rollouts from | Rollouts | JSON KB each | parsed, own sets: MB (KB each) | "
        "parsed, sets shared: MB (KB each) | saved |"
    )
    print("|---|---|---|---|---|---|")
    print(
        f"| {source} | {n} | {wire_kb:.1f} | {own / 1e6:.1f} ({own / n / 1024:.1f}) | "
        f"{shared / 1e6:.1f} ({shared / n / 1024:.1f}) | {100 * (own - shared) / own:.0f}% |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
