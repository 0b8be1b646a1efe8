"""The rollout state machine: ``decide(plan, status, observation, now) -> Decision``.

Called by the reconciler once per reconcile, after it has read the world. Pure and
deterministic: the same inputs always give the same decision, so a tick replayed after a crash
reaches the same outcome. Actions are absolute ("canary weight = 20"), never relative, so
repeating them is harmless. The only durable state is the returned ``RolloutStatus``.

Phases: Pending → Initializing → Progressing ⇄ Paused/WaitingApproval → Promoting → Succeeded,
or → RollingBack → RolledBack (Aborted when a person stopped it), plus Superseded and Failed.

Every wait has a deadline (``plan.Wait``) whose expiry raises the ``Stalled`` condition with a
Warning Event and takes its ``onTimeout`` action (docs/operations.md); a person's ``pause`` holds
a release and stops its deadlines until ``resume``.

It decides and defines nothing else: what it reads and returns is ``canary.core.vocabulary``.
It is longer than 400 lines on purpose: every phase handler sits in this one module so that
each transition can be read beside the ones it leads to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from canary.core import commands as command_rules
from canary.core import hooks as hook_rules
from canary.core import judge, power, window
from canary.core import steps as step_plan
from canary.core.plan import Plan, Wait, approval_wait
from canary.core.vocabulary import (
    Action,
    CallHook,
    Command,
    CommandKind,
    Decision,
    EnsureCanary,
    EnsureServices,
    Event,
    Observation,
    PromoteStable,
    ScaleCanaryToZero,
    SetWeight,
    set_condition,
)
from canary.errors import Problem
from canary.model.base import format_duration
from canary.model.policy import HookType, OnTimeout
from canary.model.status import (
    TERMINAL_PHASES,
    ApprovalRecord,
    ArmStats,
    CommandSeen,
    Phase,
    RolloutStatus,
    StepStatus,
)

WAIT = timedelta(seconds=2)
"""How soon to look again while waiting for the cluster to catch up with an action."""
RETRY_REFERENCES = timedelta(seconds=15)
"""How soon to look again for a target, Service or policy that does not exist yet."""
ROLLBACK_RECHECK_MAX = timedelta(seconds=15)
"""The longest a rollback (or the end of a promotion) waiting for the mesh to accept the route
(or the canary to scale down) goes without looking again when no watch event wakes it."""
CANARY_DRAIN = timedelta(seconds=10)
"""How long a canary keeps its pods once the route is seen sending it nothing, at the end of a
rollback or a promotion, before it is scaled to zero. The route's status says the mesh has it,
not that every client proxy has applied it: for a moment some still send the canary its old
share, and with no canary pod left those requests fail (on the twin, half the failed requests
of a 20x regression at 5%, where its routes take effect 1–3 s after they are written). Argo
Rollouts waits 30 s by default (abortScaleDownDelaySeconds)."""


# --- the machine ----------------------------------------------------------------------------


@dataclass
class _Tick:
    """Working state of one ``decide`` call: accumulates actions and events."""

    plan: Plan
    obs: Observation
    now: datetime
    status: RolloutStatus
    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    reason: str = ""
    requeue: timedelta | None = None
    evidence_used: bool = False
    obs_phase: str = ""
    obs_step: int = 0
    stalled: tuple[str, str] | None = None
    """(reason, message) of a wait found past its deadline this tick."""
    over: set[str] = field(default_factory=set)
    """Deadline reasons whose waits this tick found over (the pods are ready, data came)."""
    calls: list[CallHook] = field(default_factory=list)

    def act(self, action: Action) -> None:
        # Actions are absolute: a later one of the same kind supersedes an earlier one.
        self.actions = [a for a in self.actions if type(a) is not type(action)] + [action]

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(Event("Warning" if warning else "Normal", reason, message))

    def wait(self, reason: str, after: timedelta) -> bool:
        self.reason = reason
        self.wake(after)
        return False

    def wake(self, after: timedelta) -> None:
        self.requeue = after if self.requeue is None else min(self.requeue, after)

    def go(self, phase: Phase, reason: str, **changes: object) -> bool:
        """Enter ``phase``; every phase starts without a drain of the canary."""
        self.status = self.status.model_copy(
            update={
                "phase": phase,
                "phase_since": self.now,
                "message": reason,
                "canary_drained_from": None,
                **changes,
            }
        )
        self.reason = reason
        return True

    def condition(self, type_: str, status: bool | None, reason: str, message: str = "") -> None:
        self.status = self.status.model_copy(
            update={
                "conditions": set_condition(
                    self.status.conditions,
                    type_,
                    status=status,
                    reason=reason,
                    message=message,
                    now=self.now,
                )
            }
        )


def _handled(status: RolloutStatus, command: Command) -> bool:
    decision = {
        "approve": "Approved",
        "promote": "Promoted",
        "abort": "Aborted",
        "retry": "Retried",
        "pause": "Paused",
        "resume": "Resumed",
    }[command.kind]
    return any(r.decision == decision and r.at == command.at for r in status.approvals)


def _note_commands(t: _Tick) -> None:
    """Remember, for the latest command of each kind, when it was first seen and which approval
    gate the stored status showed open then. Status is written guarded by the resourceVersion
    of the object the commands were read from, so a command absent when a gate's opening was
    written came later: an order the API server keeps, that neither a client's ``at`` nor
    the controllers' clocks (which replica, skewed how) can move."""
    seen = {c.kind: c for c in t.status.commands_seen}
    gate = gate_name(t.plan, t.status) if t.status.phase == "WaitingApproval" else None
    changed = False
    for command in t.obs.commands:
        known = seen.get(command.kind)
        if known is None or known.at != command.at:
            seen[command.kind] = CommandSeen(
                kind=command.kind, at=command.at, seen_at=t.now, gate=gate
            )
            changed = True
    if changed:
        ordered = [seen[k] for k in sorted(seen)]
        t.status = t.status.model_copy(update={"commands_seen": ordered})


def _seen_at_open_gate(t: _Tick, command: Command, gate: str) -> bool:
    """Whether ``command`` was first seen while ``gate`` was open (given after it opened)."""
    return any(
        c.kind == command.kind and c.at == command.at and c.gate == gate
        for c in t.status.commands_seen
    )


def _pending(t: _Tick, kind: CommandKind) -> Command | None:
    return next(
        (c for c in t.obs.commands if c.kind == kind and not _handled(t.status, c)),
        None,
    )


