"""The scale benchmark's steady window (bench/scale.py): its account names when it was, its
GETs by resource, and for each object read the phases its app's Rollout went through, so a
GET from a promotion the harness saw late can be told from a cache miss."""

from __future__ import annotations

from collections import Counter

from bench import scale


def test_each_object_read_in_the_window_comes_with_its_rollouts_phases() -> None:
    """Two Deployments read in a 300-320 s window: each line names its app's Rollout's phases
    with their times; an object of no Rollout says so; a report without a window says so."""
    report = scale.Report(n=3)
    assert scale.steady_account(report) == "steady window: none measured"
    report.steady_window = (300.0, 320.0)
    report.steady_gets, report.steady_reconciles = 3, 41
    report.steady_by_resource = Counter({"deployments": 3})
    report.steady_objects = Counter(
        {"deployments scale-1/app-7-canary": 2, "deployments scale-1/app-12": 1}
    )
    report.history = {
        "app-7-v3": [(10.0, "Initializing"), (40.0, "Progressing"), (318.0, "Promoting")],
        "app-70-v3": [(11.0, "Initializing")],
    }
    lines = scale.steady_account(report).splitlines()
    assert lines == [
        "steady window 300-320 s (+5 s grace): 3 GETs, 41 reconciles; by resource: deployments 3",
        "  deployments scale-1/app-7-canary x2: app-7-v3 Initializing 10, Progressing 40, "
        "Promoting 318",
        "  deployments scale-1/app-12 x1: no Rollout seen",
    ]
