"""The scale check's failure report says why a Rollout ended wrong (bench/scale.py)."""

from __future__ import annotations

from pathlib import Path

from bench import scale


def test_explain_shows_phase_conditions_and_the_failed_steps_counts_and_checks() -> None:
    """A wrong end is explained by the Rollout's own status: phase, message, conditions, and
    each step's weight, verdict, counts and checks."""
    rollout = {
        "metadata": {"name": "app-3-v2"},
        "status": {
            "phase": "RolledBack",
            "canaryWeight": 0,
            "message": "step 1 failed: early look: success rate",
            "conditions": [
                {"type": "Progressing", "status": "False", "reason": "RolledBack",
                 "lastTransitionTime": "2026-11-30T15:00:00Z", "message": "rolled back"},
            ],
            "steps": [
                {"index": 0, "weight": 50, "verdict": "Failed",
                 "startedAt": "2026-11-30T14:59:40Z", "finishedAt": "2026-11-30T15:00:00Z",
                 "canary": {"requests": 120, "failures": 9},
                 "stable": {"requests": 118, "failures": 0},
                 "checks": [{"name": "success-rate", "verdict": "Fail", "value": 92.5,
                             "limit": 95, "message": "below min"}],
                 "message": "early look: success rate below 95%"},
            ],
        },
    }  # fmt: skip
    text = scale.explain(rollout)
    assert text.splitlines() == [
        "Rollout app-3-v2: phase RolledBack (canary weight 0): "
        "step 1 failed: early look: success rate",
        "  condition Progressing=False RolledBack at 2026-11-30T15:00:00Z: rolled back",
        "  step 0 weight 50 Failed 2026-11-30T14:59:40Z..2026-11-30T15:00:00Z "
        "(canary 9/120 failed, stable 0/118 failed): early look: success rate below 95%",
        "    check success-rate Fail value 92.5 limit 95: below min",
    ]


def test_explain_of_a_rollout_without_status_names_it_and_says_so() -> None:
    """A Rollout the controller never wrote a status for still gets a line."""
    assert scale.explain({"metadata": {"name": "app-9-v2"}}) == (
        "Rollout app-9-v2: phase ? (canary weight ?): "
    )


def test_loglines_naming_a_rollout_are_picked_out_of_the_log(tmp_path: Path) -> None:
    """The log lines naming a Rollout or its app are found; other apps' lines are not."""
    log = tmp_path / "controller.log"
    log.write_text(
        '{"event": "step_failed", "rollout": "app-1-v2"}\n'
        '{"event": "step_failed", "rollout": "app-10-v2"}\n'
        '{"event": "targets_written", "deployment": "app-1-canary"}\n'
    )
    assert scale.lines_naming(log, ("app-1-v2", "app-1-canary")) == [
        '{"event": "step_failed", "rollout": "app-1-v2"}',
        '{"event": "targets_written", "deployment": "app-1-canary"}',
    ]
    assert scale.lines_naming(tmp_path / "missing.log", ("app-1-v2",)) == []


def test_only_every_tenth_app_is_bad_and_apps_are_numbered_by_name() -> None:
    """Reaction latency is taken of the bad apps only: app-9, app-19, … are bad."""
    setup = scale.Setup(20, "ns")
    assert [i for i in range(20) if setup.bad(scale.app_index(f"app-{i}"))] == [9, 19]


def test_the_harness_reads_the_canary_weight_of_either_router() -> None:
    """The percent on ``*-canary`` backends: an HTTPRoute's backendRefs (weight 1 when unset),
    a v1alpha2 TrafficSplit's integer weights and a v1alpha1 one's quantities."""
    route = {
        "spec": {
            "rules": [
                {
                    "backendRefs": [
                        {"name": "app-1-stable", "weight": 95},
                        {"name": "app-1-canary", "weight": 5},
                    ]
                }
            ]
        }
    }
    assert scale.canary_weight(route) == 5
    unset = {"spec": {"rules": [{"backendRefs": [{"name": "a-stable"}, {"name": "a-canary"}]}]}}
    assert scale.canary_weight(unset) == 50
    split = {
        "spec": {
            "service": "app-1",
            "backends": [
                {"service": "app-1-stable", "weight": 80},
                {"service": "app-1-canary", "weight": 20},
            ],
        }
    }
    assert scale.canary_weight(split) == 20
    quantities = {
        "spec": {
            "backends": [
                {"service": "app-1-stable", "weight": "900m"},
                {"service": "app-1-canary", "weight": "100m"},
            ]
        }
    }
    assert scale.canary_weight(quantities) == 10
    assert scale.canary_weight({"spec": {"backends": []}}) == 0
