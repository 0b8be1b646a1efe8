"""history.outcome names how a release ended with a few fixed words, from its status alone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from canary.core import history
from canary.model.rollout import Rollout
from canary.model.status import RolloutStatus

T0 = "2026-11-21T08:00:00Z"
T1 = "2026-11-21T08:10:00Z"


def _status(phase: str, **fields: Any) -> RolloutStatus:
    return RolloutStatus.model_validate({"phase": phase, **fields})


def _step(verdict: str = "Running", **fields: Any) -> dict[str, Any]:
    return {"index": 0, "startedAt": T0, "verdict": verdict, **fields}


def _progressing(message: str) -> dict[str, Any]:
    return {
        "type": "Progressing",
        "status": "False",
        "reason": "RolledBack",
        "message": message,
        "lastTransitionTime": T1,
    }


def _stalled(reason: str) -> dict[str, Any]:
    return {"type": "Stalled", "status": "True", "reason": reason, "lastTransitionTime": T1}


@pytest.mark.parametrize(
    ("status", "result", "reason"),
    [
        (_status("Succeeded"), "promoted", "analysis_passed"),
        (
            _status("Succeeded", approvals=[{"gate": "g", "decision": "Promoted", "at": T1}]),
            "promoted",
            "promoted_by_person",
        ),
        (_status("RolledBack", steps=[_step("Failed")]), "rolled_back", "analysis"),
        (
            _status("RolledBack", approvals=[{"gate": "g", "decision": "TimedOut", "at": T1}]),
            "rolled_back",
            "approval_timeout",
        ),
        (
            _status("RolledBack", conditions=[_progressing("canary pods not ready after 0:10:00")]),
            "rolled_back",
            "progress_deadline",
        ),
        (_status("RolledBack", steps=[_step(noDataSince=T0)]), "rolled_back", "no_data"),
        (
            _status("RolledBack", conditions=[_stalled("MetricsUnavailableDeadlineExceeded")]),
            "rolled_back",
            "metrics_unavailable",
        ),
        (
            _status("RolledBack", conditions=[_stalled("ProgressDeadlineExceeded")]),
            "rolled_back",
            "progress_deadline",
        ),
        (
            _status(
                "Failed",
                conditions=[{**_progressing("stuck"), "reason": "PromotionDeadlineExceeded"}],
            ),
            "failed",
            "promotion_deadline",
        ),
        (_status("RolledBack", steps=[_step()]), "rolled_back", "other"),
        (_status("RolledBack", currentStepIndex=3), "rolled_back", "other"),
        (_status("Aborted"), "aborted", "aborted_by_person"),
        (_status("Superseded"), "superseded", "newer_release"),
        (
            _status(
                "Failed",
                conditions=[
                    {
                        "type": "Valid",
                        "status": "False",
                        "reason": "InvalidSpec",
                        "lastTransitionTime": T1,
                    }
                ],
            ),
            "failed",
            "invalid_spec",
        ),
        (_status("Failed"), "failed", "other"),
    ],
)
def test_each_terminal_phase_has_a_result_and_a_reason(
    status: RolloutStatus, result: str, reason: str
) -> None:
    """Terminal statuses map to (result, reason) from the fixed vocabulary."""
    finished = history.outcome(status)
    assert finished is not None
    assert (finished.result, finished.reason) == (result, reason)


def test_duration_runs_from_start_to_finish_when_both_are_known() -> None:
    """The duration is finishedAt − startedAt, None when either is missing."""
    done = history.outcome(_status("Succeeded", startedAt=T0, finishedAt=T1))
    assert done is not None
    assert done.duration == timedelta(minutes=10)
    unknown = history.outcome(_status("Succeeded", finishedAt=T1))
    assert unknown is not None
    assert unknown.duration is None


def test_a_running_release_has_no_outcome() -> None:
    """Active phases have no outcome yet."""
    assert history.outcome(_status("Progressing")) is None


def _rollout(
    name: str, phase: str, minute: int | None, target: str = "web", ns: str = "t"
) -> Rollout:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if minute is not None:
        meta["creationTimestamp"] = f"2026-11-21T08:{minute:02d}:00Z"
    return Rollout.model_validate(
        {
            "metadata": meta,
            "spec": {"targetRef": {"name": target}, "release": {"images": {"c": "i:1"}}},
            "status": {"phase": phase},
        }
    )


def test_rollouts_are_ordered_by_creation_time() -> None:
    """Oldest first; unknown creation times first; ties by namespace and name."""
    rollouts = [
        _rollout("c", "Succeeded", 5),
        _rollout("b", "Succeeded", None),
        _rollout("a", "Succeeded", 5),
        _rollout("d", "Succeeded", 1),
    ]
    assert [r.metadata.name for r in history.ordered(rollouts)] == ["b", "d", "a", "c"]


def test_retention_keeps_the_newest_finished_and_the_last_success_per_target() -> None:
    """Beyond the newest N finished per target, finished Rollouts expire; the last Succeeded
    one and every active one stay; targets are counted apart."""
    rollouts = [
        _rollout("w1", "Succeeded", 1),
        _rollout("w2", "Succeeded", 2),
        _rollout("w3", "RolledBack", 3),
        _rollout("w4", "RolledBack", 4),
        _rollout("w5", "Progressing", 5),
        _rollout("a1", "RolledBack", 1, target="api"),
        _rollout("a2", "Aborted", 2, target="api"),
        _rollout("o1", "RolledBack", 1, ns="other"),
    ]

    def names(keep: int) -> list[str]:
        return sorted(r.metadata.name for r in history.expired(rollouts, keep))

    assert names(2) == ["w1"]
    assert names(1) == ["a1", "w1", "w3"]
    assert names(0) == ["a1", "a2", "o1", "w1", "w3", "w4"]
    assert names(20) == []


def test_rollouts_without_their_target_label_are_found() -> None:
    """Finished Rollouts with a missing or wrong canary.dev/target label are found; an active
    one is not (the controller's status write labels it)."""
    right = _rollout("a", "Succeeded", 1)
    right = right.model_copy(
        update={
            "metadata": right.metadata.model_copy(update={"labels": {history.TARGET_LABEL: "web"}})
        }
    )
    wrong = _rollout("b", "Succeeded", 1)
    wrong = wrong.model_copy(
        update={
            "metadata": wrong.metadata.model_copy(update={"labels": {history.TARGET_LABEL: "x"}})
        }
    )
    rollouts = [
        right,
        wrong,
        _rollout("c", "RolledBack", 2),
        _rollout("d", "Progressing", 3),
    ]
    assert [r.metadata.name for r in history.unlabelled(rollouts)] == ["b", "c"]
