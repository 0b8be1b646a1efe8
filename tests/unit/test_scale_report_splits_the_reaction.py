"""bench.scale times each bad Rollout's reaction (its canary's failures visible in Prometheus to
its route back at 0) and splits it where the harness saw it RollingBack: before is the tick's
look and the work queue, after is the rollback's writes. Good apps' routes are no reaction."""

from __future__ import annotations

import json
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

from bench import decision_split, scale


def test_bad_rollouts_reactions_are_timed_whole_and_in_parts() -> None:
    setup = scale.Setup(20, "ns")
    watch: Any = SimpleNamespace(
        started=1000.0,
        visible={"app-9": 1010.0, "app-19": 1020.0, "app-3": 1005.0},
        back={"app-9": 1040.0, "app-19": 1030.0, "app-3": 1100.0},
    )
    report = scale.Report(20)
    report.history = {
        "app-9-v3": [(5.0, "Progressing"), (35.0, "RollingBack"), (50.0, "RolledBack")],
        "app-19-v3": [(5.0, "Progressing")],  # RollingBack never seen: timed whole only
        "app-3-v3": [(5.0, "Progressing"), (90.0, "RollingBack")],  # good: no reaction
    }
    scale._time_reactions(report, cast(Any, watch), setup, 3)
    assert (report.bad, report.reactions) == (2, {"app-9": 30.0, "app-19": 10.0})
    assert report.reaction_parts == {"app-9": (25.0, 5.0)}
    text = scale.reaction_parts(report)
    assert "(1 Rollouts)" in text
    assert "failures visible → RollingBack seen median 25.0 s" in text
    assert "RollingBack seen → route at 0 median 5.0 s" in text
    assert "no bad Rollout" in scale.reaction_parts(scale.Report(20))


def test_untimed_bad_rollouts_are_named_with_what_the_looks_never_saw() -> None:
    """A bad app the harness could not time is listed under the first thing its looks missed:
    its canary with traffic in a judged phase, its failures then, or its route back at 0."""
    watch: Any = SimpleNamespace(
        started=1000.0,
        shifted={"app-9", "app-19", "app-29"},
        visible={"app-9": 1010.0, "app-19": 1020.0},
        back={"app-9": 1040.0},
    )
    report = scale.Report(50)
    scale._time_reactions(report, cast(Any, watch), scale.Setup(50, "ns"), 3)
    assert (report.bad, report.reactions) == (5, {"app-9": 30.0})
    assert report.untimed == {
        "app-19": "its route at 0 after its failures were seen",
        "app-29": "its failures while this round's canary had traffic",
        "app-39": "its canary with traffic in a judged phase",
        "app-49": "its canary with traffic in a judged phase",
    }
    text = scale.reaction_parts(report)
    assert text.endswith(
        "4 untimed, the looks never saw its canary with traffic in a judged phase (2: app-39, "
        "app-49), its route at 0 after its failures were seen (1: app-19), its failures while "
        "this round's canary had traffic (1: app-29)"
    )


def _route(app: str, canary: int) -> dict[str, Any]:
    refs = [{"name": app, "weight": 100 - canary}, {"name": f"{app}-canary", "weight": canary}]
    return {"metadata": {"name": app}, "spec": {"rules": [{"backendRefs": refs}]}}


def test_a_canary_counts_as_shifted_only_while_this_rounds_rollout_is_judged() -> None:
    """At a round's start the last release's Rollout may still be rolling its route back, with
    its canary's failures in Prometheus: that canary's traffic is not this round's (run T timed
    a reaction of 353 s from it; the controller had rolled back 97 s after the step began)."""
    routes = [_route("app-1", 5), _route("app-2", 5), _route("app-3", 0), _route("app-4", 10)]
    phases = {
        "app-1-v2": "RollingBack",  # last round's, still moving its route back
        "app-1-v3": "Pending",
        "app-2-v3": "Progressing",
        "app-3-v3": "Progressing",  # its route sends the canary nothing yet
        "app-4-v3": "WaitingApproval",
    }
    assert scale._shifted(routes, phases, 3) == {"app-2", "app-4"}


def _at(at: str) -> datetime:
    return datetime.fromisoformat(f"2026-12-04T04:{at}Z")


def _line(at: str, rollout: str, event: str, **fields: str) -> str:
    entry = {"rollout": rollout, "event": event, "timestamp": f"2026-12-04T04:{at}Z", **fields}
    return json.dumps(entry)


