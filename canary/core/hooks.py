"""The policy's hooks: which call is due at a point of the release, and what its answers mean.

Called by ``canary.core.machine`` at each point where hooks apply (docs/hooks.md):
``confirm-start`` before anything is created, ``pre-rollout`` once the canary is ready and
before it gets traffic, ``confirm-step/<i>`` before each weight increase, ``confirm-promotion``
before the stable Deployment is changed, ``rollback`` when rolling back, ``post-rollout`` before
the release ends either way. The machine decides what a gate's outcome does to the release;
this module only keeps ``status.hooks`` and says whether the point is passed.

Calls never run inside a reconcile: the machine returns ``CallHook`` actions, the shell runs
them in the background and hands their answers back in a later ``Observation``. A call that
never answers (the controller restarted meanwhile) is marked ``Lost`` after its timeout and a
grace, and asked again where asking again is the rule. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from canary.core.plan import Wait
from canary.core.vocabulary import CallHook, Event, HookAnswer
from canary.model.policy import (
    CONFIRM_HOOKS,
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_HOOK_INTERVAL,
    DEFAULT_HOOK_TIMEOUT,
    Hook,
    HookType,
)
from canary.model.status import MAX_HOOK_ATTEMPTS, HookAttempt, HookState

LOST_GRACE = timedelta(seconds=5)
"""How long after its timeout a call with no answer counts as lost."""
LOST_RETRIES = 2
"""How often a lost pre-rollout, post-rollout or rollback call is asked again."""
POLL = timedelta(seconds=1)
"""How soon to look again for the answer of a running call."""


@dataclass(frozen=True)
class Gate:
    """Where a point stands after this tick."""

    outcome: Literal["Passed", "Waiting", "Failed"]
    state: HookState | None
    calls: tuple[CallHook, ...] = ()
    wake: timedelta | None = None
    deadline: Wait | None = None
    """confirm-*: the earliest deadline among the hooks that have not passed."""
    since: datetime | None = None
    """When the release began waiting at this point."""
    message: str = ""
    """What the hooks that have not passed (or failed) last answered."""
    just_passed: bool = False
    """The point passed during this tick."""
    failed: tuple[str, ...] = field(default=())
    """post-rollout and rollback: the hooks whose call failed (reported, not acted on)."""

    @property
    def passed(self) -> bool:
        """Whether the release may go on past this point."""
        return self.outcome == "Passed"


def call_timeout(hook: Hook) -> timedelta:
    """How long one call of ``hook`` may take."""
    return hook.call_timeout or DEFAULT_CALL_TIMEOUT


def wait_of(hook: Hook) -> Wait:
    """A confirm hook's deadline and what happens when it passes."""
    return Wait(hook.timeout or DEFAULT_HOOK_TIMEOUT, hook.on_timeout or "Rollback")


def _describe(attempt: HookAttempt) -> str:
    said = f"answered {attempt.code}" if attempt.code is not None else attempt.result.lower()
    detail = f" ({attempt.message})" if attempt.message else ""
    return f"hook {attempt.hook} ({attempt.type}) {said} at {attempt.point}{detail}"


def record(
    hooks: Sequence[Hook],
    state: HookState | None,
    answers: Sequence[HookAnswer],
    now: datetime,
) -> tuple[HookState | None, tuple[Event, ...]]:
    """``state`` with the answers of running calls written in, and calls that outlived their
    timeout marked ``Lost``; an Event for each call that ended."""
    if state is None:
        return None, ()
    by_key = {a.key: a for a in answers}
    timeouts = {h.name: call_timeout(h) for h in hooks}
    events: list[Event] = []
    attempts: list[HookAttempt] = []
    for recorded in state.attempts:
        attempt = recorded
        if attempt.result == "Running":
            answer = by_key.get(attempt.key)
            limit = timeouts.get(attempt.hook, DEFAULT_CALL_TIMEOUT) + LOST_GRACE
            if answer is not None:
                attempt = attempt.model_copy(
                    update={
                        "result": answer.result,
                        "code": answer.code,
                        "message": answer.message[:512],
                        "finished_at": answer.at,
                    }
                )
            elif now >= attempt.started_at + limit:
                attempt = attempt.model_copy(
                    update={
                        "result": "Lost",
                        "finished_at": now,
                        "message": "no answer recorded (the controller restarted mid-call?)",
                    }
                )
            if attempt.result != "Running":
                events.append(_event(attempt))
        attempts.append(attempt)
    return state.model_copy(update={"attempts": attempts}), tuple(events)


def _event(attempt: HookAttempt) -> Event:
    if attempt.result == "Passed":
        return Event("Normal", "HookPassed", _describe(attempt))
    if attempt.type in CONFIRM_HOOKS:
        return Event("Normal", "HookNotConfirmed", _describe(attempt))
    return Event("Warning", "HookFailed", _describe(attempt))


