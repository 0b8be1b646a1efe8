"""In-memory stand-ins for the runtime's tests, kept honest by contract tests.

- ``FakeRouter`` implements ``ports.TrafficRouter`` with a pretend mesh that accepts a new route
  when told to (or at once) and, like Linkerd's policy controller, keeps it accepted when only
  its weights change. ``test_routers_keep_the_router_contract.py`` (in
  tests/integration) runs one contract against it and the real routers on a real API server.
- ``FakeMetrics`` implements ``ports.MetricProvider`` with counters and answers the test sets;
  ``test_metrics_keep_the_metric_provider_contract.py`` runs one contract against it and
  ``PrometheusMetrics`` on a real Prometheus.
- ``FakeEvents`` and ``FakeClock`` stand in for Events and the clock in the runtime's tests
  (the in-memory Rollout store is ``tests.fake_store.MemoryRolloutStore``, contract-tested).
- ``InMemoryObjects`` is a tiny custom-object store with the API server's write rules that the
  routers rely on (resourceVersion guard, generation bumped by spec changes, Conflict on create
  of an existing name, JSON patch), so router logic runs in unit tests without a cluster.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from canary.core import evidence, promql
from canary.core.vocabulary import Event
from canary.errors import Conflict, MetricsUnavailable
from canary.model.rollout import Rollout
from canary.ports import Arms
from canary.runtime.memory import MemoryRouter, VirtualClock

Json = dict[str, Any]


def _pairs(targets: Iterable[Arms]) -> set[tuple[str, str]]:
    return {(a.namespace, name) for a in targets for name in (a.stable, a.canary)}


@dataclass
class FakeMetrics:
    """A ``MetricProvider`` whose pods' cumulative counters and query answers the test sets;
    ``available = False`` plays Prometheus being down."""

    pods: dict[evidence.PodKey, evidence.PodCounters] = field(default_factory=dict)
    values: dict[str, float | None] = field(default_factory=dict)
    available: bool = True
    snapshots: list[tuple[Arms, ...]] = field(default_factory=list)
    """The ``targets`` of every snapshot asked for, in order (answered or not)."""
    bucketed: list[frozenset[Arms] | None] = field(default_factory=list)
    """The ``buckets`` of every snapshot asked for, in order (None: all)."""

    def _check(self) -> None:
        if not self.available:
            raise MetricsUnavailable("cannot reach Prometheus at fake://")

    def snapshot(
        self, targets: Sequence[Arms], buckets: Collection[Arms] | None = None
    ) -> evidence.Snapshot:
        """The counters of the pods of every arm in ``targets``, with buckets for those in
        ``buckets`` (None: all)."""
        self.snapshots.append(tuple(targets))
        self.bucketed.append(None if buckets is None else frozenset(buckets))
        pairs = _pairs(targets)
        if not pairs:
            return {}
        with_buckets = pairs if buckets is None else _pairs(buckets)
        promql.counters_query(sorted(pairs), sorted(with_buckets))  # the same InvalidSpec
        self._check()
        return {
            key: pod if key.target in with_buckets else replace(pod, buckets=())
            for key, pod in self.pods.items()
            if key.target in pairs
        }

    def value(self, query: str) -> float | None:
        """The answer set for ``query``; None for any other."""
        self._check()
        return self.values.get(query)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ValueError(f"not a JSON pointer: {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _parent(document: Any, parts: list[str]) -> Any:
    node = document
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def apply_json_patch(document: Json, ops: list[Json]) -> Json:
    """``document`` with the RFC 6902 operations canary uses (add, replace, test) applied."""
    result = copy.deepcopy(document)
    for op in ops:
        parts = _pointer(op["path"])
        parent, last = _parent(result, parts), parts[-1]
        if op["op"] == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent[last]
            if current != op["value"]:
                raise ValueError(f"test failed at {op['path']}")
        elif op["op"] == "add" and isinstance(parent, list):
            parent.insert(len(parent) if last == "-" else int(last), copy.deepcopy(op["value"]))
        elif op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                parent[int(last)] = copy.deepcopy(op["value"])
            else:
                if op["op"] == "replace" and last not in parent:
                    raise ValueError(f"nothing to replace at {op['path']}")
                parent[last] = copy.deepcopy(op["value"])
        else:
            raise ValueError(f"unsupported operation {op['op']!r}")
    return result


class InMemoryObjects:
    """Custom objects of one kind, written by the API server's rules (see module docstring)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], Json] = {}
        self.writes = 0
        self._version = 0

    def _stamp(self, obj: Json, generation: int) -> Json:
        self._version += 1
        self.writes += 1
        obj["metadata"]["resourceVersion"] = str(self._version)
        obj["metadata"]["generation"] = generation
        return copy.deepcopy(obj)

    def get(self, namespace: str, name: str) -> Json | None:
        """A copy of the object, or None."""
        found = self.objects.get((namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def create(self, namespace: str, body: Json) -> Json:
        """Store a new object at generation 1."""
        name = body["metadata"]["name"]
        if (namespace, name) in self.objects:
            raise Conflict(f"{namespace}/{name} already exists")
        obj = copy.deepcopy(body)
        obj["metadata"]["namespace"] = namespace
        self.objects[(namespace, name)] = obj
        return self._stamp(obj, 1)

    def patch(self, namespace: str, name: str, patch: Any) -> Json:
        """Apply a JSON patch; a resourceVersion it sets must be the current one."""
        current = self.objects[(namespace, name)]
        patched = apply_json_patch(current, patch)
        if patched["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise Conflict(f"{namespace}/{name} was modified")
        generation = current["metadata"]["generation"]
        if patched.get("spec") != current.get("spec"):
            generation += 1
        self.objects[(namespace, name)] = patched
        return self._stamp(patched, generation)

    def set_status(self, namespace: str, name: str, status: Json) -> None:
        """What a controller does: write the status subresource."""
        obj = self.objects[(namespace, name)]
        obj["status"] = copy.deepcopy(status)
        self._stamp(obj, obj["metadata"]["generation"])


class FakeEvents:
    """An ``EventRecorder`` that keeps what it is told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def record(self, rollout: Rollout, event: Event) -> None:
        """Keep (rollout name, reason)."""
        self.events.append((rollout.metadata.name, event.reason))


FakeRouter = MemoryRouter
FakeClock = VirtualClock
