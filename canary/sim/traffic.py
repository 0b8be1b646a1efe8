"""The pure traffic model: simulated requests through a Linkerd mesh, in virtual time.

Who calls it: the real-time mesh emulator (``canary.emulator``), which advances it on a timer with
the live route weights and serves its counters as proxy ``/metrics``; and the gate benchmark
(BENCHMARK.md §1), which advances it in virtual time and reads the counters the way Prometheus
would scrape them. It must stay pure: no clock, no I/O, no logging — time only moves when a
caller says ``advance(seconds, ...)``, and the same seed gives the same counters.

What it models. Requests arrive as a Poisson process at ``rps``. Each request goes to a backend
(a Service) with probability proportional to the backend's weight, then to one of that backend's
ready pods uniformly. The pod's :class:`Behaviour` decides the outcome: it fails with probability
``error_rate`` (HTTP ``error_status``, 500 by default), and its latency is log-normal with the
given median and p99 — or, for failures when ``fast_fail_ms`` is set, exactly ``fast_fail_ms``.
A gRPC pod (``grpc=True``) answers every request with HTTP 200 and a ``grpc-status``: 0 for a
success, ``grpc_error_status`` (2, UNKNOWN, by default) for a failure. A caller may say which
paths its requests ask for (``paths``: path → relative share); a pod may fail some paths at their
own rate (``path_error_rates``), every other path at ``error_rate``. A request then fails with
probability ``Σ share(path) × rate(path)``, the rate of the mixture (the proxy's inbound series
carry no path, so this is all that shows).
Latencies are truncated to whole milliseconds, as the proxy does, so a latency ``v`` lands in
the bucket ``le=b`` iff ``floor(v) <= b``. A request sent to a backend that has no ready pod
fails at the client's proxy with 503 and reaches no pod; with every weight zero the route answers
500 (Gateway API), recorded on the client under backend ``""``.

Counters are cumulative from the moment a pod is added (a replaced pod is a new name and starts
from zero, like a restarted proxy). Inbound counters are per pod; outbound counters are per
(client, backend, pod) — what the load generator's own proxy records per endpoint — with pod
``""`` for requests that failed at the client and reached no pod.

Speed comes from sampling in aggregate: per call, one Poisson draw for the count, one
multinomial over backends, one over each backend's pods, one binomial for failures and one
multinomial over the 26 latency buckets per outcome — never a loop over single requests.

It is a little over 400 lines because this docstring and its example are the model's
specification; the code itself is well under.

Example::

    from canary.sim.traffic import Backend, Behaviour, Mesh

    mesh = Mesh(seed=42)
    mesh.set_pod("podinfo-stable-0", Behaviour(error_rate=0.001, latency_p50_ms=20))
    mesh.set_pod("podinfo-canary-0", Behaviour(error_rate=0.05, latency_p50_ms=20))
    for _ in range(60):                       # one virtual minute, one-second steps
        mesh.advance(1.0, rps=100, backends={
            "podinfo-stable": Backend(weight=80, pods=("podinfo-stable-0",)),
            "podinfo-canary": Backend(weight=20, pods=("podinfo-canary-0",)),
        })
    canary = mesh.inbound("podinfo-canary-0")
    canary.requests, canary.failures          # about 1200 and 60
    canary.latency_total.buckets              # 26 cumulative counts, LATENCY_BUCKETS_MS order
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from canary.model.linkerd import LATENCY_BUCKETS_MS

Z_99 = 2.3263478740408408
"""The standard normal quantile at 0.99: ``p99 = median · exp(Z_99 · σ)`` for a log-normal."""

SUCCESS_STATUS = 200
UNAVAILABLE_STATUS = 503
"""What a client proxy answers when the chosen backend has no ready endpoint."""
NO_ROUTE_STATUS = 500
"""What a route answers when every backend's weight is zero (Gateway API)."""
NO_BACKEND = ""
"""The backend key under which :data:`NO_ROUTE_STATUS` answers are recorded."""
NO_POD = ""
"""The pod key of outbound counters for requests that failed at the client."""

_BOUNDS = LATENCY_BUCKETS_MS
_N_BUCKETS = len(_BOUNDS)
_LAST_FINITE_MS = int(_BOUNDS[-2])

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


