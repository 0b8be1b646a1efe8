"""Tables, ages, the progress bar and the live view of `canary watch`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from canary.core import present
from canary.model.rollout import Rollout

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def rollout(status: dict[str, Any] | None = None, created: bool = True) -> Rollout:
    """A Rollout of podinfo created 5m12s before NOW, with the given status."""
    metadata: dict[str, Any] = {"name": "podinfo-6-1-0", "namespace": "test"}
    if created:
        metadata["creationTimestamp"] = (NOW - timedelta(minutes=5, seconds=12)).isoformat()
    return Rollout.model_validate(
        {
            "metadata": metadata,
            "spec": {
                "targetRef": {"name": "podinfo"},
                "release": {"images": {"podinfo": "podinfo:6.1.0"}},
            },
            "status": status or {},
        }
    )


STEP = {
    "index": 2,
    "weight": 50,
    "startedAt": NOW.isoformat(),
    "canary": {"requests": 1204, "failures": 6, "successRate": 99.5, "latencyMs": 120.4},
    "stable": {"requests": 5230, "successRate": 99.9},
    "checks": [
        {"name": "successRate", "verdict": "Pass", "value": 99.5, "limit": 99},
        {"name": "latency", "verdict": "NoData", "message": "no data"},
    ],
}
PROGRESSING = {
    "phase": "Progressing",
    "currentStepIndex": 2,
    "canaryWeight": 50,
    "startedAt": (NOW - timedelta(seconds=90)).isoformat(),
    "message": "step 3 at 50%: measuring",
    "steps": [STEP],
}


@pytest.mark.parametrize(
    ("elapsed", "shown"),
    [
        (timedelta(seconds=-5), "<invalid>"),
        (timedelta(seconds=-1), "0s"),
        (timedelta(seconds=45), "45s"),
        (timedelta(seconds=119), "119s"),
        (timedelta(minutes=5, seconds=12), "5m12s"),
        (timedelta(minutes=5), "5m"),
        (timedelta(minutes=42, seconds=30), "42m"),
        (timedelta(hours=3, minutes=5), "3h5m"),
        (timedelta(hours=3), "3h"),
        (timedelta(hours=20, minutes=7), "20h"),
        (timedelta(days=2, hours=4), "2d4h"),
        (timedelta(days=2), "2d"),
        (timedelta(days=30, hours=5), "30d"),
        (timedelta(days=800), "2y70d"),
        (timedelta(days=730), "2y"),
        (timedelta(days=365 * 9 + 3), "9y"),
    ],
)
def test_age_reads_like_kubectl(elapsed: timedelta, shown: str) -> None:
    """Ages use kubectl's rounding: seconds to 2m, then m+s, m, h+m, h, d+h, d, y+d, y."""
    assert present.age(elapsed) == shown


def test_table_aligns_columns_three_spaces_apart() -> None:
    """Columns are as wide as their widest cell plus three, at least six; no trailing blanks."""
    text = present.table(["NAME", "PHASE"], [["a-long-name", "Progressing"], ["b", ""]])
    assert text.splitlines() == [
        "NAME          PHASE",
        "a-long-name   Progressing",
        "b",
    ]


def test_get_row_shows_target_phase_weight_step_and_age() -> None:
    """A row has the printer columns, the step 1-based out of the plan's total."""
    headers = present.headers(wide=False, all_namespaces=False)
    cells = present.row(rollout(PROGRESSING), NOW, 5, wide=False, all_namespaces=False)
    assert dict(zip(headers, cells, strict=True)) == {
        "NAME": "podinfo-6-1-0",
        "TARGET": "Deployment/podinfo",
        "PHASE": "Progressing",
        "WEIGHT": "50%",
        "STEP": "3/5",
        "AGE": "5m12s",
    }


def test_wide_rows_with_namespaces_add_those_columns() -> None:
    """-A puts NAMESPACE first; -o wide puts MESSAGE last."""
    headers = present.headers(wide=True, all_namespaces=True)
    cells = present.row(rollout(PROGRESSING), NOW, None, wide=True, all_namespaces=True)
    assert headers[0] == "NAMESPACE"
    assert headers[-1] == "MESSAGE"
    assert cells[0] == "test"
    assert cells[-1] == "step 3 at 50%: measuring"
    assert cells[headers.index("STEP")] == "3"


def test_new_rollouts_show_no_step_and_unknown_age() -> None:
    """Before any step: '-' or 0/N; without a creationTimestamp the age is unknown."""
    fresh = rollout(created=False)
    assert present.row(fresh, NOW, None, wide=False, all_namespaces=False)[4:] == [
        "-",
        "<unknown>",
    ]
    assert present.step_label(fresh.status, 5) == "0/5"


def test_step_label_stays_within_the_plan_at_the_promotion_gate() -> None:
    """At the promotion gate the index is one past the last step; it shows as the last."""
    waiting = rollout({**PROGRESSING, "currentStepIndex": 5})
    assert present.step_label(waiting.status, 5) == "5/5"


@pytest.mark.parametrize(
    ("weight", "bar"),
    [
        (0, "[--------------------]   0%"),
        (50, "[##########----------]  50%"),
        (5, "[#-------------------]   5%"),
        (100, "[####################] 100%"),
        (150, "[####################] 150%"),
    ],
)
def test_progress_bar_fills_with_the_weight(weight: int, bar: str) -> None:
    """The bar is 20 cells, one per 5%, clamped to 0–100."""
    assert present.progress_bar(weight) == bar