def _record(t: _Tick, gate: str, decision: str, command: Command | None) -> None:
    record = ApprovalRecord.model_validate(
        {
            "gate": gate,
            "decision": decision,
            "actor": command.actor if command else "canary",
            "at": command.at if command else t.now,
            "comment": command.comment if command else "",
        }
    )
    t.status = t.status.model_copy(update={"approvals": [*t.status.approvals, record]})


_ON_TIMEOUT_TEXT: dict[OnTimeout, str] = {
    "Rollback": "rolling back",
    "Hold": "holding; a person should look",
    "Continue": "going on",
    "Fail": "stopping with traffic where it is",
}


def _deadline(t: _Tick, reason: str, wait: Wait, since: datetime, what: str) -> OnTimeout | None:
    """What to do now about a wait that began at ``since``: None before its deadline (and
    wake up at it), else its ``onTimeout``. Every expiry is reported (a ``Stalled`` condition
    and a Warning Event, which notifies) once per wait, however long a Hold lasts."""
    due = since + wait.timeout
    if t.now < due:
        t.wake(due - t.now)
        return None
    action = _ON_TIMEOUT_TEXT[wait.on_timeout]
    t.stalled = (reason, f"{what} for {format_duration(wait.timeout)}: {action}")
    return wait.on_timeout


def _report_stall(t: _Tick) -> None:
    """Raise ``Stalled`` (with its Warning Event) when a wait passed its deadline; lower it
    once no wait is past one (a rollback keeps it: it says why the release ended)."""
    old = next((c for c in t.status.conditions if c.type == "Stalled"), None)
    if t.stalled is not None:
        reason, message = t.stalled
        if old is None or old.status != "True" or old.reason != reason:
            t.event(reason, message, warning=True)
            t.condition("Stalled", True, reason, message)
        return
    moved = (t.status.phase, t.status.current_step_index) != (t.obs_phase, t.obs_step)
    if (
        old is not None
        and old.status == "True"
        and t.status.phase not in (*TERMINAL_PHASES, "RollingBack")
        and (moved or old.reason in t.over)
    ):
        t.condition("Stalled", False, "InTime", "no wait is past its deadline")


def gate_name(plan: Plan, status: RolloutStatus) -> str:
    """The approval gate a rollout in WaitingApproval waits at."""
    if not status.steps:
        return "beforeStart"
    if status.current_step_index >= len(plan.steps):
        return "beforePromotion"
    return f"step-{status.current_step_index}"


def _aborted(status: RolloutStatus) -> bool:
    stops = [r.decision for r in status.approvals if r.decision in ("Aborted", "Retried")]
    return bool(stops) and stops[-1] == "Aborted"


def _arm_stats(arm: judge.Arm, percentile: float) -> ArmStats:
    return ArmStats(
        requests=arm.requests,
        failures=arm.failures,
        latency_buckets=list(arm.buckets),
        success_rate=judge.success_rate(arm),
        latency_ms=judge.percentile_ms(arm.buckets, percentile),
    )


def _replace_step(t: _Tick, record: StepStatus) -> None:
    steps = list(t.status.steps)
    steps[record.index] = record
    t.status = t.status.model_copy(update={"steps": steps})


def _begin_step(t: _Tick, index: int) -> bool:
    """Start step ``index`` (or the promotion gate after the last step)."""
    plan = t.plan
    if index >= len(plan.steps):
        t.status = t.status.model_copy(update={"current_step_index": len(plan.steps)})
        if plan.before_promotion is not None:
            t.event("AwaitingApproval", "every step passed; waiting for approval to promote")
            t.condition("Progressing", True, "AwaitingApproval", "waiting for approval")
            return t.go("WaitingApproval", "every step passed; waiting for approval to promote")
        return _start_promotion(t, "every step passed")
    step = plan.steps[index]
    record = StepStatus(
        index=index, weight=step_plan.weight_at(plan.steps, index), started_at=t.now
    )
    steps = [s for s in t.status.steps if s.index < index] + [record]
    t.status = t.status.model_copy(update={"current_step_index": index, "steps": steps})
    if step.pause is None:
        advanced = f"step {index + 1}/{len(plan.steps)}: weight {step.set_weight}%"
        t.event("StepAdvanced", advanced)
        t.condition("Progressing", True, "StepAdvanced", advanced)
        return t.go("Progressing", f"step {index + 1}: moving to {step.set_weight}%")
    if step.pause.duration is not None:
        return t.go("Paused", f"step {index + 1}: paused for {step.pause.duration}")
    t.event("AwaitingApproval", f"step {index + 1}: waiting for approval")
    t.condition("Progressing", True, "AwaitingApproval", f"step {index + 1} waits for approval")
    return t.go("WaitingApproval", f"step {index + 1}: waiting for approval")


def _finish_step(t: _Tick, verdict: Literal["Passed", "Skipped"], message: str) -> bool:
    index = t.status.current_step_index
    record = t.status.steps[index]
    _replace_step(
        t, record.model_copy(update={"verdict": verdict, "finished_at": t.now, "message": message})
    )
    return _begin_step(t, index + 1)


def _start_rollback(t: _Tick, reason: str, event: str = "RollbackStarted") -> bool:
    t.event(event, reason, warning=True)
    t.condition("Progressing", True, "RollingBack", reason)
    _check_stable_capacity(t)
    # Nothing that grows the canary or touches stable may follow a decision to roll back.
    t.actions = [a for a in t.actions if not isinstance(a, EnsureCanary | PromoteStable)]
    t.act(SetWeight(0))
    return t.go("RollingBack", reason)


def _check_stable_capacity(t: _Tick) -> None:
    """Say so when a rollback sends the stable Deployment all traffic with fewer ready pods
    than it served all traffic with when the release began (its autoscaler scaled it down
    while the canary took a share). Traffic still moves back at once: docs/operations.md."""
    target, before = t.obs.target, t.status.stable_ready_at_start
    weight = t.obs.route.canary_weight if t.obs.route is not None else 0
    if target is None or before is None or weight == 0 or target.ready_replicas >= before:
        return
    message = (
        f"Deployment {t.plan.target} takes back {weight}% of the traffic with "
        f"{target.ready_replicas} ready pod(s); it served all traffic with {before} when the "
        "release began, so it may be overloaded until it has scaled up"
    )
    if target.autoscaler is not None:
        message += " (its HorizontalPodAutoscaler adds pods as the load reaches them)"
    t.event("StableUnderCapacity", message, warning=True)
    t.condition("StableCapacity", False, "FewerReadyPodsThanAtStart", message)