GRPC_OK = 0
GRPC_FAILURE_CODES = frozenset({2, 4, 7, 13, 14, 15})
"""gRPC statuses Linkerd classifies as failures (UNKNOWN, DEADLINE_EXCEEDED, PERMISSION_DENIED,
INTERNAL, UNAVAILABLE, DATA_LOSS); every other code, like any HTTP status below 500, is a
success."""


def is_failure(status_code: int) -> bool:
    """Linkerd's classification of an HTTP response: 5xx is a failure, anything else a success."""
    return 500 <= status_code <= 599


def is_grpc_failure(grpc_status: int) -> bool:
    """Linkerd's classification of a gRPC response by its ``grpc-status``."""
    return grpc_status in GRPC_FAILURE_CODES


@dataclass(frozen=True)
class Behaviour:
    """How one pod answers: error probability, latency distribution, and fast failures.

    ``latency_p50_ms``/``latency_p99_ms`` define a log-normal; equal values mean a constant
    latency. ``fast_fail_ms`` (``None``: failures take as long as successes) is the latency of
    every failed response. ``error_status`` is the 5xx status of a failure. A ``grpc`` pod
    answers HTTP 200 with ``grpc-status`` 0, or ``grpc_error_status`` (1–16) for a failure.
    ``path_error_rates`` are ``(path, probability)`` pairs: the error rate of requests for that
    path (other paths fail at ``error_rate``).
    """

    error_rate: float = 0.0
    latency_p50_ms: float = 10.0
    latency_p99_ms: float = 50.0
    fast_fail_ms: float | None = None
    error_status: int = 500
    grpc: bool = False
    grpc_error_status: int = 2
    path_error_rates: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"error_rate must be between 0 and 1, got {self.error_rate}")
        if not (math.isfinite(self.latency_p50_ms) and self.latency_p50_ms > 0):
            raise ValueError(f"latency_p50_ms must be a positive number, got {self.latency_p50_ms}")
        if not (math.isfinite(self.latency_p99_ms) and self.latency_p99_ms >= self.latency_p50_ms):
            raise ValueError(
                f"latency_p99_ms must be at least latency_p50_ms ({self.latency_p50_ms}), "
                f"got {self.latency_p99_ms}"
            )
        if self.fast_fail_ms is not None and not (
            math.isfinite(self.fast_fail_ms) and self.fast_fail_ms >= 0
        ):
            raise ValueError(f"fast_fail_ms must be a non-negative number, got {self.fast_fail_ms}")
        if not is_failure(self.error_status):
            raise ValueError(f"error_status must be a 5xx status, got {self.error_status}")
        if not 1 <= self.grpc_error_status <= 16:
            raise ValueError(
                "grpc_error_status must be a gRPC status from 1 to 16, "
                f"got {self.grpc_error_status}"
            )
        for path, rate in self.path_error_rates:
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"the error rate of {path} must be between 0 and 1, got {rate}")

    def failure_rate(self, paths: Sequence[tuple[str, float]] = ()) -> float:
        """The probability that a request fails when requests ask for ``paths`` in the given
        shares (normalised; none given: every request fails at ``error_rate``)."""
        total = sum(share for _, share in paths)
        if total <= 0:
            return self.error_rate
        rates = dict(self.path_error_rates)
        mixed = sum(share * rates.get(path, self.error_rate) for path, share in paths) / total
        return min(1.0, max(0.0, mixed))


@dataclass(frozen=True)
class Backend:
    """One backend of a route: its relative weight and the names of its ready pods."""

    weight: float
    pods: Sequence[str] = ()


@dataclass(frozen=True)
class Histogram:
    """A latency histogram: ``buckets[i]`` counts latencies ``<= LATENCY_BUCKETS_MS[i]``.

    Counts are cumulative over the bounds (Prometheus ``le`` semantics), so ``buckets[-1]``
    (``+Inf``) is the number of observations. ``sum_ms`` is the sum of the truncated latencies.
    """

    buckets: tuple[int, ...]
    sum_ms: int

    @property
    def count(self) -> int:
        """Number of observations."""
        return self.buckets[-1]


