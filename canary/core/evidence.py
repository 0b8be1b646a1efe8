"""Per-tick evidence from raw proxy counters: Prometheus samples in, ``Arm`` deltas out.

Who calls it: the controller's metrics adapter (and the gate benchmark, fed from simulated
counters) once per tick. The adapter runs ONE instant query for every rollout at once::

    sum by (namespace, deployment, pod, classification) (response_total{direction="inbound"})
    or
    sum by (namespace, deployment, pod, le) (response_latency_ms_bucket{direction="inbound"})
      < on (namespace, deployment, pod) group_left () <the same, le="+Inf" only>
    or
    <the same, le="+Inf" only>

(``canary.core.promql.counters_query`` writes it) and hands the JSON ``result`` list
(``[{"metric": {labels}, "value": [ts, "123"]}, ...]``) to :func:`parse`. :func:`advance` turns
the previous tick's baseline and the new snapshot into the counts each Deployment served
*between the two ticks*. The machine adds those to the current step's ``Arm``s.

Why raw cumulative counters and not ``increase()``: ``increase()`` extrapolates to the window's
edges and returns fractions, double-counts or loses requests at window boundaries, and hides
resets inside its own heuristics. Differencing the counters ourselves counts every request
exactly once, with these rules:

- **Counter reset** (any counter of a pod went down: the proxy restarted): the pod's current
  values are the delta (everything it counted since it restarted).
- **New pod** (not in the baseline): everything it counted is new — except on the very first
  snapshot after the controller starts (no baseline), which only sets the baseline.
- **Vanished pod / scrape gap** (in the baseline, not in the snapshot): contributes nothing now;
  its last values stay in the baseline so that when it reappears only the difference counts.
  It is forgotten after :data:`KEEP_ABSENT` snapshots without it.
- **NaN, infinite, negative or impossibly large sample values** (above :data:`MAX_COUNTER`, so no
  sum of them can overflow), unknown ``le`` bounds, samples that are not objects or lack the
  needed labels: ignored. A pod whose ``response_total`` samples are all missing is treated as
  absent.
- **Buckets not asked for.** The tick's query asks for the latency buckets of only some
  Deployments (``canary.core.measuring.bucketed``: those whose window may begin or end on it),
  so a pod may come with its requests and no buckets: it serves no buckets on that tick, and
  its last buckets stay in the baseline, so that the next snapshot with them counts every
  response since then, once. A pod whose baseline has no buckets (none asked for since it was
  first seen) serves none either when they come: they become its baseline (they count its
  lifetime). A counter reset without buckets drops the kept ones (they are from before it).
- **Missing buckets.** The query leaves out every bucket equal to the pod's ``+Inf`` bucket, so
  buckets missing above the highest finite one present take the ``+Inf`` count; a bucket missing
  between two present ones (no answer to canary's query has one) takes the value below it.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache, lru_cache

from canary.core.judge import Arm
from canary.model.linkerd import LATENCY_BUCKETS_MS

KEEP_ABSENT = 40
"""Snapshots a vanished pod's counters are kept for (10 minutes at a 15 s tick: Linkerd's own
idle-series expiry)."""

MAX_COUNTER = float(2**64)
"""The proxies' counters are 64-bit: a larger value is not a counter."""

_N = len(LATENCY_BUCKETS_MS)


@dataclass(frozen=True, order=True)
class PodKey:
    """One meshed pod of one Deployment."""

    namespace: str
    deployment: str
    pod: str

    @property
    def target(self) -> tuple[str, str]:
        """``(namespace, deployment)``: what the deltas are summed by."""
        return (self.namespace, self.deployment)


@dataclass(frozen=True)
class PodCounters:
    """A pod's cumulative inbound counters: requests, failures, and cumulative ``le`` buckets
    (``buckets[i]`` counts responses at most ``LATENCY_BUCKETS_MS[i]``; empty when unknown).
    ``absent`` counts consecutive snapshots in which the pod was missing."""

    requests: int = 0
    failures: int = 0
    buckets: tuple[int, ...] = ()
    absent: int = 0

    def went_down(self, earlier: PodCounters) -> bool:
        """Whether any counter is below its earlier value (the proxy restarted)."""
        if self.requests < earlier.requests or self.failures < earlier.failures:
            return True
        if len(self.buckets) == len(earlier.buckets):
            return any(a < b for a, b in zip(self.buckets, earlier.buckets, strict=True))
        return False


Snapshot = Mapping[PodKey, PodCounters]


def _value(sample: Mapping[str, object]) -> float | None:
    pair = sample.get("value")
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        return None
    try:
        number = float(str(pair[1]))
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0 or number > MAX_COUNTER:
        return None
    return number


@lru_cache(maxsize=64)
def _bound_index(le: str) -> int | None:
    """The index of ``le`` in the proxies' bucket bounds (None: not one of them). Cached: an
    answer repeats the same 26 strings on every pod, at 1000 Rollouts 52,000 times."""
    try:
        bound = float(le)
    except ValueError:
        return None
    for i, known in enumerate(LATENCY_BUCKETS_MS):
        if bound == known:
            return i
    return None