def _start_promotion(t: _Tick, reason: str) -> bool:
    t.event("PromotionStarted", reason)
    return t.go("Promoting", f"promoting: {reason}")


def _judge_step(t: _Tick) -> judge.Judgement | None:
    """Add this tick's counts to the current step (only while the step's weight is live) and
    judge the step. None when there was nothing new to judge."""
    obs = t.obs
    index = t.status.current_step_index
    if t.evidence_used or index >= len(t.status.steps):
        return None
    record = t.status.steps[index]
    live = obs.route is not None and obs.route.accepted
    if not live or obs.route is None or obs.route.canary_weight != record.weight:
        return None
    if obs.early is not None and (failed := _judge_early(t)) is not None:
        return failed  # a failing look the tick found while this window waited: it rolls back
    if obs.evidence is None:
        return None
    t.evidence_used = True
    percentile = t.plan.thresholds.latency_percentile
    judged = window.judge_step(t.plan, window.counted(t.status.steps), index, t.now, obs.evidence)
    verdict, needed = judged.verdict, judged.needed
    no_data = verdict.verdict is judge.Verdict.NO_DATA
    no_data_since = (record.no_data_since or t.now) if no_data else None
    _replace_step(
        t,
        record.model_copy(
            update={
                "canary": _arm_stats(judged.canary, percentile),
                "stable": _arm_stats(judged.stable, percentile),
                "checks": list(verdict.checks),
                "no_data_since": no_data_since,
                "message": verdict.reason,
                "needs": needed.requests,
                "needed_for": needed.reason,
                "eta": None if judged.eta is None else t.now + judged.eta,
            }
        ),
    )
    if not no_data:
        t.over.add("NoDataDeadlineExceeded")
    healthy = {judge.Verdict.PASS: True, judge.Verdict.FAIL: False}.get(verdict.verdict)
    t.condition("Healthy", healthy, str(verdict.verdict), verdict.reason)
    return verdict


def _judge_early(t: _Tick) -> judge.Judgement | None:
    """The fail-only look at the counts since the weight changed (``judge.evaluate_early``):
    a FAIL, noted on the step with those counts, or None — then nothing is added to the step's
    counts, so an early look can never pass a step."""
    assert t.obs.early is not None
    index = t.status.current_step_index
    record = t.status.steps[index]
    early = t.obs.early
    verdict = judge.evaluate_early(
        t.plan.thresholds,
        judge.Evidence(early.canary, early.stable, canary_weight=record.weight),
        index,
    )
    if verdict is None:
        return None
    t.evidence_used = True
    # A failing look ends the step: its record shows the counts that failed it, everything
    # served since the weight changed (a superset of the windows already added to it).
    percentile = t.plan.thresholds.latency_percentile
    update = {
        "canary": _arm_stats(early.canary, percentile),
        "stable": _arm_stats(early.stable, percentile),
        "checks": list(verdict.checks),
        "message": verdict.reason,
    }
    _replace_step(t, record.model_copy(update=update))
    t.condition("Healthy", False, str(verdict.verdict), verdict.reason)
    return verdict


def _early_failure(t: _Tick) -> judge.Judgement | None:
    """While metrics cannot be read: a failing early look the tick found before the outage
    (it waited for a worker meanwhile), which still rolls back; None when there is none."""
    if t.obs.early is None:
        return None
    failed = _judge_step(t)
    return failed if failed is not None and failed.verdict is judge.Verdict.FAIL else None


def _step_in_outage(t: _Tick, weight: int) -> bool:
    """A step at ``weight`` while metrics cannot be read: rolled back by a failing early look
    measured before the outage, else held (past ``analysis.unavailable``, its action)."""
    if (failed := _early_failure(t)) is not None:
        return _fail_step(t, failed)
    if _metrics_outage(t):
        return True
    return t.wait(f"holding at {weight}%: metrics unavailable ({t.obs.metrics_error})", WAIT)


def _metrics_outage(t: _Tick) -> bool:
    """Metrics cannot be read: say so, and past ``analysis.unavailable``'s deadline take its
    action. True when that action changed the phase."""
    error = t.obs.metrics_error
    assert error is not None
    t.condition("Healthy", None, "MetricsUnavailable", error)
    since = t.status.metrics_unavailable_since or t.now
    what = f"metrics unavailable ({error})"
    action = _deadline(t, "MetricsUnavailableDeadlineExceeded", t.plan.unavailable, since, what)
    if action == "Rollback":
        return _start_rollback(t, f"{what} for {format_duration(t.plan.unavailable.timeout)}")
    return False


def _watch_health(t: _Tick) -> bool:
    """While a step holds (pause, approval), keep judging: a FAIL still rolls back, and so
    does a canary left with no ready pod while it has a share."""
    index = t.status.current_step_index
    if index < len(t.status.steps) and _canary_unavailable(t, t.status.steps[index]):
        return _roll_back_unavailable(t)
    if t.obs.metrics_error is not None:
        failed = _early_failure(t)
        return _fail_step(t, failed) if failed is not None else _metrics_outage(t)
    verdict = _judge_step(t)
    if verdict is not None and verdict.verdict is judge.Verdict.FAIL:
        return _fail_step(t, verdict)
    return False


def _fail_step(t: _Tick, verdict: judge.Judgement) -> bool:
    index = t.status.current_step_index
    record = t.status.steps[index]
    _replace_step(t, record.model_copy(update={"verdict": "Failed", "finished_at": t.now}))
    return _start_rollback(
        t, f"step {index + 1} failed analysis: {verdict.reason}", "AnalysisFailed"
    )


def _hooks(t: _Tick, kind: HookType, point: str) -> hook_rules.Gate:
    """The policy's ``kind`` hooks at ``point`` (canary.core.hooks): calls to start, status."""
    gate = hook_rules.at(t.plan.hooks, kind, point, t.status.hooks, t.now, steps=len(t.plan.steps))
    t.status = t.status.model_copy(update={"hooks": gate.state})
    t.calls.extend(gate.calls)
    return gate


def _reached(t: _Tick, point: str) -> bool:
    """Whether the release's hooks already stand at ``point`` (a later one in this phase)."""
    return t.status.hooks is not None and t.status.hooks.point == point


