"""The simulated cluster a gate runs against: traffic model, route, Prometheus scrapes.

Traffic comes from ``canary.sim.traffic.Mesh`` (Poisson arrivals split by the route's weights,
per-pod behaviours, per-pod cumulative Linkerd counters). Prometheus scrapes every pod every
10 s with a little jitter and occasionally loses a scrape; gates read only what was scraped.
A weight change takes effect after an actuation delay of 1–3 s.

By default every pod is scraped at the same moment. With ``staggered``, each pod is scraped at
its own phase of the interval, as Prometheus scrapes each target at an offset of its own (a hash
of the target), and its losses and jitter are its own: a scrape then holds the pods scraped at
that moment and, for the others, their last scraped counters, which is what an instant query
returns. The canary's new requests and the stable's then reach Prometheus at different moments
(the live runs' Prometheus did this: docs/benchmarks.md, run H).

Traffic is simulated lazily, in one draw per stretch of time over which nothing that shapes it
changed (route weight, request rate, ready canary pods, a pod's behaviour): the seconds are
owed until a scrape reads the counters or something changes, then sent in one
``Mesh.advance``. Poisson arrivals over two stretches at the same rate are one Poisson count over
both, and each request is routed, failed and timed independently of the others, so the counters
any scrape sees have the same distribution as stretch-by-stretch simulation — at a fraction of
the draws (a gate ticks every 2 s; Prometheus scrapes every 10 s).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from bench.scenarios import Scenario
from canary.model.linkerd import LATENCY_BUCKETS_MS
from canary.sim.traffic import NO_POD, Backend, Behaviour, Counters, Mesh

NAMESPACE = "test"
STABLE = "podinfo"
CANARY = "podinfo-canary"
STABLE_PODS = tuple(f"podinfo-7d9c8b-{c}" for c in ("a1", "b2", "c3"))
CANARY_PODS = ("podinfo-canary-5f6e7d-x9",)
SCRAPE_INTERVAL_S = 10.0
SCRAPE_JITTER_S = 0.5
LOST_SCRAPE = 0.02
ACTUATION_S = (1.0, 3.0)
WARMUP_S = 60.0

Scrape = tuple[float, dict[str, Counters]]


class World:
    """One seeded run: the mesh, the route's effective weight, and the scrapes so far."""

    def __init__(self, scenario: Scenario, seed: int, *, staggered: bool = False) -> None:
        self.scenario = scenario
        self.staggered = staggered
        self.mesh = Mesh(seed)
        self._owed = 0.0
        """Seconds of traffic not yet sent, all under ``self._regime``."""
        self._regime: tuple[float, float, tuple[str, ...]] = (0.0, 0.0, ())
        """The rate, canary weight and ready canary pods of the owed seconds."""
        self.rng = np.random.Generator(np.random.PCG64(seed + 7_777_777))
        self.deployment = dict.fromkeys(STABLE_PODS, STABLE) | dict.fromkeys(CANARY_PODS, CANARY)
        for i, pod in enumerate(STABLE_PODS):
            bad = scenario.bad_stable_pod is not None and i == 0
            self._set_pod(pod, scenario.bad_stable_pod if bad else scenario.stable)  # type: ignore[arg-type]
        self.flapping = False
        self.turned = scenario.bad_from_weight is None
        """Whether the canary behaves as ``scenario.canary`` yet (S8: only from a weight on)."""
        for pod in CANARY_PODS:
            self._set_pod(pod, self._behaviour(pod))
        self.canary_pods: tuple[str, ...] = CANARY_PODS
        """The canary pods that are ready and take traffic (the twin scales them)."""
        self.now = -WARMUP_S
        self.weight = 0.0
        self.pending: list[tuple[float, float]] = []
        self.scrapes: list[Scrape] = []
        self.offset = float(self.rng.uniform(0, SCRAPE_INTERVAL_S))
        self.next_scrape = self.now + self.offset
        self.scrape_index = 0
        self._pod_rng = np.random.Generator(np.random.PCG64(seed + 9_999_999))
        """With ``staggered``, the draws of the pods' own scrape phases, jitter and losses."""
        self._pod_scrapes: dict[str, tuple[float, int, float]] = {}
        """With ``staggered``: pod → (its phase, its scrapes so far, its next scrape)."""
        if staggered:
            for pod in self.deployment:
                self._schedule(pod)
        self.full_at: float | None = None
        self.stable_since: float | None = None
        """When the route last took all traffic off the canary (None while it sends some)."""
        self.next_flap = self.now if scenario.flap else math.inf

    def rps(self) -> float:
        s = self.scenario
        if s.swing is not None and self.now >= s.swing_at_s:
            return s.rps * s.swing
        return s.rps

    def set_weight(self, weight: float) -> float:
        """Ask the router for a weight; returns when it takes effect."""
        at = self.now + float(self.rng.uniform(*ACTUATION_S))
        self.pending.append((at, weight))
        return at

    def scale_canary(self, replicas: int) -> None:
        """Make ``replicas`` canary pods ready (new ones count from zero; gone ones keep their
        last counters, as Prometheus keeps a stale series for a while)."""
        pods = tuple(CANARY_PODS[0] if i == 0 else f"{CANARY}-5f6e7d-y{i}" for i in range(replicas))
        for pod in pods:
            if pod not in self.deployment:
                self.deployment[pod] = CANARY
                self._set_pod(pod, self._behaviour(pod))
                if self.staggered:
                    self._schedule(pod)
        self.flush()
        self.canary_pods = pods

    def _behaviour(self, pod: str) -> Behaviour:
        s = self.scenario
        base = s.stable if self.deployment[pod] == STABLE or not self.turned else s.canary
        if pod == STABLE_PODS[0] and s.bad_stable_pod is not None:
            base = s.bad_stable_pod
        flap = s.flap
        if flap is None or not self.flapping:
            return base
        return replace(base, error_rate=max(flap.error_rate, base.error_rate))

    def _flap(self) -> None:
        flap = self.scenario.flap
        assert flap is not None
        self.flapping = bool(self.rng.random() < flap.probability)
        for pod in self.deployment:
            self._set_pod(pod, self._behaviour(pod))
        self.next_flap = self.now + flap.segment_s

    def run_until(self, end: float) -> None:
        """Advance traffic, weight changes and scrapes up to ``end``."""
        while self.now < end:
            nxt = min(
                [end, self.next_scrape, self.next_flap, *(at for at, _ in self.pending)]
                + ([self.scenario.swing_at_s] if self.now < self.scenario.swing_at_s else [])
            )
            if nxt > self.now:
                self._traffic(nxt - self.now)
                self.now = nxt
            for at, weight in [p for p in self.pending if p[0] <= self.now]:
                self.pending.remove((at, weight))
                self.flush()
                self.weight = weight
                bad_from = self.scenario.bad_from_weight
                if not self.turned and bad_from is not None and weight >= bad_from:
                    self.turned = True
                    for pod in self.deployment:
                        self._set_pod(pod, self._behaviour(pod))
                if weight >= 100 and self.full_at is None:
                    self.full_at = at
                if weight > 0:
                    self.stable_since = None
                elif self.stable_since is None:
                    self.stable_since = at
            if self.next_flap <= self.now:
                self._flap()
            if self.staggered and self.next_scrape <= self.now:
                self._scrape_due()
            elif self.next_scrape <= self.now:
                if self.rng.random() >= LOST_SCRAPE:
                    self.flush()
                    self.scrapes.append((self.now, self.mesh.inbound_all()))
                self.scrape_index += 1
                jitter = float(self.rng.uniform(-SCRAPE_JITTER_S, SCRAPE_JITTER_S))
                planned = -WARMUP_S + self.offset + self.scrape_index * SCRAPE_INTERVAL_S
                self.next_scrape = max(self.now + 1e-6, planned + jitter)

    def _schedule(self, pod: str) -> None:
        """Give a new pod its own scrape phase, its first scrape at that phase's next turn
        (``staggered`` only)."""
        phase = float(self._pod_rng.uniform(0, SCRAPE_INTERVAL_S))
        turns = math.floor((self.now + WARMUP_S - phase) / SCRAPE_INTERVAL_S) + 1
        self._pod_scrapes[pod] = (phase, turns, -WARMUP_S + phase + turns * SCRAPE_INTERVAL_S)
        self.next_scrape = min(at for _, _, at in self._pod_scrapes.values())

    def _scrape_due(self) -> None:
        """Scrape the pods due now, each lost on its own; a new scrape holds them and every
        other pod's last scraped counters (``staggered`` only)."""
        due = [pod for pod, (_, _, at) in self._pod_scrapes.items() if at <= self.now]
        held = dict(self.scrapes[-1][1]) if self.scrapes else {}
        scraped = False
        for pod in due:
            phase, turns, _ = self._pod_scrapes[pod]
            if self._pod_rng.random() >= LOST_SCRAPE:
                self.flush()
                held[pod] = self.mesh.inbound(pod)
                scraped = True
            jitter = float(self._pod_rng.uniform(-SCRAPE_JITTER_S, SCRAPE_JITTER_S))
            planned = -WARMUP_S + phase + (turns + 1) * SCRAPE_INTERVAL_S
            self._pod_scrapes[pod] = (phase, turns + 1, max(self.now + 1e-6, planned + jitter))
        if scraped:
            self.scrapes.append((self.now, held))
        self.next_scrape = min(at for _, _, at in self._pod_scrapes.values())

    def _traffic(self, seconds: float) -> None:
        """Owe ``seconds`` more of traffic (sent at once if what shapes it changed)."""
        canary_pods = self.canary_pods if self.scenario.canary_serves else ()
        regime = (self.rps(), self.weight, canary_pods)
        if regime != self._regime:
            self.flush()
            self._regime = regime
        self._owed += seconds

    def flush(self) -> None:
        """Send the owed traffic, in one draw, under the regime it was owed in."""
        if self._owed <= 0:
            return
        rps, weight, canary_pods = self._regime
        self.mesh.advance(
            self._owed,
            rps,
            {
                STABLE: Backend(weight=100.0 - weight, pods=STABLE_PODS),
                CANARY: Backend(weight=weight, pods=canary_pods),
            },
        )
        self._owed = 0.0

    def _set_pod(self, pod: str, behaviour: Behaviour) -> None:
        """Change a pod's behaviour from now on: the traffic owed so far is sent first."""
        self.flush()
        self.mesh.set_pod(pod, behaviour)

    def latest(self, at: float) -> Scrape | None:
        """The newest scrape at or before ``at`` (what an instant query returns)."""
        for scrape in reversed(self.scrapes):
            if scrape[0] <= at:
                return scrape
        return None

    def window(self, at: float, seconds: float) -> list[Scrape]:
        """Scrapes in ``[at − seconds, at]`` (what a range selector sees)."""
        return [s for s in self.scrapes if at - seconds <= s[0] <= at]

    def canary_failures(self) -> int:
        """Failed user requests that went to the canary: served by it, or failed on the way
        because no canary pod was there to serve them."""
        self.flush()
        served = sum(
            self.mesh.inbound(p).failures for p, d in self.deployment.items() if d == CANARY
        )
        lost = sum(
            c.failures
            for (_, backend, pod), c in self.mesh.outbound().items()
            if backend == CANARY and pod == NO_POD
        )
        return served + lost


def samples(pods: Mapping[str, Counters], deployment: Mapping[str, str]) -> list[dict[str, object]]:
    """The tick query's result for one scrape, in Prometheus' instant-vector JSON shape."""
    out: list[dict[str, object]] = []
    for pod, counters in pods.items():
        if counters.requests == 0:
            continue
        labels = {"namespace": NAMESPACE, "deployment": deployment[pod], "pod": pod}
        for classification, value in (
            ("success", counters.successes),
            ("failure", counters.failures),
        ):
            out.append(
                {"metric": labels | {"classification": classification}, "value": [0, str(value)]}
            )
        for bound, value in zip(_LE, counters.latency_total.buckets, strict=True):
            out.append({"metric": labels | {"le": bound}, "value": [0, str(value)]})
    return out


_LE = tuple("+Inf" if math.isinf(b) else str(int(b)) for b in LATENCY_BUCKETS_MS)