EMPTY_HISTOGRAM = Histogram(buckets=(0,) * _N_BUCKETS, sum_ms=0)


@dataclass(frozen=True)
class Counters:
    """Cumulative counters of one proxy series group: requests, responses and latency.

    ``responses`` and ``latency`` are keyed by HTTP status code; the classification of a status
    is :func:`is_failure`. ``grpc`` counts, by ``grpc-status``, the responses of gRPC pods (all of
    them HTTP 200, so also counted in ``responses[200]``), classified by :func:`is_grpc_failure`.
    """

    requests: int
    responses: Mapping[int, int]
    latency: Mapping[int, Histogram]
    grpc: Mapping[int, int] = field(default_factory=dict)

    @property
    def failures(self) -> int:
        """Responses classified as failures (HTTP 5xx, or a gRPC failure status)."""
        http = sum(n for status, n in self.responses.items() if is_failure(status))
        return http + sum(n for code, n in self.grpc.items() if is_grpc_failure(code))

    @property
    def successes(self) -> int:
        """Responses classified as successes."""
        return sum(self.responses.values()) - self.failures

    @property
    def latency_total(self) -> Histogram:
        """The latency histogram summed over status codes (what Flagger's p99 query sees)."""
        if not self.latency:
            return EMPTY_HISTOGRAM
        buckets = [
            sum(col) for col in zip(*(h.buckets for h in self.latency.values()), strict=True)
        ]
        return Histogram(tuple(buckets), sum(h.sum_ms for h in self.latency.values()))


EMPTY_COUNTERS = Counters(requests=0, responses={}, latency={})


@dataclass(frozen=True)
class _Distribution:
    """Per-bucket probabilities and mean truncated latency of one latency distribution."""

    probs: FloatArray
    mean_ms: FloatArray


def _normal_cdf(z: FloatArray) -> FloatArray:
    erf = np.array([math.erf(x) for x in (z / math.sqrt(2.0)).tolist()], dtype=np.float64)
    return 0.5 * (1.0 + erf)


@lru_cache(maxsize=1024)
def _lognormal(p50_ms: float, p99_ms: float) -> _Distribution:
    """Bucket probabilities of ``floor(v)`` for log-normal ``v``, and each bucket's mean."""
    mu = math.log(p50_ms)
    sigma = math.log(p99_ms / p50_ms) / Z_99
    if sigma == 0.0:
        return _constant(p50_ms)
    # P(floor(v) = k) = F(k + 1) - F(k) for every whole millisecond k up to the last finite bound.
    edges = np.arange(0, _LAST_FINITE_MS + 2, dtype=np.float64)
    with np.errstate(divide="ignore"):
        z = (np.log(edges) - mu) / sigma
    cdf = _normal_cdf(z)
    pmf = np.diff(cdf)
    ks = np.arange(0, _LAST_FINITE_MS + 1, dtype=np.float64)
    probs = np.empty(_N_BUCKETS, dtype=np.float64)
    mean = np.empty(_N_BUCKETS, dtype=np.float64)
    lo = 0
    for i, bound in enumerate(_BOUNDS[:-1]):
        hi = int(bound) + 1
        p = float(pmf[lo:hi].sum())
        probs[i] = p
        mean[i] = float((pmf[lo:hi] * ks[lo:hi]).sum()) / p if p > 0 else bound
        lo = hi
    tail = max(0.0, 1.0 - float(cdf[-1]))
    probs[-1] = tail
    # E[v | v >= L] from the log-normal partial expectation, less half a millisecond of truncation.
    floor_ms = float(_LAST_FINITE_MS + 1)
    if tail > 0:
        z_tail = (mu + sigma * sigma - math.log(floor_ms)) / sigma
        partial = math.exp(mu + sigma * sigma / 2) * 0.5 * math.erfc(-z_tail / math.sqrt(2.0))
        mean[-1] = max(floor_ms, partial / tail - 0.5)
    else:
        mean[-1] = floor_ms
    probs = np.clip(probs, 0.0, None)
    probs /= probs.sum()
    return _Distribution(probs=probs, mean_ms=mean)