def _confirm(t: _Tick, kind: HookType, point: str) -> bool | None:
    """The confirm hooks at ``point``: None when they let the release go on, else what the
    phase handler returns (waiting, or their deadline's onTimeout changed the phase)."""
    gate = _hooks(t, kind, point)
    if gate.passed:
        t.over.add("HookDeadlineExceeded")
        if gate.just_passed:  # the next wait's deadline counts from here
            t.status = t.status.model_copy(update={"phase_since": t.now})
        return None
    assert gate.deadline is not None
    assert gate.since is not None
    what = f"no 2xx answer from the {point} hooks"
    action = _deadline(t, "HookDeadlineExceeded", gate.deadline, gate.since, what)
    if action is None or action == "Hold":
        return t.wait(f"waiting for the {point} hooks: {gate.message}", gate.wake or WAIT)
    left = hook_rules.abandon(t.status.hooks, point, t.now)
    if action == "Continue":
        passed = hook_rules.pass_all(t.plan.hooks, kind, left)
        t.status = t.status.model_copy(update={"hooks": passed, "phase_since": t.now})
        return None
    t.status = t.status.model_copy(update={"hooks": left})
    reason = f"{what} within {format_duration(gate.deadline.timeout)} ({gate.message})"
    if kind == "confirm-start":
        return _end_unstarted(t, "RolledBack", reason)
    return _start_rollback(t, reason)


def _reported(t: _Tick, kind: HookType) -> hook_rules.Gate | None:
    """The ``rollback`` or ``post-rollout`` hooks: called once, their failures reported. None
    once every one has answered (or failed), else their gate (the caller waits)."""
    gate = _hooks(t, kind, kind)
    if gate.passed:
        return None
    return gate


# --- phase handlers: each returns True when it changed phase (then the next one runs) ------


def _pending_phase(t: _Tick) -> bool:
    if t.obs.target is None:
        t.condition("Valid", False, "TargetNotFound", f"Deployment {t.plan.target} does not exist")
        return t.wait(f"waiting for Deployment {t.plan.target} to exist", RETRY_REFERENCES)
    if not t.obs.apex_service:
        name = t.plan.service.name
        t.condition("Valid", False, "ServiceNotFound", f"Service {name} does not exist")
        return t.wait(f"waiting for Service {name} to exist", RETRY_REFERENCES)
    t.condition("Valid", True, "Resolved", "target, Service and policy found")
    t.status = t.status.model_copy(update={"started_at": t.status.started_at or t.now})
    if t.plan.before_start is not None and not any(
        r.gate == "beforeStart" and r.decision == "Approved" for r in t.status.approvals
    ):
        t.event("AwaitingApproval", "waiting for approval to start")
        t.condition("Progressing", True, "AwaitingApproval", "waiting for approval to start")
        return t.go("WaitingApproval", "waiting for approval to start")
    t.condition("Progressing", True, "Initializing", "starting the canary")
    return t.go("Initializing", "starting the canary")


def _not_ready(obs: Observation, replicas: int) -> list[str]:
    """What keeps a starting canary from its first step, in the words its status uses: so a
    person (or a benchmark) can tell slow pods from a route the mesh has not accepted."""
    canary, route = obs.canary, obs.route
    parts = []
    if canary is None:
        parts.append("canary Deployment not created yet")
    elif not canary.current:
        parts.append("canary Deployment not on this release's template yet")
    elif canary.ready_replicas < replicas:
        parts.append(f"{canary.ready_replicas} of {replicas} canary pod(s) ready")
    if not obs.services_ready:
        parts.append("canary and stable Services not ready")
    if route is None:
        parts.append("no route found")
    elif not route.accepted:
        parts.append("route not accepted by the mesh yet")
    return parts


def _initializing_phase(t: _Tick) -> bool:
    obs, plan = t.obs, t.plan
    assert obs.target is not None
    first = next(s.set_weight for s in plan.steps if s.set_weight)  # plan.build ensures one
    canary_size = step_plan.canary_size(obs.target, first, moving=True)
    replicas = canary_size.replicas
    if t.status.stable_ready_at_start is None:
        # What the stable served all traffic with: a rollback compares against it.
        update = {"stable_ready_at_start": obs.target.ready_replicas}
        t.status = t.status.model_copy(update=update)
    if obs.route is not None and obs.route.canary_weight != 0:
        t.act(SetWeight(0))
        return t.wait("moving leftover canary traffic back to stable", WAIT)
    if not _reached(t, "pre-rollout"):
        held = _confirm(t, "confirm-start", "confirm-start")
        if held is not None:
            return held
    t.act(EnsureServices())
    t.act(canary_size)
    t.act(SetWeight(0))
    missing = _not_ready(obs, replicas)
    if missing:
        since = t.status.phase_since or t.now
        what = f"canary not ready ({', '.join(missing)})"
        if _deadline(t, "ProgressDeadlineExceeded", plan.progress, since, what) == "Rollback":
            return _start_rollback(t, f"{what} for {format_duration(plan.progress.timeout)}")
        if obs.route is not None and obs.route.rejection_reason:
            return t.wait(
                f"waiting for the mesh to accept the route: {obs.route.rejection_reason}", WAIT
            )
        return t.wait("waiting for the canary pods and the route", WAIT)
    pre = _hooks(t, "pre-rollout", "pre-rollout")
    if pre.outcome == "Failed":
        return _start_rollback(t, f"pre-rollout hook failed: {pre.message}", "PreRolloutFailed")
    if not pre.passed:
        return t.wait(f"waiting for the pre-rollout hooks: {pre.message}", pre.wake or WAIT)
    t.event("Initialized", f"canary {plan.canary_deployment} ready with {replicas} pod(s)")
    return _begin_step(t, 0)


