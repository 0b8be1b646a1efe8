"""A tape of what the controller saw and decided, for replay on the digital twin.

``canary run --record FILE`` wraps the ports the controller talks through in the recorders
below; each appends one JSON object per call to a :class:`Tape` (one line of FILE), stamped
with the controller's clock:

- ``started``: the settings the tape was recorded under (tick, settle);
- ``snapshot``: the one batched Prometheus answer of a measuring tick (its pods' cumulative
  counters), or the error that stood in for it; ``value``: a custom metric's answer;
- ``reconcile`` / ``reconciled``: a reconcile began (with the measurement it was handed) and
  ended (with its requeue and error) — the order of these and the snapshots is the order in
  which the measuring state changed;
- ``rollout`` / ``policy``: the Rollout and its RolloutPolicy as first read;
- ``workloads`` / ``route``: what the Deployments, Services and route looked like;
- ``status`` / ``weight``: the decisions — each status written (phase, step, weight) and each
  route weight set; ``apply``: each action on the Deployments and Services. A write that
  failed is noted too, marked (:func:`failure_fields`): it lost a race, the API server refused
  it, or the API server failed it.

``bench.replay`` reads a tape back and runs the real ``Controller`` and ``Reconciler`` on it in
virtual time, answering every observation from the tape, and compares the decisions. The
recorders decide nothing and change nothing: each passes the call through and notes it.
What a replay cannot reproduce is not recorded: people's commands given while the release runs
(the Rollout is noted once), hooks, and other Rollouts of the namespace.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from canary.core import evidence
from canary.core.plan import Plan
from canary.core.vocabulary import Action, RouteState
from canary.errors import ApiUnavailable, Conflict, MetricsUnavailable, WriteRefused
from canary.model.rollout import Rollout, RolloutPolicy
from canary.model.status import RolloutStatus
from canary.ports import (
    Arms,
    Clock,
    MetricProvider,
    Ref,
    RolloutStore,
    TrafficRouter,
    Workloads,
    WorkloadState,
)
from canary.runtime.reconciler import Measurement, Reconciles, Result

WORKLOADS: TypeAdapter[WorkloadState] = TypeAdapter(WorkloadState)
ROUTE: TypeAdapter[RouteState | None] = TypeAdapter(RouteState | None)
MEASUREMENT: TypeAdapter[Measurement | None] = TypeAdapter(Measurement | None)


class Tape:
    """Entries appended in the order they happen (from any thread), each as one JSON line
    handed to ``write``."""

    def __init__(self, write: Callable[[str], object], clock: Clock) -> None:
        self._write = write
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: set[tuple[str, str]] = set()

    @classmethod
    def to_file(cls, path: str, clock: Clock) -> Tape:
        """A tape appended to the file at ``path`` (created if absent), one flushed line per
        entry, so that a killed controller leaves only whole lines; it stays open for the
        process' life."""
        file = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 (kept open)
        return cls(lambda line: file.write(f"{line}\n"), clock)

    def note(self, kind: str, **fields: Any) -> None:
        """Append one entry stamped with the clock."""
        with self._lock:
            entry = {
                "at": self._clock.now().isoformat(),
                "kind": kind,
                "thread": threading.current_thread().name,  # whose reconcile a weight is
                **fields,
            }
            self._write(json.dumps(entry, separators=(",", ":")))

    def now(self) -> datetime:
        """The time by the tape's clock."""
        return self._clock.now()

    def first(self, kind: str, key: str) -> bool:
        """Whether ``(kind, key)`` is asked about for the first time (then it is remembered)."""
        with self._lock:
            if (kind, key) in self._seen:
                return False
            self._seen.add((kind, key))
            return True


WriteFailed = (Conflict, WriteRefused, ApiUnavailable)
"""The failures of a write that a tape notes (and a replay repeats)."""


def failure_fields(error: Exception) -> dict[str, Any]:
    """How a failed write is marked on its entry: ``conflict`` (it lost a race), ``refused``
    (the API server's refusal) or ``unavailable`` (the API server failed it)."""
    if isinstance(error, Conflict):
        return {"conflict": True}
    if isinstance(error, WriteRefused):
        return {"refused": str(error)}
    return {"unavailable": str(error)}


def failed(entry: dict[str, Any]) -> bool:
    """Whether a ``status``, ``weight`` or ``apply`` entry notes a write that failed."""
    return bool(entry.get("conflict")) or "refused" in entry or "unavailable" in entry


def pods_json(snapshot: evidence.Snapshot) -> list[list[Any]]:
    """A snapshot as compact rows: ``[namespace, deployment, pod, requests, failures, buckets]``."""
    return [
        [k.namespace, k.deployment, k.pod, c.requests, c.failures, list(c.buckets)]
        for k, c in sorted(snapshot.items())
    ]


def pods_from(rows: Sequence[Sequence[Any]]) -> evidence.Snapshot:
    """The snapshot of :func:`pods_json`'s rows."""
    return {
        evidence.PodKey(ns, deployment, pod): evidence.PodCounters(
            int(requests), int(failures), tuple(int(b) for b in buckets)
        )
        for ns, deployment, pod, requests, failures, buckets in rows
    }


def buckets_json(buckets: Collection[Arms] | None) -> list[str] | None:
    """Whose latency buckets a snapshot asked for, as ``namespace/stable`` (None: all)."""
    return None if buckets is None else sorted(f"{a.namespace}/{a.stable}" for a in buckets)


