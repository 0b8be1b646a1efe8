"""The scale benchmark traces a canary pod's way up by the Events of the namespace: how long
after its Rollout's creation kube-controller-manager scaled the canary's ReplicaSet up and
created the pod, and kube-scheduler bound it (``bench.scale.canary_pipeline``). Events of
another app, of an earlier release (before the Rollout), and of other reasons do not count."""

from __future__ import annotations

from datetime import UTC, datetime

from bench import scale

SINCE = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)


def event(reason: str, name: str, at: str, *, scheduler: bool = False) -> dict[str, object]:
    """A core/v1 Event as listed: kube-scheduler's carry ``eventTime`` only."""
    stamp = f"2026-12-03T{at}Z" if not scheduler else f"2026-12-03T{at}.123456Z"
    times = {"eventTime": stamp, "firstTimestamp": None} if scheduler else {"firstTimestamp": stamp}
    return {"reason": reason, "involvedObject": {"name": name}, **times}


EVENTS = [
    event("ScalingReplicaSet", "app-7-canary", "14:40:00"),  # an earlier release's
    event("ScalingReplicaSet", "app-7-canary", "15:00:02"),
    event("SuccessfulCreate", "app-7-canary-5d8f", "15:00:05"),
    event("Scheduled", "app-7-canary-5d8f-x2k", "15:01:40", scheduler=True),
    event("ScalingReplicaSet", "app-7-canary", "15:10:02"),  # scaled down on rollback
    event("Scheduled", "app-70-canary-aaaa-bbb", "15:00:03", scheduler=True),  # another app
    event("Pulled", "app-7-canary-5d8f-x2k", "15:00:06"),  # not on the way up
]


def test_each_reason_counts_from_the_rollouts_creation_once() -> None:
    assert scale.canary_pipeline(EVENTS, "app-7", SINCE) == {
        "ScalingReplicaSet": 2.0,
        "SuccessfulCreate": 5.0,
        "Scheduled": 100.123456,
    }


def test_a_pod_never_bound_has_no_scheduled_time() -> None:
    unbound = [e for e in EVENTS if e["reason"] != "Scheduled"]
    assert "Scheduled" not in scale.canary_pipeline(unbound, "app-7", SINCE)
    assert scale.canary_pipeline(EVENTS, "app-8", SINCE) == {}


def test_the_account_gives_how_many_had_each_event_and_when() -> None:
    report = scale.Report(50)
    report.pipeline = {
        "not ready": (2, {"ScalingReplicaSet": [1.0, 3.0], "SuccessfulCreate": [4.0]}),
    }
    assert scale.pipeline_account(report) == (
        "not ready (2): ScalingReplicaSet 2 (median 2.0, p90 3.0, most 3.0 s); "
        "SuccessfulCreate 1 (median 4.0, p90 4.0, most 4.0 s); Scheduled none"
    )
    assert scale.pipeline_account(scale.Report(50)) == "no Rollout to trace"