def _progressing_phase(t: _Tick) -> bool:
    obs, plan = t.obs, t.plan
    assert obs.target is not None
    index = t.status.current_step_index
    record = t.status.steps[index]
    weight = record.weight or 0
    moving = weight != (obs.route.canary_weight if obs.route is not None else 0)
    canary_size = step_plan.canary_size(obs.target, weight, moving=moving)
    replicas = canary_size.replicas
    t.act(canary_size)
    canary_ready = (
        obs.canary is not None and obs.canary.current and obs.canary.ready_replicas >= replicas
    )
    if _canary_unavailable(t, record):
        return _roll_back_unavailable(t)
    if not canary_ready:
        what = f"canary pods for {weight}% not ready ({replicas} wanted)"
        deadline = plan.progress
        if _deadline(t, "ProgressDeadlineExceeded", deadline, record.started_at, what) == (
            "Rollback"
        ):
            return _start_rollback(t, f"{what} for {format_duration(deadline.timeout)}")
        return t.wait(f"waiting for {replicas} canary pod(s) before moving to {weight}%", WAIT)
    t.over.add("ProgressDeadlineExceeded")
    if weight > (obs.route.canary_weight if obs.route is not None else 0):
        held = _confirm(t, "confirm-step", f"confirm-step/{index}")
        if held is not None:
            return held
    t.act(SetWeight(weight))
    if obs.metrics_error is not None:
        return _step_in_outage(t, weight)
    verdict = _judge_step(t)
    if verdict is None:
        return t.wait(f"step {index + 1} at {weight}%: measuring", plan.interval)
    if verdict.verdict is judge.Verdict.FAIL:
        return _fail_step(t, verdict)
    if verdict.verdict is judge.Verdict.PASS:
        return _finish_step(t, "Passed", verdict.reason)
    current = t.status.steps[index]
    if verdict.verdict is judge.Verdict.NO_DATA and current.no_data_since is not None:
        wait = Wait(plan.no_data_timeout, plan.no_data_on_timeout)
        what = f"step {index + 1}: no canary traffic to judge"
        if _deadline(t, "NoDataDeadlineExceeded", wait, current.no_data_since, what) == (
            "Rollback"
        ):
            return _start_rollback(t, f"step {index + 1}: no data for {plan.no_data_timeout}")
    return t.wait(f"step {index + 1} at {weight}%: {verdict.reason}{_eta(t)}", plan.interval)


def _roll_back_unavailable(t: _Tick) -> bool:
    return _start_rollback(
        t,
        f"no canary pod was ready for {format_duration(t.plan.canary_unavailable)} while the "
        "route sent the canary its share",
    )


def _canary_unavailable(t: _Tick, record: StepStatus) -> bool:
    """Whether the canary has had no ready pod for ``plan.canary_unavailable`` while the
    route sends it traffic (pods that crash or fail readiness after the step began). Notes when
    that began on the step (with a Warning Event), and forgets it once a pod is ready or the
    route sends the canary nothing. A Deployment not yet seen by its controller since canary
    scaled it (``settled`` False) starts no clock: its 0 ready pods are not known to be gone."""
    live = t.obs.route.canary_weight if t.obs.route is not None else 0
    canary = t.obs.canary
    if live == 0 or (canary is not None and canary.ready_replicas > 0):
        if record.unready_since is not None:
            _replace_step(t, record.model_copy(update={"unready_since": None}))
        return False
    since = record.unready_since
    if since is None and canary is not None and not canary.settled:
        return False
    if since is None:
        since = t.now
        _replace_step(t, record.model_copy(update={"unready_since": since}))
        t.event(
            "CanaryUnavailable",
            f"no canary pod is ready while the route sends the canary {live}% of the traffic; "
            f"rolling back if none is within {format_duration(t.plan.canary_unavailable)}",
            warning=True,
        )
    due = since + t.plan.canary_unavailable
    if t.now >= due:
        return True
    t.wake(due - t.now)
    return False


def _eta(t: _Tick) -> str:
    """Why a step short of the canary requests it needs waits, when it will have them at the
    traffic seen so far, and, when that is long, what would shorten it ("" when there is
    nothing to estimate)."""
    record = t.status.steps[t.status.current_step_index]
    if record.needs is None or record.canary.requests >= record.needs:
        return ""
    why = ""
    if record.needed_for == "detect":
        why = f"; held at the last shared step for analysis.detect ({record.needs} needed)"
    if record.eta is None:
        return why
    left = record.eta - t.now
    note = f"{why}; about {format_duration(left)} more at the current canary traffic"
    if left > power.SLOW_STEP:
        note += (
            " (a higher weight for this step, a lower minRequestsPerStep or analysis.detect, "
            "or a load-test hook would shorten it)"
        )
    return note


def _paused_phase(t: _Tick) -> bool:
    index = t.status.current_step_index
    record = t.status.steps[index]
    pause = t.plan.steps[index].pause
    assert pause is not None
    assert pause.duration is not None
    if _watch_health(t):
        return True
    until = record.started_at + pause.duration
    if t.now >= until:
        return _finish_step(t, "Passed", f"paused for {pause.duration}")
    return t.wait(f"step {index + 1}: paused", min(until - t.now, t.plan.interval))


def _waiting_phase(t: _Tick) -> bool:
    plan = t.plan
    gate = gate_name(plan, t.status)
    if gate.startswith("step-") and _watch_health(t):
        return True
    approve = _pending(t, "approve")
    if approve is not None and _seen_at_open_gate(t, approve, gate):
        _record(t, gate, "Approved", approve)
        t.event("Approved", f"{gate} approved by {approve.actor or 'someone'}")
        return _pass_gate(t, gate, "approved")
    wait = _gate_wait(plan, gate, t.status)
    since = t.status.phase_since or t.now
    action = _deadline(t, "ApprovalDeadlineExceeded", wait, since, f"no approval at {gate}")
    if action is None:  # _deadline wakes us at the deadline
        return t.wait(f"waiting for approval at {gate}", timedelta.max)
    if action == "Hold":
        return t.wait(f"waiting for approval at {gate} (past its deadline)", plan.interval)
    _record(t, gate, "TimedOut", None)
    reason = f"{gate}: no approval within {format_duration(wait.timeout)}"
    if gate == "beforeStart" and action == "Rollback":
        return _end_unstarted(t, "RolledBack", reason)
    if action == "Rollback":
        return _start_rollback(t, reason)
    return _pass_gate(t, gate, f"no approval within {format_duration(wait.timeout)}")


def _gate_wait(plan: Plan, gate: str, status: RolloutStatus) -> Wait:
    """The gate's wait; a gate the plan no longer has (the policy changed) keeps the default."""
    if gate == "beforeStart":
        wait = plan.before_start
    elif gate == "beforePromotion":
        wait = plan.before_promotion
    else:
        wait = plan.pause_gates[status.current_step_index]
    return wait or approval_wait(None, None, None)