@lru_cache(maxsize=1024)
def _constant(latency_ms: float) -> _Distribution:
    """Every observation is ``latency_ms``, truncated to whole milliseconds."""
    whole = math.floor(latency_ms)
    index = next(i for i, bound in enumerate(_BOUNDS) if whole <= bound)
    probs = np.zeros(_N_BUCKETS, dtype=np.float64)
    probs[index] = 1.0
    return _Distribution(probs=probs, mean_ms=np.full(_N_BUCKETS, float(whole)))


@dataclass
class _Series:
    """Mutable cumulative counters of one proxy's series group."""

    requests: int = 0
    responses: dict[int, int] = field(default_factory=dict)
    buckets: dict[int, IntArray] = field(default_factory=dict)
    sums: dict[int, float] = field(default_factory=dict)
    grpc: dict[int, int] = field(default_factory=dict)

    def observe(
        self, status: int, counts: IntArray, dist: _Distribution, grpc: int | None = None
    ) -> None:
        total = int(counts.sum())
        self.responses[status] = self.responses.get(status, 0) + total
        if grpc is not None:
            self.grpc[grpc] = self.grpc.get(grpc, 0) + total
        if status in self.buckets:
            self.buckets[status] += counts
        else:
            self.buckets[status] = counts.copy()
        self.sums[status] = self.sums.get(status, 0.0) + float(counts @ dist.mean_ms)

    def snapshot(self) -> Counters:
        return Counters(
            requests=self.requests,
            responses=dict(self.responses),
            latency={
                status: Histogram(
                    buckets=tuple(np.cumsum(counts).tolist()),
                    sum_ms=math.floor(self.sums[status]),
                )
                for status, counts in self.buckets.items()
            },
            grpc=dict(self.grpc),
        )


@dataclass
class _Pod:
    behaviour: Behaviour
    success: _Distribution
    failure: _Distribution
    inbound: _Series = field(default_factory=_Series)


def _distributions(behaviour: Behaviour) -> tuple[_Distribution, _Distribution]:
    success = _lognormal(float(behaviour.latency_p50_ms), float(behaviour.latency_p99_ms))
    if behaviour.fast_fail_ms is None:
        return success, success
    return success, _constant(float(behaviour.fast_fail_ms))