def parse(result: Iterable[Mapping[str, object]]) -> dict[PodKey, PodCounters]:
    """A snapshot from the samples of the tick's query (Prometheus' instant-vector ``result``).

    Runs once per sample of the tick's answer (about 28,000 at 1000 Rollouts), so it keys pods by
    their plain ``(namespace, deployment, pod)`` tuple and makes each ``PodKey`` once."""
    successes: dict[tuple[str, str, str], float] = {}
    failures: dict[tuple[str, str, str], float] = {}
    buckets: dict[tuple[str, str, str], list[float | None]] = {}
    for sample in result:
        if not isinstance(sample, Mapping):
            continue
        labels = sample.get("metric")
        if not isinstance(labels, Mapping):
            continue
        namespace, deployment, pod = (
            labels.get("namespace"),
            labels.get("deployment"),
            labels.get("pod"),
        )
        if not (
            isinstance(namespace, str)
            and namespace
            and isinstance(deployment, str)
            and deployment
            and isinstance(pod, str)
            and pod
        ):
            continue
        value = _value(sample)
        if value is None:
            continue
        key = (namespace, deployment, pod)
        classification = labels.get("classification")
        if classification == "failure":
            failures[key] = failures.get(key, 0.0) + value
        elif classification == "success":
            successes[key] = successes.get(key, 0.0) + value
        elif isinstance(le := labels.get("le"), str) and (index := _bound_index(le)) is not None:
            if (values := buckets.get(key)) is None:
                values = buckets[key] = [None] * _N
            values[index] = value
    snapshot: dict[PodKey, PodCounters] = {}
    for key in successes.keys() | failures.keys():
        failed = round(failures.get(key, 0.0))
        snapshot[PodKey(*key)] = PodCounters(
            requests=round(successes.get(key, 0.0)) + failed,
            failures=failed,
            buckets=_cumulative(buckets.get(key)),
        )
    return snapshot


def _cumulative(values: list[float | None] | None) -> tuple[int, ...]:
    """Cumulative bucket counts, kept non-decreasing: the buckets missing above the highest
    finite one present hold the ``+Inf`` count (the query leaves out the buckets equal to it);
    any other gap takes the bucket below."""
    if values is None:
        return ()
    total, highest = values[-1], len(values) - 2
    while highest >= 0 and values[highest] is None:
        highest -= 1
    out: list[int] = []
    running = 0
    for index, found in enumerate(values):
        value = total if found is None and index > highest else found
        if value is not None:
            running = max(running, round(value))
        out.append(running)
    return tuple(out)


def _delta(now: PodCounters, before: PodCounters | None) -> Arm:
    if (
        before is not None
        and now.requests == before.requests
        and now.failures == before.failures
        and now.buckets == before.buckets
    ):  # the usual case between two scrapes of a pod: nothing new (and nothing to difference)
        return _nothing(len(now.buckets))
    if before is None or now.went_down(before):
        return _arm(now.requests, now.failures, now.buckets)
    cumulative: tuple[int, ...] = ()  # buckets not asked for, or their baseline unknown
    if len(before.buckets) == len(now.buckets):
        cumulative = tuple(a - b for a, b in zip(now.buckets, before.buckets, strict=True))
    return _arm(now.requests - before.requests, now.failures - before.failures, cumulative)


@cache
def _nothing(width: int) -> Arm:
    """What a pod whose counters did not move served: no requests, and ``width`` empty
    buckets (as differencing equal counters gives)."""
    return Arm(buckets=(0,) * width)


def _arm(requests: int, failures: int, cumulative: tuple[int, ...]) -> Arm:
    if not cumulative:
        return Arm(requests=requests, failures=min(failures, requests))
    per_bucket = tuple(
        max(c - p, 0) for c, p in zip(cumulative, (0, *cumulative[:-1]), strict=True)
    )
    return Arm(requests=requests, failures=min(failures, requests), buckets=per_bucket)


def advance(
    baseline: Snapshot | None, current: Snapshot
) -> tuple[dict[PodKey, PodCounters], dict[tuple[str, str], Arm]]:
    """The next baseline, and what each ``(namespace, deployment)`` served since ``baseline``.

    ``baseline`` is None on the first snapshot after the controller starts: it only becomes the
    baseline, and every Deployment in it gets an empty ``Arm``."""
    deltas: dict[tuple[str, str], Arm] = {}
    for key in sorted(current):
        now = current[key]
        if baseline is None:
            deltas.setdefault(key.target, Arm())
            continue
        arm = _delta(now, baseline.get(key))
        deltas[key.target] = deltas[key.target] + arm if key.target in deltas else arm
    kept = {key: _kept(now, (baseline or {}).get(key)) for key, now in current.items()}
    for key, before in (baseline or {}).items():
        if key not in current and before.absent + 1 < KEEP_ABSENT:
            kept[key] = replace(before, absent=before.absent + 1)
    return kept, deltas


def _kept(now: PodCounters, before: PodCounters | None) -> PodCounters:
    """What the baseline keeps of a pod in the snapshot: its counters, with its last buckets
    when the snapshot has none (not asked for) and its counters did not go down."""
    if not now.buckets and before is not None and before.buckets and not now.went_down(before):
        return replace(now, buckets=before.buckets, absent=0)
    return now if now.absent == 0 else replace(now, absent=0)