def _end_unstarted(t: _Tick, phase: Phase, reason: str) -> bool:
    """End a release that never started: nothing was created, so nothing is routed or scaled
    (a route set to 100% stable now would point at a Service that does not exist)."""
    t.event(phase, reason, warning=True)
    t.condition("Progressing", False, phase, reason)
    t.go(phase, reason, finished_at=t.now)
    return False


def _pass_gate(t: _Tick, gate: str, why: str) -> bool:
    if gate == "beforeStart":
        t.condition("Progressing", True, "Initializing", "starting the canary")
        return t.go("Initializing", f"starting the canary: {why}")
    if gate == "beforePromotion":
        return _start_promotion(t, why)
    return _finish_step(t, "Passed", why)


def _promoting_phase(t: _Tick) -> bool:
    obs = t.obs
    assert obs.target is not None
    t.condition("Progressing", True, "Promoting", "moving the stable Deployment to the release")
    if not obs.target.has_release:
        held = _confirm(t, "confirm-promotion", "confirm-promotion")
        if held is not None:
            return held
        t.act(PromoteStable())
        return t.wait("updating the stable Deployment to the release", WAIT)
    if not obs.target.ready:
        since = t.status.phase_since or t.now
        what = f"Deployment {t.plan.target} not rolled out"
        if _deadline(t, "PromotionDeadlineExceeded", t.plan.promotion, since, what) == "Fail":
            return _fail_promotion(t)
        return t.wait("waiting for the stable Deployment to roll out", WAIT)
    t.over.add("PromotionDeadlineExceeded")
    if obs.route is not None and obs.route.canary_weight != 0:
        t.act(SetWeight(0))
        return t.wait("routing all traffic to the updated stable pods", WAIT)
    if obs.route is not None and not obs.route.accepted:
        # The canary serves until the mesh has the route at 0%, as in a rollback.
        return t.wait("waiting for the mesh to accept the route at 0% canary", _recheck(t))
    if obs.canary is not None and obs.canary.replicas > 0:
        if (left := _draining(t)) is not None:
            return t.wait(_DRAINING, left)
        t.act(ScaleCanaryToZero())
        return t.wait("scaling the canary to zero", WAIT)
    post = _reported(t, "post-rollout")
    if post is not None:
        return t.wait(f"waiting for the post-rollout hooks: {post.message}", post.wake or WAIT)
    t.event("Promoted", f"{t.plan.target} promoted; all traffic on the updated stable pods")
    t.condition("Progressing", False, "Succeeded", "the release is promoted")
    return t.go(
        "Succeeded",
        f"promoted{hook_rules.failed_note(t.status.hooks)}",
        finished_at=t.now,
        promoted=obs.target.template,
    )


def _fail_promotion(t: _Tick) -> bool:
    """The stable Deployment did not roll the release out in time. Traffic stays where it is:
    the canary runs the release and passed analysis, and the stable Deployment keeps its old
    ready pods while new ones fail. canary never reverts the stable Deployment: a person
    decides, and this message says how."""
    target = t.plan.target
    weight = t.obs.route.canary_weight if t.obs.route is not None else 0
    message = (
        f"Deployment {target} did not roll out the release within "
        f"{format_duration(t.plan.promotion.timeout)}; traffic stays {weight}% canary, "
        f"{100 - weight}% stable and the canary keeps running. See why its new pods are not "
        f"ready (kubectl rollout status deployment/{target}); once it has rolled out, "
        f"`canary retry` finishes the promotion. To go back instead: kubectl rollout undo "
        f"deployment/{target}, then `canary abort`."
    )
    t.condition("Progressing", False, "PromotionDeadlineExceeded", message)
    return t.go("Failed", message, finished_at=t.now)


def _promotion_failed(status: RolloutStatus) -> bool:
    return status.phase == "Failed" and any(
        c.type == "Progressing" and c.reason == "PromotionDeadlineExceeded"
        for c in status.conditions
    )


_DRAINING = (
    f"all traffic on stable; the canary keeps its pods {CANARY_DRAIN.seconds}s for proxies "
    "still applying the route, then is scaled to zero"
)


def _draining(t: _Tick) -> timedelta | None:
    """How much longer the canary keeps its pods now that the route sends it nothing
    (:data:`CANARY_DRAIN`, counted from the first tick that saw it so); None when it may be
    scaled to zero: drained, or no canary pod is ready to serve anything."""
    canary = t.obs.canary
    if canary is None or canary.ready_replicas == 0:
        return None
    since = t.status.canary_drained_from
    if since is None:
        since = t.now
        t.status = t.status.model_copy(update={"canary_drained_from": since})
    left = since + CANARY_DRAIN - t.now
    return left if left > timedelta(0) else None


def _recheck(t: _Tick) -> timedelta:
    """How soon a rollback (or the end of a promotion) waiting for the route or the canary's
    scale-down looks again: every second at first, then a quarter of the time the phase has
    lasted so far, at most :data:`ROLLBACK_RECHECK_MAX`. A change of the route or of the canary
    Deployment wakes the Rollout at once anyway (the watches); this is the safety net under
    them, and it must not reconcile a Rollout every second while a mesh takes minutes to
    accept a route. In a promotion the phase began before the stable Deployment rolled out,
    so its first look at the route may already come :data:`ROLLBACK_RECHECK_MAX` later; only
    a lost watch event makes that wait."""
    waited = t.now - (t.status.phase_since or t.now)
    return min(max(waited / 4, timedelta(seconds=1)), ROLLBACK_RECHECK_MAX)


def _rolling_back_phase(t: _Tick) -> bool:
    obs = t.obs
    t.act(SetWeight(0))
    told = None if _reached(t, "post-rollout") else _reported(t, "rollback")
    if obs.route is not None and (obs.route.canary_weight != 0 or not obs.route.accepted):
        return t.wait("routing all traffic back to stable", _recheck(t))
    if obs.canary is not None and obs.canary.replicas > 0:
        if (left := _draining(t)) is not None:
            return t.wait(_DRAINING, left)
        t.act(ScaleCanaryToZero())
        return t.wait("scaling the canary to zero", _recheck(t))
    if told is not None:
        return t.wait(f"waiting for the rollback hooks: {told.message}", told.wake or WAIT)
    post = _reported(t, "post-rollout")
    if post is not None:
        return t.wait(f"waiting for the post-rollout hooks: {post.message}", post.wake or WAIT)
    final: Phase = "Aborted" if _aborted(t.status) else "RolledBack"
    cause = next(c for c in t.status.conditions if c.type == "Progressing")
    message = cause.message + hook_rules.failed_note(t.status.hooks)
    t.event(final, f"all traffic on stable; canary scaled to zero ({message})", warning=True)
    t.condition("Progressing", False, final, message)
    t.go(final, message, finished_at=t.now)
    return False