class Mesh:
    """Pods with behaviours and their proxies' cumulative counters, advanced in virtual time."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.Generator(np.random.PCG64(seed))
        self._pods: dict[str, _Pod] = {}
        self._outbound: dict[tuple[str, str, str], _Series] = {}
        self._by_client: dict[str, dict[tuple[str, str], _Series]] = {}
        """The same series by client, then (backend, pod): one client's are read without
        touching every other client's (the emulator serves thousands of load generators)."""

    def set_pod(self, name: str, behaviour: Behaviour) -> None:
        """Add a pod (counters from zero) or change an existing pod's behaviour (counters kept)."""
        success, failure = _distributions(behaviour)
        pod = self._pods.get(name)
        if pod is None:
            self._pods[name] = _Pod(behaviour, success, failure)
        else:
            pod.behaviour, pod.success, pod.failure = behaviour, success, failure

    def remove_pod(self, name: str) -> None:
        """Forget a pod and its counters, and the clients' counters of requests sent to it
        (as a client proxy drops the metrics of an endpoint that is gone); adding the name
        again starts from zero."""
        self._pods.pop(name, None)
        for client, series in self._by_client.items():
            for backend, pod in [k for k in series if k[1] == name]:
                del series[backend, pod]
                del self._outbound[client, backend, pod]

    def pod_names(self) -> list[str]:
        """Names of every pod the mesh knows."""
        return list(self._pods)

    def behaviour(self, name: str) -> Behaviour:
        """The current behaviour of a pod."""
        return self._pods[name].behaviour

    def advance(
        self,
        seconds: float,
        rps: float,
        backends: Mapping[str, Backend],
        client: str = "client",
        paths: Sequence[tuple[str, float]] = (),
    ) -> int:
        """Send ``rps × seconds`` Poisson-distributed requests from ``client`` through a route,
        asking for ``paths`` in the given relative shares (none: paths do not matter).

        Every pod a backend names must have been added with :meth:`set_pod`. Returns the number of
        requests sent.
        """
        if seconds < 0 or rps < 0:
            raise ValueError(f"seconds and rps must be non-negative, got {seconds} and {rps}")
        rng = self._rng
        n = int(rng.poisson(rps * seconds))
        if n == 0:
            return 0
        names = list(backends)
        weights = np.array([backends[b].weight for b in names], dtype=np.float64)
        if (weights < 0).any() or not np.isfinite(weights).all():
            raise ValueError(f"backend weights must be finite and non-negative, got {weights}")
        total = weights.sum()
        if total <= 0:
            self._fail_at_client(client, NO_BACKEND, n, NO_ROUTE_STATUS)
            return n
        shares = rng.multinomial(n, weights / total).tolist() if len(names) > 1 else [n]
        for backend_name, count in zip(names, shares, strict=True):
            if count:
                self._send(client, backend_name, backends[backend_name].pods, count, paths)
        return n

    def _send(
        self,
        client: str,
        backend: str,
        pods: Sequence[str],
        n: int,
        paths: Sequence[tuple[str, float]],
    ) -> None:
        if not pods:
            self._fail_at_client(client, backend, n, UNAVAILABLE_STATUS)
            return
        per_pod: list[int]
        if len(pods) > 1:
            per_pod = self._rng.multinomial(n, np.full(len(pods), 1.0 / len(pods))).tolist()
        else:
            per_pod = [n]
        for name, count in zip(pods, per_pod, strict=True):
            if count:
                out = self._outbound_series(client, backend, name)
                self._serve(self._pods[name], count, out, paths)

    def _serve(self, pod: _Pod, n: int, out: _Series, paths: Sequence[tuple[str, float]]) -> None:
        rng = self._rng
        behaviour = pod.behaviour
        pod.inbound.requests += n
        out.requests += n
        rate = behaviour.failure_rate(paths)
        failed = int(rng.binomial(n, rate)) if rate > 0 else 0
        ok = n - failed
        grpc = behaviour.grpc
        if ok:
            counts = rng.multinomial(ok, pod.success.probs)
            pod.inbound.observe(SUCCESS_STATUS, counts, pod.success, GRPC_OK if grpc else None)
            out.observe(SUCCESS_STATUS, counts, pod.success, GRPC_OK if grpc else None)
        if failed:
            counts = rng.multinomial(failed, pod.failure.probs)
            status = SUCCESS_STATUS if grpc else behaviour.error_status
            code = behaviour.grpc_error_status if grpc else None
            pod.inbound.observe(status, counts, pod.failure, code)
            out.observe(status, counts, pod.failure, code)

    def _fail_at_client(self, client: str, backend: str, n: int, status: int) -> None:
        out = self._outbound_series(client, backend, NO_POD)
        out.requests += n
        counts = np.zeros(_N_BUCKETS, dtype=np.int64)
        counts[0] = n
        out.observe(status, counts, _constant(0.0))

    def _outbound_series(self, client: str, backend: str, pod: str) -> _Series:
        key = (client, backend, pod)
        series = self._outbound.get(key)
        if series is None:
            series = self._outbound[key] = _Series()
            self._by_client.setdefault(client, {})[backend, pod] = series
        return series

    def inbound(self, pod: str) -> Counters:
        """Cumulative inbound counters of one pod's proxy (zero for a pod that served nothing)."""
        return self._pods[pod].inbound.snapshot()

    def inbound_all(self) -> dict[str, Counters]:
        """Cumulative inbound counters of every pod, by pod name."""
        return {name: pod.inbound.snapshot() for name, pod in self._pods.items()}

    def outbound(self) -> dict[tuple[str, str, str], Counters]:
        """Cumulative outbound counters by ``(client, backend, pod)``, as the client's proxy
        counts them (pod :data:`NO_POD` for requests that failed at the client)."""
        return {key: series.snapshot() for key, series in self._outbound.items()}

    def outbound_of(self, client: str) -> dict[tuple[str, str], Counters]:
        """One client's cumulative outbound counters by ``(backend, pod)``."""
        found = self._by_client.get(client, {})
        return {key: series.snapshot() for key, series in found.items()}
