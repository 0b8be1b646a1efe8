"""Latency of the API's Rollout list and of the dashboard's history page with many finished
Rollouts.

Run: ``.venv/bin/python -m bench.api_history [--rollouts 1000] [--requests 300]``.
Serves the real app with the real uvicorn on 127.0.0.1 over an in-memory store of ``--rollouts``
finished Rollouts (of 10 targets in 5 namespaces) and an access review that answers at once
(the real one's TokenReview/SubjectAccessReview answers are cached for 10 s, so a warm page pays
for neither), then times ``--requests`` sequential ``GET /api/v1/rollouts`` and as many
``GET /ui/history`` (the dashboard's history, rendered as HTML) and prints the median and the
99th percentile of each. The store lives in memory: a real cluster adds one list call.
"""

from __future__ import annotations

import argparse
import statistics
import time
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from canary.api import app, server
from canary.api.metrics import ControllerMetrics
from canary.core.access import Permission
from canary.model.rollout import Rollout
from canary.ports import Identity, Ref


class _Store:
    def __init__(self, rollouts: Sequence[Rollout]) -> None:
        self._rollouts = list(rollouts)

    def get(self, ref: Ref) -> Rollout | None:
        return next((r for r in self._rollouts if r.metadata.name == ref.name), None)

    def list(self, namespace: str | None = None, target: str | None = None) -> list[Rollout]:
        return [
            r
            for r in self._rollouts
            if namespace in (None, r.metadata.namespace)
            and target in (None, r.spec.target_ref.name)
        ]

    def policy(self, ref: Ref) -> None:
        return None

    def write_status(self, rollout: Rollout, status: object) -> None:
        raise NotImplementedError

    def annotate(self, ref: Ref, key: str, value: str) -> None:
        raise NotImplementedError


class _Everyone:
    def authenticate(self, token: str) -> Identity | None:
        return Identity("bench")

    def allowed(self, who: Identity, permission: Permission, namespace: str | None) -> bool:
        return namespace is not None  # per-namespace checks, as for a namespaced viewer


def _rollouts(count: int) -> list[Rollout]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    made = []
    for i in range(count):
        created = start + timedelta(hours=i)
        made.append(
            Rollout.model_validate(
                {
                    "metadata": {
                        "name": f"app{i % 10}-{i}",
                        "namespace": f"team-{i % 5}",
                        "creationTimestamp": created.isoformat(),
                    },
                    "spec": {
                        "targetRef": {"name": f"app{i % 10}"},
                        "release": {"images": {"app": f"app:{i}"}},
                    },
                    "status": {
                        "phase": "Succeeded" if i % 7 else "RolledBack",
                        "startedAt": created.isoformat(),
                        "finishedAt": (created + timedelta(minutes=9)).isoformat(),
                        "message": "promoted",
                    },
                }
            )
        )
    return made


def main() -> None:
    """Print the median and p99 latency of the list and of the history page."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rollouts", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    store = _Store(_rollouts(args.rollouts))
    api = app.Api(
        store=store,
        annotator=store,
        access=_Everyone(),
        ready=lambda: True,
        metrics=ControllerMetrics(),
    )
    running = server.start(app.build(api), host="127.0.0.1", port=0)
    try:
        for path in ("/api/v1/rollouts", "/ui/history"):
            request = urllib.request.Request(
                running.url + path, headers={"Authorization": "Bearer x"}
            )
            times = []
            for _ in range(args.requests):
                started = time.perf_counter()
                with urllib.request.urlopen(request, timeout=10) as response:
                    size = len(response.read())
                times.append((time.perf_counter() - started) * 1000)
            times.sort()
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            print(
                f"GET {path}, {args.rollouts} finished Rollouts ({size} bytes), "
                f"{args.requests} requests: median {statistics.median(times):.1f} ms, "
                f"p99 {p99:.1f} ms"
            )
    finally:
        running.stop()


if __name__ == "__main__":
    main()