def _terminal_phase(t: _Tick) -> bool:
    valid = next((c for c in t.status.conditions if c.type == "Valid"), None)
    if t.status.phase == "Failed" and valid is not None and valid.reason == "InvalidSpec":
        # decide() only runs with a plan, so the spec has been fixed: start over.
        t.condition("Valid", True, "Resolved", "the spec is valid again")
        return t.go("Pending", "the spec is valid again", finished_at=None)
    retry = _pending(t, "retry")
    abort = _pending(t, "abort")
    if _promotion_failed(t.status) and abort is not None:
        # A person reverted the stable Deployment (or accepts it as it is): route back.
        _record(t, "promotion", "Aborted", abort)
        return _start_rollback(t, f"aborted by {abort.actor or 'someone'}", "Aborting")
    if t.status.phase == "Succeeded":
        _watch_promoted(t)
    if retry is None or t.status.phase in ("Succeeded", "Superseded"):
        return t.wait(t.status.message or t.status.phase.lower(), timedelta.max)
    _record(t, "retry", "Retried", retry)
    t.event("Retried", f"retry requested by {retry.actor or 'someone'}")
    if _promotion_failed(t.status):
        return t.go("Promoting", "retrying the promotion", finished_at=None)
    # A retry is a new release: no command seen at a gate of the last one opens its gates.
    unmarked = [c.model_copy(update={"gate": None}) for c in t.status.commands_seen]
    return t.go(
        "Pending",
        "retrying",
        paused_at=None,
        stable_ready_at_start=None,
        current_step_index=0,
        steps=[],
        started_at=None,
        finished_at=None,
        commands_seen=unmarked,
    )


def _watch_promoted(t: _Tick) -> None:
    """After ``Succeeded``: report when the stable Deployment no longer runs the release (a
    GitOps sync put Git's image back, someone set another image), and when it runs it again.
    canary never writes it back: that would fight the Deployment's owner (docs/gitops.md)."""
    target = t.obs.target
    old = next((c for c in t.status.conditions if c.type == "StableReverted"), None)
    reverted = old is not None and old.status == "True"
    if target is None or t.obs.newer_promotion or target.has_release == (not reverted):
        return
    name = t.plan.target
    if target.has_release:
        message = f"Deployment {name} runs the release again"
        t.event("StableRestored", message)
        t.condition("StableReverted", False, "RunsTheRelease", message)
        return
    images = ", ".join(f"{c}={image}" for c, image in sorted(t.plan.images.items()))
    message = (
        f"Deployment {name} no longer runs this release ({images or 'its templatePatch'}): "
        "something wrote its pod "
        "template after the promotion, typically a GitOps sync putting Git's image back. canary "
        "does not write it back; tell the GitOps controller to leave the released fields to "
        "canary (docs/gitops.md), then release again or `canary undo`"
    )
    t.event("StableReverted", message, warning=True)
    t.condition("StableReverted", True, "TemplateChanged", message)


_HANDLERS: dict[str, Callable[[_Tick], bool]] = {
    "Pending": _pending_phase,
    "Initializing": _initializing_phase,
    "Progressing": _progressing_phase,
    "Paused": _paused_phase,
    "WaitingApproval": _waiting_phase,
    "Promoting": _promoting_phase,
    "RollingBack": _rolling_back_phase,
}


def _hold(t: _Tick) -> None:
    """`canary pause` and `canary resume`, in the order they were given. A pause holds the
    release where it is; a resume moves every running wait's start on by the time held, so
    that no deadline counts time a person held the release."""
    given = [c for c in (_pending(t, "pause"), _pending(t, "resume")) if c is not None]
    for command in sorted(given, key=lambda c: c.at):
        who = command.actor or "someone"
        decision = "Paused" if command.kind == "pause" else "Resumed"
        _record(t, gate_name(t.plan, t.status), decision, command)
        held = t.status.paused_at
        if command.kind == "pause" and held is None:
            t.status = t.status.model_copy(update={"paused_at": t.now})
            t.event("PausedByPerson", f"paused by {who}")
        elif command.kind == "resume" and held is not None:
            _resume(t, held, f"resumed by {who}")


def _resume(t: _Tick, held: datetime, why: str) -> None:
    t.status = _shift_waits(t.status, held, t.now)
    t.over.add("PauseDeadlineExceeded")
    t.event("Resumed", why)
    t.condition("Progressing", True, "Resumed", why)


def _shift_waits(status: RolloutStatus, held: datetime, now: datetime) -> RolloutStatus:
    """Every running wait's start moved on by the time held (a wait that began while held,
    such as a metrics outage, begins now)."""

    def later(at: datetime | None) -> datetime | None:
        return min(at + (now - held), now) if at is not None else None

    steps = list(status.steps)
    index = status.current_step_index
    if index < len(steps):
        step = steps[index]
        steps[index] = step.model_copy(
            update={
                "started_at": later(step.started_at),
                "no_data_since": later(step.no_data_since),
                "unready_since": later(step.unready_since),
            }
        )
    hooks = status.hooks
    return status.model_copy(
        update={
            "paused_at": None,
            "hooks": hooks.model_copy(update={"since": later(hooks.since)}) if hooks else None,
            "phase_since": later(status.phase_since),
            "metrics_unavailable_since": later(status.metrics_unavailable_since),
            "steps": steps,
        }
    )


def _held_phase(t: _Tick) -> bool:
    """Held by a person: nothing advances and no deadline runs, but the canary is still
    judged and a FAIL still rolls back."""
    if t.obs.metrics_error is not None:
        if (failed := _early_failure(t)) is not None:
            return _fail_step(t, failed)
        t.condition("Healthy", None, "MetricsUnavailable", t.obs.metrics_error)
    else:
        verdict = _judge_step(t)
        if verdict is not None and verdict.verdict is judge.Verdict.FAIL:
            return _fail_step(t, verdict)
    weight = t.obs.route.canary_weight if t.obs.route is not None else 0
    held = t.status.paused_at
    assert held is not None
    wait = t.plan.held
    action = _deadline(t, "PauseDeadlineExceeded", wait, held, f"held at {weight}% by a person")
    if action == "Continue":
        _record(t, gate_name(t.plan, t.status), "Resumed", None)
        _resume(t, held, f"resumed by canary: held for {format_duration(wait.timeout)}")
        return True
    if action == "Rollback":
        return _start_rollback(t, f"held by a person for {format_duration(wait.timeout)}")
    t.condition("Progressing", True, "PausedByPerson", f"held at {weight}% by a person")
    return t.wait(f"paused at {weight}% (canary resume to go on)", t.plan.interval)


