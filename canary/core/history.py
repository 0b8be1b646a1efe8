"""The promotion history: what a finished release came to, and how much of it to keep.

``outcome`` turns the status of a Rollout that has just reached a terminal phase into a
``Finished`` record (result, reason, duration) with values from small fixed sets, so that a
metric labelled with them keeps a bounded cardinality (called by the reconciler when it writes a
terminal status, read by ``canary.api.metrics``). ``ordered`` sorts Rollouts by creation time
(``canary get``/``history``); ``unlabelled`` and ``expired`` choose the Rollouts retention
labels with their target and deletes (``canary.runtime.retention``). Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from canary.model.rollout import Rollout
from canary.model.status import TERMINAL_PHASES, RolloutStatus, StepStatus

TARGET_LABEL = "canary.dev/target"
"""The label naming a Rollout's target Deployment: ``kubectl get ro -l canary.dev/target=NAME``."""

Result = Literal["promoted", "rolled_back", "aborted", "failed", "superseded"]
Reason = Literal[
    "analysis_passed",
    "promoted_by_person",
    "analysis",
    "no_data",
    "approval_timeout",
    "progress_deadline",
    "metrics_unavailable",
    "promotion_deadline",
    "aborted_by_person",
    "invalid_spec",
    "target_deleted",
    "newer_release",
    "other",
]


_FAILED: dict[str, Reason] = {"InvalidSpec": "invalid_spec", "TargetNotFound": "target_deleted"}
_DEADLINES: dict[str, Reason] = {
    "ProgressDeadlineExceeded": "progress_deadline",
    "NoDataDeadlineExceeded": "no_data",
    "MetricsUnavailableDeadlineExceeded": "metrics_unavailable",
}


@dataclass(frozen=True)
class Finished:
    """How a release ended: the result, its reason, and how long it ran (None if unknown)."""

    result: Result
    reason: Reason
    duration: timedelta | None


def current_step(status: RolloutStatus) -> StepStatus | None:
    """The record of the step the Rollout is at, if it has one yet."""
    index = status.current_step_index
    return status.steps[index] if index < len(status.steps) else None


def _condition(status: RolloutStatus, type_: str) -> tuple[str, str]:
    found = next((c for c in status.conditions if c.type == type_), None)
    return (found.reason, found.message) if found is not None else ("", "")


def _rollback_reason(status: RolloutStatus) -> Reason:
    if any(step.verdict == "Failed" for step in status.steps):
        return "analysis"
    if status.approvals and status.approvals[-1].decision == "TimedOut":
        return "approval_timeout"
    stalled, _ = _condition(status, "Stalled")
    if stalled in _DEADLINES:
        return _DEADLINES[stalled]
    _, message = _condition(status, "Progressing")
    if "not ready" in message:
        return "progress_deadline"
    step = current_step(status)
    if step is not None and step.no_data_since is not None:
        return "no_data"
    return "other"


def outcome(status: RolloutStatus) -> Finished | None:
    """The outcome of a release whose status is terminal; None while it is still running."""
    duration = (
        status.finished_at - status.started_at
        if status.finished_at is not None and status.started_at is not None
        else None
    )
    phase = status.phase
    if phase == "Succeeded":
        by_person = any(a.decision == "Promoted" for a in status.approvals)
        reason: Reason = "promoted_by_person" if by_person else "analysis_passed"
        return Finished("promoted", reason, duration)
    if phase == "RolledBack":
        return Finished("rolled_back", _rollback_reason(status), duration)
    if phase == "Aborted":
        return Finished("aborted", "aborted_by_person", duration)
    if phase == "Superseded":
        return Finished("superseded", "newer_release", duration)
    if phase == "Failed":
        valid, _ = _condition(status, "Valid")
        if _condition(status, "Progressing")[0] == "PromotionDeadlineExceeded":
            return Finished("failed", "promotion_deadline", duration)
        return Finished("failed", _FAILED.get(valid, "other"), duration)
    return None


def target(rollout: Rollout) -> tuple[str, str]:
    """The (namespace, Deployment) a Rollout releases."""
    return rollout.metadata.namespace, rollout.spec.target_ref.name


def ordered(rollouts: Sequence[Rollout]) -> list[Rollout]:
    """Oldest first, by creation time (then namespace and name; unknown times first)."""
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(
        rollouts,
        key=lambda r: (
            r.metadata.creation_timestamp or epoch,
            r.metadata.namespace,
            r.metadata.name,
        ),
    )


def unlabelled(rollouts: Sequence[Rollout]) -> list[Rollout]:
    """The finished Rollouts whose ``canary.dev/target`` label is missing or wrong: those that
    finished before the controller labelled Rollouts with their first status write. An active
    one is left to that write, so a label never races a reconcile writing its status. (Every
    target name fits a label value: the model bounds it to 56 characters, for the derived
    names.)"""
    return [
        r
        for r in rollouts
        if r.status.phase in TERMINAL_PHASES
        and r.metadata.labels.get(TARGET_LABEL) != r.spec.target_ref.name
    ]


def expired(rollouts: Sequence[Rollout], keep: int) -> list[Rollout]:
    """The finished Rollouts beyond the ``keep`` newest of each target, except the target's
    last Succeeded one (undo needs it). Active Rollouts are never expired."""
    by_target: dict[tuple[str, str], list[Rollout]] = {}
    for rollout in ordered(rollouts):
        if rollout.status.phase in TERMINAL_PHASES:
            by_target.setdefault(target(rollout), []).append(rollout)
    doomed: list[Rollout] = []
    for finished in by_target.values():
        newest_first = finished[::-1]
        succeeded = next((r for r in newest_first if r.status.phase == "Succeeded"), None)
        doomed += [r for r in newest_first[keep:] if r is not succeeded]
    return doomed
