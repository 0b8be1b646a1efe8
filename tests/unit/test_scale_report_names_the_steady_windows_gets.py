"""The scale benchmark's steady window (bench/scale.py): its account names when it was, its
GETs by resource, and for each object read the phases its app's Rollout went through, so a
GET from a promotion the harness saw late can be told from a cache miss; and a window keeps
out Rollouts still creating their canary."""

from __future__ import annotations

from collections import Counter

from bench import scale
from canary.adapters.kube.workloads import RELEASE_ANNOTATION


def test_each_object_read_in_the_window_comes_with_its_rollouts_phases() -> None:
    """Two Deployments read in a 300-320 s window: the GETs by resource add up the objects',
    each object's line names its app's Rollout's phases with their times; an object of no
    Rollout says so; a report without a window says so."""
    report = scale.Report(n=3)
    assert scale.steady_account(report) == "steady window: none measured"
    report.steady_window = (300.0, 320.0)
    report.steady_gets, report.steady_reconciles = 3, 41
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


def test_an_initializing_rollout_counts_as_creating_until_its_canary_runs_its_release() -> None:
    """Initializing with no canary, or a canary of the last release: creating; with a canary
    of its own release, or in another phase: not. The name comes from the release annotation."""
    canaries = {
        "app-1-canary": scale._release_of(
            {"metadata": {"annotations": {RELEASE_ANNOTATION: "app-1-v3.0123456789ab"}}}
        ),
        "app-2-canary": scale._release_of(
            {"metadata": {"annotations": {RELEASE_ANNOTATION: "app-2-v2.ba9876543210"}}}
        ),
        "app-4-canary": scale._release_of({"metadata": {}}),
    }
    phases = {
        "app-1-v3": "Initializing",  # its canary runs it: waiting for pods reads the cache
        "app-2-v3": "Initializing",  # the canary still runs release 2
        "app-3-v3": "Initializing",  # no canary yet
        "app-4-v3": "Initializing",  # a Deployment without the annotation
        "app-5-v3": "Progressing",
    }
    assert scale.creating(phases, canaries.get) == {"app-2-v3", "app-3-v3", "app-4-v3"}
