"""`canary watch` over an in-memory store whose Rollout moves on between reads: a terminal gets
a redrawn frame per tick, a log gets one line per change; transient errors are retried; the
exit code follows the final phase or the timeout. No real sleeping: time is simulated."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from canary.console import CLEAR, Console
from canary.errors import ApiUnavailable
from canary.model.rollout import Rollout, RolloutPolicy
from canary.ports import Ref
from tests.fake_store import MemoryRolloutStore, make

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


class Script(MemoryRolloutStore):
    """Each read of web-2 returns the next scripted state (an error is raised instead)."""

    def __init__(self, states: list[Rollout | Exception]) -> None:
        super().__init__()
        self.states: Iterator[Rollout | Exception] = iter(states)
        self.current: Rollout | Exception = states[0]

    def get(self, ref: Ref) -> Rollout | None:
        self.current = next(self.states, self.current)
        if isinstance(self.current, Exception):
            raise self.current
        return self.current


class Clock:
    """Simulated monotonic time that advances only when the console sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def console(store: MemoryRolloutStore, clock: Clock) -> tuple[Console, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return (
        Console(
            store=store,
            annotator=store,
            create=lambda r: r,
            namespace="test",
            out=out,
            err=err,
            clock=lambda: NOW,
            sleep=clock.sleep,
            monotonic=lambda: clock.now,
        ),
        out,
        err,
    )


def state(phase: str, weight: int = 0, **extra: Any) -> Rollout:
    return make("web-2", phase=phase, canaryWeight=weight, **extra)


def test_a_log_gets_one_line_per_change_and_exit_0_on_success() -> None:
    """Repeated states print nothing new; Succeeded ends the watch with 0."""
    store = Script(
        [
            state("Progressing", 10),
            state("Progressing", 10),
            state("Progressing", 50),
            state("Succeeded", 0, message="promoted"),
        ]
    )
    clock = Clock()
    view, out, _ = console(store, clock)
    assert view.watch("web-2", timeout=None, interval=1.0, tty=False) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("08:00:00  Progressing")
    assert "50%" in lines[1]
    assert lines[2].endswith("promoted")
    assert clock.slept == [1.0, 1.0, 1.0]


def test_a_terminal_gets_the_whole_frame_redrawn_each_tick() -> None:
    """On a tty every tick clears the screen and draws the frame; RolledBack exits 1."""
    store = Script([state("Progressing", 20), state("RolledBack", 0)])
    view, out, _ = console(store, Clock())
    assert view.watch("web-2", timeout=None, interval=1.0, tty=True) == 1
    frames = out.getvalue().split(CLEAR)[1:]
    assert len(frames) == 2
    assert frames[0].splitlines()[:2] == [
        "rollout.canary.dev/web-2  Deployment/podinfo  Progressing",
        "[####----------------]  20%  step -",
    ]
    assert "RolledBack" in frames[1]


def test_transient_errors_are_shown_and_retried() -> None:
    """An unreachable API server is reported once and watched through."""
    store = Script([ApiUnavailable("get rollouts: refused"), state("Aborted")])
    view, out, _ = console(store, Clock())
    assert view.watch("web-2", timeout=None, interval=1.0, tty=False) == 1
    first, second = out.getvalue().splitlines()
    assert first.endswith("(retrying) get rollouts: refused")
    assert "Aborted" in second


def test_the_timeout_ends_the_watch_with_2_without_oversleeping() -> None:
    """With --timeout 2.5 and a 1s interval the console sleeps 1, 1, 0.5 and exits 2."""
    store = Script([state("WaitingApproval")])
    clock = Clock()
    view, out, err = console(store, clock)
    assert view.watch("web-2", timeout=2.5, interval=1.0, tty=False) == 2
    assert clock.slept == [1.0, 1.0, 0.5]
    assert len(out.getvalue().splitlines()) == 1
    assert err.getvalue() == (
        "error: timed out after 2.5s waiting for rollout.canary.dev/web-2 to finish\n"
    )


@pytest.mark.parametrize(("policy", "label"), [(True, "step 0/2"), (False, "step -")])
def test_steps_are_counted_from_the_policy_when_it_can_be_read(policy: bool, label: str) -> None:
    """With its policy the step count comes from the plan; without it the count is unknown."""
    rollout = Rollout.model_validate(
        {
            "metadata": {"name": "web-2", "namespace": "test"},
            "spec": {
                "targetRef": {"name": "podinfo"},
                "release": {"images": {"podinfo": "podinfo:2"}},
                "policyRef": {"name": "podinfo"},
            },
            "status": {"phase": "Succeeded"},
        }
    )
    store = Script([rollout])
    if policy:
        store.policies[Ref("test", "podinfo")] = RolloutPolicy.model_validate(
            {
                "metadata": {"name": "podinfo", "namespace": "test"},
                "spec": {"service": {"name": "podinfo", "port": 80}, "stepWeight": 50},
            }
        )
    view, out, _ = console(store, Clock())
    assert view.watch("web-2", timeout=None, interval=1.0, tty=False) == 0
    assert label in out.getvalue()