class RecordingMetrics:
    """``MetricProvider`` that notes every answer of ``inner``."""

    def __init__(self, inner: MetricProvider, tape: Tape) -> None:
        self._inner = inner
        self._tape = tape

    def snapshot(
        self, targets: Sequence[Arms], buckets: Collection[Arms] | None = None
    ) -> evidence.Snapshot:
        """``inner``'s snapshot, noted with whose buckets it asked for (or its
        MetricsUnavailable, noted and raised)."""
        asked, sent = buckets_json(buckets), self._tape.now().isoformat()
        try:
            answer = self._inner.snapshot(targets, buckets)
        except MetricsUnavailable as error:
            self._tape.note("snapshot", error=str(error), buckets=asked, sent=sent)
            raise
        self._tape.note("snapshot", pods=pods_json(answer), buckets=asked, sent=sent)
        return answer

    def value(self, query: str) -> float | None:
        """``inner``'s answer to a custom query, noted."""
        try:
            answer = self._inner.value(query)
        except MetricsUnavailable as error:
            self._tape.note("value", query=query, error=str(error))
            raise
        self._tape.note("value", query=query, value=answer)
        return answer


class RecordingWorkloads:
    """``Workloads`` that notes what ``inner`` observed and the actions applied."""

    def __init__(self, inner: Workloads, tape: Tape) -> None:
        self._inner = inner
        self._tape = tape

    def observe(self, namespace: str, rollout: str, plan: Plan) -> WorkloadState:
        """``inner``'s observation, noted."""
        state = self._inner.observe(namespace, rollout, plan)
        rollout_ref = f"{namespace}/{rollout}"
        self._tape.note(
            "workloads", rollout=rollout_ref, state=WORKLOADS.dump_python(state, mode="json")
        )
        return state

    def apply(self, namespace: str, rollout: str, plan: Plan, action: Action) -> None:
        """``inner`` applies ``action``; noted by its kind once done (or failed, marked)."""
        noted = {"rollout": f"{namespace}/{rollout}", "action": type(action).__name__}
        try:
            self._inner.apply(namespace, rollout, plan, action)
        except WriteFailed as error:
            self._tape.note("apply", **noted, **failure_fields(error))
            raise
        self._tape.note("apply", **noted)


class RecordingRouter:
    """``TrafficRouter`` that notes what ``inner`` observed and each weight set."""

    def __init__(self, inner: TrafficRouter, tape: Tape) -> None:
        self._inner = inner
        self._tape = tape

    def observe(self, namespace: str, plan: Plan) -> RouteState | None:
        """``inner``'s observation, noted."""
        state = self._inner.observe(namespace, plan)
        route = f"{namespace}/{plan.route_name}"
        self._tape.note("route", route=route, state=ROUTE.dump_python(state, mode="json"))
        return state

    def set_weights(self, namespace: str, plan: Plan, canary: int) -> None:
        """``inner`` sets the weight; noted (a failed write marked as such)."""
        route = f"{namespace}/{plan.route_name}"
        try:
            self._inner.set_weights(namespace, plan, canary)
        except WriteFailed as error:
            self._tape.note("weight", route=route, canary=canary, **failure_fields(error))
            raise
        self._tape.note("weight", route=route, canary=canary)


class RecordingStore:
    """``RolloutStore`` that notes each Rollout and policy when first read, and each status
    written (a decision)."""

    def __init__(self, inner: RolloutStore, tape: Tape) -> None:
        self._inner = inner
        self._tape = tape

    def get(self, ref: Ref) -> Rollout | None:
        """``inner``'s Rollout; noted the first time it is found."""
        rollout = self._inner.get(ref)
        if rollout is not None and self._tape.first("rollout", str(ref)):
            body = rollout.model_dump(mode="json", by_alias=True, exclude={"status"})
            self._tape.note("rollout", rollout=str(ref), object=body)
        return rollout

    def list(self, namespace: str | None = None, target: str | None = None) -> Sequence[Rollout]:
        """``inner``'s list (not noted: a replay keeps its own Rollouts)."""
        return self._inner.list(namespace, target=target)

    def policy(self, ref: Ref) -> RolloutPolicy | None:
        """``inner``'s RolloutPolicy; noted the first time it is found."""
        policy = self._inner.policy(ref)
        if policy is not None and self._tape.first("policy", str(ref)):
            body = policy.model_dump(mode="json", by_alias=True)
            self._tape.note("policy", policy=str(ref), object=body)
        return policy

    def write_status(self, rollout: Rollout, status: RolloutStatus) -> None:
        """``inner`` writes the status; noted as a decision (a failed write marked as such)."""
        ref = f"{rollout.metadata.namespace}/{rollout.metadata.name}"
        decided = {
            "rollout": ref,
            "phase": status.phase,
            "step": status.current_step_index,
            "weight": status.canary_weight,
        }
        try:
            self._inner.write_status(rollout, status)
        except WriteFailed as error:
            self._tape.note("status", **decided, **failure_fields(error))
            raise
        self._tape.note("status", **decided)


class RecordingReconciler:
    """Notes where each reconcile begins (with its measurement) and ends (with its result)."""

    def __init__(self, inner: Reconciles, tape: Tape) -> None:
        self._inner = inner
        self._tape = tape

    def reconcile(self, ref: Ref, measurement: Measurement | None = None) -> Result:
        """``inner``'s reconcile, between two notes."""
        given = MEASUREMENT.dump_python(measurement, mode="json")
        self._tape.note("reconcile", rollout=str(ref), measurement=given)
        result = self._inner.reconcile(ref, measurement)
        after = None if result.requeue_after is None else result.requeue_after.total_seconds()
        self._tape.note("reconciled", rollout=str(ref), requeue=after, error=result.error)
        return result


def stamp(at: str) -> datetime:
    """An entry's time."""
    return datetime.fromisoformat(at)