def at(
    hooks: Sequence[Hook],
    kind: HookType,
    point: str,
    state: HookState | None,
    now: datetime,
    *,
    steps: int = 0,
) -> Gate:
    """Where the release stands at ``point`` with the ``kind`` hooks of the policy: the calls to
    start now, and whether it may go on. No hook of that kind: passed, status untouched."""
    mine = [h for h in hooks if h.type == kind]
    if not mine:
        return Gate("Passed", state)
    if state is None or state.point != point:
        left = abandon(state, state.point, now) if state is not None else None
        kept = left.attempts if left is not None else []
        state = HookState(point=point, since=now, passed=[], attempts=kept)
    since = state.since or now
    was_passed = all(h.name in state.passed for h in mine)
    answered = [
        a.hook
        for a in state.attempts
        if a.point == point and a.result == "Passed" and a.hook not in state.passed
    ]
    if answered:
        passed = [*state.passed, *dict.fromkeys(h for h in answered if h in {m.name for m in mine})]
        state = state.model_copy(update={"passed": passed})
    calls: list[CallHook] = []
    wakes: list[timedelta] = []
    failed: list[str] = []
    waiting: list[Hook] = []
    for hook in mine:
        if hook.name in state.passed:
            continue
        tried = [a for a in state.attempts if a.point == point and a.hook == hook.name]
        what, wake = _next(hook, kind, tried, now)
        if what == "failed":
            failed.append(hook.name)
            continue
        waiting.append(hook)
        wakes.append(wake)
        if what == "call":
            calls.append(_call(hook, point, now, steps))
    state = _started(state, calls, now)
    last_words = [
        _describe(a)
        for h in mine
        for a in [a for a in state.attempts if a.point == point and a.hook == h.name][-1:]
        if a.result != "Running" and h.name not in state.passed
    ]
    message = "; ".join(last_words)
    if waiting:
        deadline = (
            min((wait_of(h) for h in waiting), key=lambda w: w.timeout)
            if kind in CONFIRM_HOOKS
            else None
        )
        return Gate(
            "Waiting",
            state,
            tuple(calls),
            min(wakes),
            deadline,
            since,
            message or f"waiting for {', '.join(h.name for h in waiting)}",
        )
    if failed and kind == "pre-rollout":
        return Gate("Failed", state, since=since, message=message, failed=tuple(failed))
    return Gate(
        "Passed",
        state,
        since=since,
        message=message,
        just_passed=not was_passed,
        failed=tuple(failed),
    )


def _next(
    hook: Hook, kind: HookType, tried: Sequence[HookAttempt], now: datetime
) -> tuple[Literal["call", "wait", "failed"], timedelta]:
    """What to do now about a hook that has not passed at its point, given its calls there:
    call it, wait (for a running call's answer, or a confirm gate's interval), or count it
    failed (a once-called hook that did not pass); and when to look again."""
    last = tried[-1] if tried else None
    if last is None:
        return "call", POLL
    if last.result == "Running":
        return "wait", POLL
    if kind not in CONFIRM_HOOKS and not _ask_again(tried):
        return "failed", POLL
    # A confirm gate asks again after its interval; a lost call is asked again at once.
    again = hook.interval or DEFAULT_HOOK_INTERVAL if kind in CONFIRM_HOOKS else None
    due = (last.finished_at or now) + (again or timedelta(0))
    if now < due:
        return "wait", due - now
    return "call", POLL


def _ask_again(tried: Sequence[HookAttempt]) -> bool:
    """Whether a hook that is called once is asked again: only after a lost call, at most
    :data:`LOST_RETRIES` times (a controller restarting again and again must not loop)."""
    return tried[-1].result == "Lost" and sum(a.result == "Lost" for a in tried) <= LOST_RETRIES


def _call(hook: Hook, point: str, now: datetime, steps: int) -> CallHook:
    return CallHook(
        key=f"{hook.name}@{point}@{now.isoformat()}",
        name=hook.name,
        type=hook.type,
        point=point,
        url=hook.url,
        timeout=call_timeout(hook),
        metadata=tuple(sorted((hook.metadata or {}).items())),
        step_count=steps,
    )


def _started(state: HookState, calls: Sequence[CallHook], now: datetime) -> HookState:
    """``state`` with a running attempt per call; the oldest finished ones dropped to keep the
    list bounded (running ones are never dropped: at most one per hook)."""
    if not calls:
        return state
    attempts = [
        *state.attempts,
        *(
            HookAttempt(hook=c.name, type=c.type, point=c.point, key=c.key, started_at=now)
            for c in calls
        ),
    ]
    while len(attempts) > MAX_HOOK_ATTEMPTS:
        oldest = next(i for i, a in enumerate(attempts) if a.result != "Running")
        del attempts[oldest]
    return state.model_copy(update={"attempts": attempts})


def pass_all(hooks: Sequence[Hook], kind: HookType, state: HookState | None) -> HookState | None:
    """``state`` with every ``kind`` hook passed at its point (a confirm deadline's Continue)."""
    if state is None:
        return None
    names = [h.name for h in hooks if h.type == kind]
    return state.model_copy(update={"passed": sorted(set(state.passed) | set(names))})


def failed_note(state: HookState | None) -> str:
    """What a release's final message adds about post-rollout and rollback hooks that failed."""
    if state is None:
        return ""
    failed = sorted(
        {
            f"{a.type} hook {a.hook}"
            for a in state.attempts
            if a.type in ("post-rollout", "rollback") and a.result not in ("Passed", "Running")
        }
    )
    return f" ({', '.join(failed)} failed)" if failed else ""


def abandon(state: HookState | None, point: str | None, now: datetime) -> HookState | None:
    """``state`` with the calls still running at ``point`` (None: anywhere) marked ``Lost``:
    the release left the point (or ended) before they answered; their answers no longer count."""
    if state is None:
        return None
    attempts = [
        a.model_copy(
            update={
                "result": "Lost",
                "finished_at": now,
                "message": "the release moved on before the answer came",
            }
        )
        if a.result == "Running" and point in (None, a.point)
        else a
        for a in state.attempts
    ]
    return state.model_copy(update={"attempts": attempts})