def _commands(t: _Tick) -> None:
    """Abort and promote apply in any active phase, before the phase's own logic; pause and
    resume in the phases a release can be held in."""
    phase = t.status.phase
    abort = _pending(t, "abort")
    if abort is not None and phase != "RollingBack":
        gate = gate_name(t.plan, t.status)
        _record(t, gate, "Aborted", abort)
        reason = f"aborted by {abort.actor or 'someone'}"
        if phase == "Pending" or (phase == "WaitingApproval" and gate == "beforeStart"):
            _end_unstarted(t, "Aborted", reason)
        else:
            _start_rollback(t, reason, "Aborting")
        return
    promote = _pending(t, "promote")
    if promote is not None and phase in (
        "Initializing",
        "Progressing",
        "Paused",
        "WaitingApproval",
    ):
        _record(t, gate_name(t.plan, t.status), "Promoted", promote)
        _start_promotion(t, f"promoted by {promote.actor or 'someone'}")
    if t.status.phase in command_rules.HOLDABLE_PHASES:
        _hold(t)


def decide(plan: Plan, status: RolloutStatus, obs: Observation, now: datetime) -> Decision:
    """Decide what to do now. Pure and deterministic."""
    t = _Tick(
        plan=plan,
        obs=obs,
        now=now,
        status=status,
        obs_phase=status.phase,
        obs_step=status.current_step_index,
    )
    if status.phase in TERMINAL_PHASES:
        if _terminal_phase(t):
            _run(t)
            _report_stall(t)
        return _decision(t)
    _note_commands(t)
    if obs.superseded_by is not None:
        t.event("Superseded", f"Rollout {obs.superseded_by} took over {plan.target}")
        t.condition("Progressing", False, "Superseded", f"superseded by {obs.superseded_by}")
        t.go("Superseded", f"superseded by Rollout {obs.superseded_by}", finished_at=now)
        return _decision(t)
    if obs.target is None and status.phase != "Pending":
        # The stable Deployment vanished mid-release: never leave traffic half-shifted.
        t.condition("Valid", False, "TargetNotFound", f"Deployment {plan.target} was deleted")
        _start_rollback(t, f"Deployment {plan.target} was deleted")
        t.act(ScaleCanaryToZero())
        t.go("Failed", f"Deployment {plan.target} was deleted", finished_at=now)
        return _decision(t)
    recorded, hook_events = hook_rules.record(plan.hooks, status.hooks, obs.hook_answers, now)
    t.status = _track_metrics(t.status, obs, now).model_copy(update={"hooks": recorded})
    t.events.extend(hook_events)
    if t.status.metrics_unavailable_since is None:
        t.over.add("MetricsUnavailableDeadlineExceeded")
    _commands(t)
    _run(t)
    _report_stall(t)
    _route_condition(t)
    return _decision(t)


def _track_metrics(status: RolloutStatus, obs: Observation, now: datetime) -> RolloutStatus:
    """Remember since when the metrics have been unreadable; forget it once they are read."""
    if obs.metrics_error is not None and status.metrics_unavailable_since is None:
        return status.model_copy(update={"metrics_unavailable_since": now})
    if obs.evidence is not None and status.metrics_unavailable_since is not None:
        return status.model_copy(update={"metrics_unavailable_since": None})
    return status


def _route_condition(t: _Tick) -> None:
    """Report the mesh's refusal of the route as ``RouteAccepted=False`` (until it accepts)."""
    route = t.obs.route
    if route is None or t.status.phase in TERMINAL_PHASES:
        return
    if route.rejection_reason:
        t.condition("RouteAccepted", False, route.rejection_reason, route.rejection_message)
    elif route.accepted and any(c.type == "RouteAccepted" for c in t.status.conditions):
        t.condition("RouteAccepted", True, "Accepted", "the mesh accepted the route")


def _run(t: _Tick) -> None:
    for _ in range(len(t.plan.steps) + 8):
        handler = _HANDLERS.get(t.status.phase)
        if t.status.paused_at is not None and t.status.phase in command_rules.HOLDABLE_PHASES:
            handler = _held_phase
        if handler is None or not handler(t):
            return
    t.wait(t.reason, WAIT)  # pragma: no cover - every path settles well within the bound


def _decision(t: _Tick) -> Decision:
    route = t.obs.route
    weight = route.canary_weight if route is not None else 0
    requeue = None if t.requeue == timedelta.max else t.requeue
    if t.status.phase in ("Initializing", "Progressing", "RollingBack", "Promoting"):
        requeue = requeue or WAIT
    status = t.status.model_copy(
        update={"canary_weight": weight, "message": t.reason or t.status.message}
    )
    if status.phase in TERMINAL_PHASES and status.hooks is not None:
        status = status.model_copy(update={"hooks": hook_rules.abandon(status.hooks, None, t.now)})
    return Decision(tuple(t.actions), status, t.reason, requeue, tuple(t.events), tuple(t.calls))


def invalid(status: RolloutStatus, problems: list[Problem], now: datetime) -> Decision:
    """The decision for a Rollout whose spec cannot be planned: report it, act on nothing but
    getting traffic back to stable if the release had already shifted some."""
    message = "; ".join(str(p) for p in problems)
    conditions = set_condition(
        status.conditions, "Valid", status=False, reason="InvalidSpec", message=message, now=now
    )
    actions: tuple[Action, ...] = ()
    if status.phase not in TERMINAL_PHASES and status.phase != "Pending":
        actions = (SetWeight(0), ScaleCanaryToZero())
    event = Event("Warning", "InvalidSpec", message)
    new = status.model_copy(
        update={
            "phase": "Failed",
            "phase_since": status.phase_since if status.phase == "Failed" else now,
            "message": message,
            "conditions": conditions,
            "finished_at": status.finished_at or now,
        }
    )
    events = () if status.phase == "Failed" and status.message == message else (event,)
    return Decision(actions, new, message, None, events)