def test_watch_frame_shows_bar_figures_message_and_checks() -> None:
    """The terminal view: header, bar and step, both arms' figures, the message, each check."""
    lines = present.frame(rollout(PROGRESSING), 5, 99, NOW)
    assert lines == [
        "rollout.canary.dev/podinfo-6-1-0  Deployment/podinfo  Progressing  (90s)",
        "[##########----------]  50%  step 3/5",
        "canary  99.50% ok  p99 120ms  1204 req",
        "stable  99.90% ok  p99 -  5230 req",
        "step 3 at 50%: measuring",
        "  Pass         successRate 99.5 (limit 99)",
        "  NoData       latency no data",
    ]


def test_watch_frame_of_a_new_rollout_is_short() -> None:
    """No steps, no start, no message: only the header and the bar."""
    assert present.frame(rollout(created=False), None, 99.9, NOW) == [
        "rollout.canary.dev/podinfo-6-1-0  Deployment/podinfo  Pending",
        "[--------------------]   0%  step -",
    ]


def test_watch_line_summarises_one_state_per_line() -> None:
    """Without a terminal, each change is one line: phase, bar, figures, message."""
    text = present.line(rollout(PROGRESSING), 5, 99)
    assert text.startswith("Progressing      |  [##########----------]  50%  step 3/5")
    assert "canary  99.50% ok" in text
    assert text.endswith("step 3 at 50%: measuring")
    assert (
        present.line(rollout(), None, 99)
        == "Pending          |  [--------------------]   0%  step -"
    )


def test_a_new_step_without_requests_still_shows_what_the_step_before_passed_with() -> None:
    """Right after a weight change the new step has no requests: the line and the frame also
    show the figures the previous step passed with, until the new one has its own."""
    passed = {**STEP, "index": 1, "weight": 20, "verdict": "Passed"}
    new = {"index": 2, "weight": 50, "startedAt": NOW.isoformat()}
    status = {**PROGRESSING, "steps": [passed, new]}
    said = (
        "step 2 (20%) passed: canary  99.50% ok  p99 120ms  1204 req;"
        " stable  99.90% ok  p99 -  5230 req"
    )
    assert said in present.line(rollout(status), 5, 99).split("  |  ")
    assert said in present.frame(rollout(status), 5, 99, NOW)
    measuring = {**status, "steps": [passed, {**new, "canary": {"requests": 3}}]}
    assert "passed:" not in present.line(rollout(measuring), 5, 99)
    failed_before = {**status, "steps": [{**passed, "verdict": "Failed"}, new]}
    assert "passed:" not in present.line(rollout(failed_before), 5, 99)


def test_arm_without_requests_says_so() -> None:
    """An arm that saw no traffic reads 'no requests yet'; a missing rate reads '-'."""
    empty = rollout({**PROGRESSING, "steps": [{**STEP, "canary": {"requests": 3}}]})
    step = present.latest_step(empty.status)
    assert step is not None
    assert present.arm("canary", step.canary, 99) == "canary  -% ok  p99 -  3 req"
    assert present.arm("stable", step.canary.model_copy(update={"requests": 0}), 99) == (
        "stable  no requests yet"
    )


@pytest.mark.parametrize(
    ("phase", "code"),
    [
        ("Succeeded", 0),
        ("RolledBack", 1),
        ("Aborted", 1),
        ("Failed", 1),
        ("Superseded", 1),
        ("Progressing", None),
        ("WaitingApproval", None),
    ],
)
def test_exit_code_follows_the_final_phase(phase: str, code: int | None) -> None:
    """watch exits 0 on success, 1 on any other end, and keeps going otherwise."""
    assert present.exit_code(phase) == code


HELD_STEP = {
    **STEP,
    "needs": 9300,
    "neededFor": "detect",
    "eta": (NOW + timedelta(minutes=12)).isoformat(),
}
HELD = {**PROGRESSING, "steps": [HELD_STEP]}


def test_a_step_waiting_for_requests_shows_why_and_its_eta() -> None:
    """-o wide's ETA column, the watch frame and the watch line say how many canary requests
    the step needs, for what, and when it will have them; '-' when it waits for nothing."""
    held = rollout(HELD)
    headers = present.headers(wide=True, all_namespaces=False)
    cells = present.row(held, NOW, 5, wide=True, all_namespaces=False)
    assert cells[headers.index("ETA")] == "12m (detect)"
    plain = present.row(rollout(PROGRESSING), NOW, 5, wide=True, all_namespaces=False)
    assert plain[headers.index("ETA")] == "-"
    said = "needs 9300 canary requests for analysis.detect (1204 so far)"
    assert f"{said}, about 12m more" in present.frame(held, 5, 99, NOW)
    assert present.line(held, 5, 99).endswith(f"{said}, expected at 08:12:00Z")
    done = rollout({**HELD, "phase": "RolledBack"})
    assert present.step_eta(done.status, NOW) == "-"
    assert present.waiting(done.status, NOW) == ""
    unknown = rollout({**HELD, "steps": [{**HELD_STEP, "eta": None}]})
    assert present.step_eta(unknown.status, NOW) == "-"
    assert present.waiting(unknown.status, NOW) == said
