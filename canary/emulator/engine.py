"""The emulated data plane in real time: the traffic model advanced on a timer with the live
topology, and the proxies' ``/metrics`` text and scrape targets derived from it.

Who calls it: ``canary.emulator.command`` (the process) and the emulator's tests. It holds one
:class:`~canary.sim.traffic.Mesh` behind a lock: ``apply`` (topology changed) and ``tick``
(time passed) write; ``metrics`` and ``targets`` read. Rendering happens outside the lock and is
cached per pod until the next tick, so scrapes of thousands of pods stay cheap.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from canary.emulator.topology import Flow, ScrapedPod, Topology, destination
from canary.sim import exposition
from canary.sim.traffic import NO_POD, Counters, Mesh

EMPTY = Topology(pods={}, flows=(), problems=())


@dataclass
class _Cached:
    generation: int
    text: str


class Engine:
    """One emulated mesh: apply topologies, advance time, serve metrics."""

    def __init__(self, seed: int = 0) -> None:
        self._mesh = Mesh(seed=seed)
        self._lock = threading.Lock()
        self._topology = EMPTY
        self._by_path: dict[str, ScrapedPod | Flow] = {}
        self._generation = 0
        self._cache: dict[str, _Cached] = {}
        self.requests_sent = 0

    @property
    def topology(self) -> Topology:
        """The topology in force."""
        return self._topology

    def apply(self, topology: Topology) -> None:
        """Switch to a new topology: new pods start at zero, vanished pods are forgotten."""
        with self._lock:
            known = set(self._mesh.pod_names())
            for key in known - topology.pods.keys():
                self._mesh.remove_pod(key)
            for key, pod in topology.pods.items():
                if key not in known or self._mesh.behaviour(key) != pod.behaviour:
                    self._mesh.set_pod(key, pod.behaviour)
            self._topology = topology
            self._by_path = {p.metrics_path: p for p in topology.pods.values()}
            self._by_path.update({f.metrics_path: f for f in topology.flows})
            self._cache.clear()
            self._generation += 1

    def tick(self, seconds: float) -> None:
        """Let ``seconds`` of traffic flow through every route."""
        with self._lock:
            for flow in self._topology.flows:
                self.requests_sent += self._mesh.advance(
                    seconds, flow.rps, flow.backends, client=flow.client, paths=flow.paths
                )
            self._generation += 1

    def metrics(self, path: str) -> str | None:
        """The ``/metrics`` text served at ``path``, or None when no proxy lives there."""
        with self._lock:
            owner = self._by_path.get(path)
            cached = self._cache.get(path)
            if owner is None:
                return None
            if cached is not None and cached.generation == self._generation:
                return cached.text
            generation = self._generation
            if isinstance(owner, Flow):
                series = self._outbound_series(owner)
            else:
                series = [(owner.inbound, self._mesh.inbound(owner.key))]
        text = exposition.render(series)
        with self._lock:
            self._cache[path] = _Cached(generation, text)
        return text

    def _outbound_series(self, flow: Flow) -> list[tuple[exposition.Labels, Counters]]:
        pods = self._topology.pods
        series = []
        for (backend, key), counters in sorted(self._mesh.outbound_of(flow.client).items()):
            if key != NO_POD and key not in pods:
                continue
            dst = destination(flow, backend, pods.get(key))
            series.append((exposition.outbound_labels(dst), counters))
        return series

    def target_labels(self) -> list[Mapping[str, str]]:
        """Each emulated proxy's Prometheus target labels (with its ``__metrics_path__``)."""
        with self._lock:
            topology = self._topology
        groups: list[Mapping[str, str]] = [p.target_labels for p in topology.pods.values()]
        groups += [f.target_labels for f in topology.flows]
        return groups