def test_the_controller_log_splits_each_decision_where_the_tick_found_the_canary_failing() -> None:
    """From the controller's log: step start → the tick's first ``failing_measured`` → the
    reconcile's ``analysis_failed``; a step that passed resets the start; a Rollout no tick
    found failing is timed whole; good Rollouts and other lines are left out."""
    lines = [
        "not json",
        _line("13:00.0", "app-9-v3", "step_advanced"),
        _line("13:20.0", "app-9-v3", "failing_measured", by="early look"),  # a passed step's
        _line("13:30.0", "app-9-v3", "step_advanced"),  # … so the failed step starts here
        _line("13:52.0", "app-9-v3", "failing_measured", by="window", canary="7/20 failed"),
        _line("13:57.0", "app-9-v3", "failing_measured", by="early look"),  # still waiting
        _line("13:58.5", "app-9-v3", "analysis_failed"),
        _line("14:10.0", "app-9-v3", "failing_measured", by="early look"),  # after: ignored
        _line("13:00.0", "app-19-v3", "step_advanced"),
        _line("13:40.0", "app-19-v3", "analysis_failed"),  # custom metrics: no tick found it
        _line("13:00.0", "app-3-v3", "step_advanced"),
        _line("13:10.0", "app-3-v3", "analysis_failed"),  # not asked for
        _line("13:00.0", "app-29-v3", "step_advanced"),
        _line("13:20.000", "app-29-v3", "failing_measured", by="window"),
        _line("13:20.004", "app-29-v3", "failing_measured", by="early look"),  # the same tick
        _line("13:21.0", "app-29-v3", "analysis_failed"),
    ]
    found = scale.decisions(lines, {"app-9-v3", "app-19-v3"})
    assert found == {
        "app-9-v3": scale.Decision(28.5, 22.0, "window", 2, _at("13:30.0"), 7),
        "app-19-v3": scale.Decision(40.0, started=_at("13:00.0")),
    }
    assert scale.decisions(lines, {"app-29-v3"}) == {
        "app-29-v3": scale.Decision(21.0, 20.0, "window", 1, _at("13:00.0"))
    }
    report = scale.Report(20)
    report.decisions = found
    text = scale.decisions_account(report)
    assert "(2 bad Rollouts failed): step start → analysis failed median 34.2 s" in text
    assert "1 found failing by the tick (0 by an early look, 1 by a window)" in text
    assert "found → analysis failed median 6.50 s" in text
    assert "found again by a later tick before the decision: 1" in text


def test_the_slowest_reactions_are_followed_through_every_part_measured() -> None:
    """The p99 at 100 bad Rollouts is the slowest one: the report follows the slowest few
    through the harness's parts, the controller's log and Prometheus' split, so a run's p99
    says where it went."""
    setup = scale.Setup(30, "ns")
    watch: Any = SimpleNamespace(
        started=1000.0,
        visible={"app-9": 1010.0, "app-19": 1020.0, "app-29": 1000.0},
        back={"app-9": 1040.0, "app-19": 1030.0, "app-29": 1005.0},
    )
    report = scale.Report(30)
    report.history = {
        "app-9-v3": [(5.0, "Progressing"), (38.0, "RollingBack")],
        "app-19-v3": [(5.0, "Progressing")],
    }
    scale._time_reactions(report, cast(Any, watch), setup, 3)
    report.decisions = {
        "app-9-v3": scale.Decision(31.0, 30.5, "early look", 1, _at("13:00.0"), 4),
        "app-19-v3": scale.Decision(40.0, started=_at("13:00.0")),
    }
    report.splits = {"app-9-v3": decision_split.Split(6.0, 2.0, 22.0, 4.5, 2.5, 1.5)}
    text = scale.slowest_account(report, count=2)
    assert text.splitlines() == [
        "the 2 slowest reactions, in parts:",
        "- app-9 30.0 s: failures visible → RollingBack seen 28.0 s, → route at 0 2.0 s; "
        "step start → found failing 30.5 s (by early look), analysis failed 31.0 s; "
        "step start → 1st canary failure in Prometheus 6.0s; failures before the baseline "
        "(never counted) 2; step start → the failures an early look counted, in Prometheus "
        "22.0s; … → the counters evaluation whose answer found it 4.5s; that evaluation → "
        "Prometheus' answer 2.5s; the answer → failing_measured 1.5s",
        "- app-19 10.0 s: step start → not found failing by the tick, analysis failed 40.0 s",
    ]
    assert scale.slowest_account(scale.Report(30)) == "the slowest reactions: none timed"
