"""One reconcile of one Rollout: read → observe → decide → act → write status.

Called by ``canary.runtime.controller``'s workers (never two at once for one Rollout), for a
Rollout woken by a watch event, a requeue, or a measuring tick (then with the tick's evidence).
Level-triggered: it never asks why it was woken; it reads everything, lets ``machine.decide``
choose, applies the absolute actions in order, and writes status last (guarded by
resourceVersion). A decision that starts a rollback writes its status first, so that a lost
race never leaves the route ahead of what status records (``Reconciler._roll_back``). It never
waits inside a tick, and never sends a notification itself: the notifications of its events go
into the outbox of the status it writes (``canary.core.outbox``), which
``canary.runtime.outbox`` delivers. Talks to the world only through ``canary.ports``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from canary.core import commands, history, judge, machine, measuring, outbox, vocabulary
from canary.core import plan as plan_mod
from canary.errors import (
    CanaryError,
    ConfigError,
    InvalidSpec,
    Problem,
    TerminalError,
    TransientError,
    WriteRefused,
)
from canary.model.rollout import Rollout
from canary.model.status import TERMINAL_PHASES, RolloutStatus
from canary.ports import (
    Clock,
    EventRecorder,
    HookCaller,
    Ref,
    RolloutStore,
    TrafficRouter,
    Workloads,
)

log = structlog.get_logger("canary.reconciler")

RETRY_TRANSIENT = timedelta(seconds=2)
RETRY_TERMINAL = timedelta(seconds=30)
RETRY_REFUSED = timedelta(seconds=10)
"""How soon to try a refused route write again (doubled per refusal in a row, up to the
controller's cap): the route's owner must change it first."""
ROUTE_WRITABLE = "RouteWritable"
"""The condition that says the API server refused canary's last weight change of the route."""
MESSAGE_LIMIT = 1024


class RouteRefused(WriteRefused):
    """The API server (an admission webhook such as Linkerd's) refused the route write of a
    ``SetWeight``: the weight asked for, and its reason."""

    def __init__(self, weight: int, refused: WriteRefused) -> None:
        super().__init__(list(refused.problems))
        self.weight = weight


@dataclass(frozen=True)
class Measurement:
    """What a measuring tick found for one Rollout: new counts, or why there are none."""

    evidence: judge.Evidence | None = None
    error: str | None = None
    early: judge.Evidence | None = None
    """Counts since the weight changed (settle included): for a fail-only look."""
    failing: bool = False
    """The tick found the step failing with ``evidence`` (``measuring.failing_windows``): its
    reconcile goes before the windows of healthy Rollouts. The reconcile judges again."""
    custom_queries: tuple[tuple[str, str], ...] = ()
    """The Rollout's custom metric queries for ``evidence``, rendered (name, PromQL), while
    the window waits for them to be asked (``Controller.run_asker``); empty once asked."""


@dataclass(frozen=True)
class Result:
    """When to reconcile this Rollout again (None: only on the next event)."""

    requeue_after: timedelta | None
    measuring: measuring.Reconciled | None = None
    """What measuring needs to know (None: the Rollout is not being measured)."""
    error: str | None = None
    """The class of the error that ended this reconcile early, if one did."""
    finished: history.Finished | None = None
    """How the release ended, when this reconcile wrote its terminal status."""
    notify_at: datetime | None = None
    """When the outbox this reconcile wrote has a notification due (None: it added none)."""
    gone: bool = False
    """The Rollout no longer exists (deleted): whatever is kept for it can go."""
    watches: str | None = None
    """The Deployment this Succeeded Rollout watches for a reverted release (its changes
    should wake it); None for any other."""


class Reconciles(Protocol):
    """What the controller calls to reconcile one Rollout: a ``Reconciler``, or a wrapper of
    one (``canary.runtime.recording``)."""

    def reconcile(self, ref: Ref, measurement: Measurement | None = None) -> Result:
        """Reconcile ``ref`` with the measurement it was woken with."""


def superseded_by(rollout: Rollout, others: list[Rollout]) -> str | None:
    """The newest other Rollout of the same target, when it is newer than ``rollout``."""
    mine = (rollout.metadata.creation_timestamp, rollout.metadata.name)
    newer = [
        other
        for other in others
        if other.metadata.name != rollout.metadata.name
        and other.spec.target_ref == rollout.spec.target_ref
        and (other.metadata.creation_timestamp, other.metadata.name) > mine
    ]
    if not newer:
        return None
    newest = max(newer, key=lambda o: (o.metadata.creation_timestamp, o.metadata.name))
    return newest.metadata.name


PROMOTING_PHASES = frozenset({"Promoting", "Succeeded", "Failed"})
"""Phases in which a Rollout may have written the stable Deployment's template."""


def newer_promotion(rollout: Rollout, others: list[Rollout]) -> bool:
    """Whether a Rollout of the same target newer than ``rollout`` has written (or may have
    written) the stable Deployment's template."""
    mine = (rollout.metadata.creation_timestamp, rollout.metadata.name)
    return any(
        other.spec.target_ref == rollout.spec.target_ref
        and other.metadata.name != rollout.metadata.name
        and (other.metadata.creation_timestamp, other.metadata.name) > mine
        and other.status.phase in PROMOTING_PHASES
        for other in others
    )


class Reconciler:
    """Wires the ports to the pure state machine."""

    def __init__(
        self,
        store: RolloutStore,
        workloads: Workloads,
        routers: Mapping[str, TrafficRouter],
        events: EventRecorder,
        clock: Clock,
        *,
        hooks: HookCaller | None = None,
    ) -> None:
        self._store = store
        self._hooks = hooks
        self._workloads = workloads
        self._routers = routers
        self._events = events
        self._clock = clock
        self._plans: dict[Ref, plan_mod.Plan] = {}
        self._rejected: dict[Ref, frozenset[str]] = {}

    def reconcile(self, ref: Ref, measurement: Measurement | None = None) -> Result:
        """Reconcile one Rollout; transient trouble comes back as a short requeue."""
        bound = log.bind(rollout=ref.name, namespace=ref.namespace)
        try:
            return self._reconcile(ref, measurement, bound)
        except TransientError as error:
            bound.warning("reconcile_retried", error=str(error))
            return Result(RETRY_TRANSIENT, error=type(error).__name__)
        except TerminalError as error:
            bound.error("reconcile_failed", error=str(error))
            return Result(RETRY_TERMINAL, error=type(error).__name__)

    def _reconcile(
        self,
        ref: Ref,
        measurement: Measurement | None,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> Result:
        rollout = self._store.get(ref)
        if rollout is None:
            self._plans.pop(ref, None)
            self._rejected.pop(ref, None)
            return Result(None, gone=True)
        self._reject_malformed_commands(ref, rollout, bound)
        now = self._clock.now()
        status = rollout.status
        if status.phase in TERMINAL_PHASES and not _may_restart(rollout):
            if status.phase == "Succeeded":
                return self._watch(rollout, bound)
            return Result(None)
        policy = None
        policy_ref = rollout.spec.policy_ref
        if policy_ref is not None:
            policy = self._store.policy(Ref(ref.namespace, policy_ref.name))
            if policy is None:
                message = f"RolloutPolicy {policy_ref.name} does not exist"
                conditions = vocabulary.set_condition(
                    status.conditions,
                    "Valid",
                    status=False,
                    reason="PolicyNotFound",
                    message=message,
                    now=now,
                )
                self._write(
                    rollout,
                    status.model_copy(update={"conditions": conditions, "message": message}),
                )
                return Result(machine.RETRY_REFERENCES)
        try:
            plan = plan_mod.build(rollout, policy)
        except InvalidSpec as error:
            return self._invalid(rollout, list(error.problems), bound)
        self._plans[ref] = plan
        try:
            decision, ready = self._decide(rollout, plan, measurement)
            weight, notify_at = self._act(rollout, plan, decision, bound)
        except RouteRefused as refused:
            return self._route_refused(rollout, plan, decision, refused, ready=ready, bound=bound)
        except ConfigError as error:
            problems = (
                list(error.problems)
                if isinstance(error, InvalidSpec)
                else [Problem("", str(error))]
            )
            return self._invalid(rollout, problems, bound)
        report = measuring.Reconciled.of(
            plan, decision.status.phase, weight, ready, measuring.Look.of(decision.status)
        )
        return Result(
            decision.requeue_after,
            report,
            finished=_finished(rollout.status, decision.status),
            notify_at=notify_at,
        )

    def _decide(
        self,
        rollout: Rollout,
        plan: plan_mod.Plan,
        measurement: Measurement | None,
        others: list[Rollout] | None = None,
    ) -> tuple[vocabulary.Decision, int]:
        ns, name = rollout.metadata.namespace, rollout.metadata.name
        world = self._workloads.observe(ns, name, plan)
        route = self._routers[plan.router].observe(ns, plan)
        if others is None:
            others = self._same_target(rollout)
        obs = vocabulary.Observation(
            target=world.target,
            apex_service=world.apex_service,
            canary=world.canary,
            services_ready=world.services_ready,
            route=route,
            evidence=measurement.evidence if measurement else None,
            metrics_error=measurement.error if measurement else None,
            early=measurement.early if measurement else None,
            commands=commands.decode(rollout.metadata.annotations),
            superseded_by=superseded_by(rollout, others),
            newer_promotion=newer_promotion(rollout, others),
            hook_answers=tuple(self._hooks.answers(Ref(ns, name))) if self._hooks else (),
        )
        decision = machine.decide(plan, rollout.status, obs, self._clock.now())
        ready = world.canary.ready_replicas if world.canary is not None else 0
        return vocabulary.with_generation(decision, rollout.metadata.generation), ready

    def _watch(self, rollout: Rollout, bound: structlog.typing.FilteringBoundLogger) -> Result:
        """A Succeeded Rollout whose release the stable Deployment should still run (no newer
        Rollout of its target has promoted one): let the machine compare, and report a revert
        (docs/gitops.md). It never rewrites a finished release's outcome: a policy that is gone
        or no longer plans leaves it as it is."""
        ns = rollout.metadata.namespace
        others = self._same_target(rollout)
        if newer_promotion(rollout, others):
            return Result(None)
        policy = None
        if rollout.spec.policy_ref is not None:
            policy = self._store.policy(Ref(ns, rollout.spec.policy_ref.name))
            if policy is None:
                return Result(None)
        try:
            plan = plan_mod.build(rollout, policy)
        except InvalidSpec:
            return Result(None)
        try:
            decision, _ = self._decide(rollout, plan, None, others)
            _, notify_at = self._act(rollout, plan, decision, bound)
        except ConfigError as error:
            bound.warning("stable_not_watched", error=str(error))
            return Result(None)
        return Result(None, notify_at=notify_at, watches=plan.target)

    def _same_target(self, rollout: Rollout) -> list[Rollout]:
        """The other Rollouts of this Rollout's target (the store's index: the few of that
        Deployment, not a scan of the namespace on every reconcile)."""
        meta = rollout.metadata
        found = self._store.list(meta.namespace, target=rollout.spec.target_ref.name)
        return [r for r in found if r.metadata.name != meta.name]

    def _act(
        self,
        rollout: Rollout,
        plan: plan_mod.Plan,
        decision: vocabulary.Decision,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> tuple[int | None, datetime | None]:
        """Apply the actions, record the events, write the status with their notifications;
        the weight set (if any) and when a notification it recorded is due (if any). A
        decision that starts a rollback is written first (``_roll_back``)."""
        if decision.status.phase == "RollingBack" and rollout.status.phase != "RollingBack":
            return self._roll_back(rollout, plan, decision, bound)
        weight = self._apply(rollout, plan, decision)
        self._record_events(rollout, decision, bound)
        status = self._outboxed(rollout, plan, decision)
        if weight is not None:
            status = _route_written(status, self._clock.now())
        if status != rollout.status:
            self._write(rollout, status)
            self._start_hooks(rollout, status, decision, bound)
            if status.phase != rollout.status.phase:
                bound.info("phase_changed", phase=status.phase, reason=decision.reason)
        return weight, _notify_at(decision.status, status)

    def _apply(
        self, rollout: Rollout, plan: plan_mod.Plan, decision: vocabulary.Decision
    ) -> int | None:
        """Apply the decision's actions in order; the weight set, if any."""
        ns, name = rollout.metadata.namespace, rollout.metadata.name
        weight = None
        for action in decision.actions:
            if isinstance(action, vocabulary.SetWeight):
                try:
                    self._routers[plan.router].set_weights(ns, plan, action.canary)
                except WriteRefused as refused:
                    # No later action may run on a weight that did not take.
                    raise RouteRefused(action.canary, refused) from refused
                weight = action.canary
            else:
                self._workloads.apply(ns, name, plan, action)
        return weight

    def _roll_back(
        self,
        rollout: Rollout,
        plan: plan_mod.Plan,
        decision: vocabulary.Decision,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> tuple[int | None, datetime | None]:
        """Start a rollback: status first, then traffic. A status write that loses a race
        (a person's command landed meanwhile) then leaves the route where the stored status
        has it, and the retry decides again from the same measurement; had the route gone to
        0% first, the retry would find the release still at its step and set the step's
        weight again. Once written, every later reconcile is RollingBack and routes to stable
        until the route says so (it retries a failed or refused route write, and reports a
        refusal). Events are recorded once the status is, so a lost race records none."""
        status = self._outboxed(rollout, plan, decision)
        self._write(rollout, status)
        self._record_events(rollout, decision, bound)
        bound.info("phase_changed", phase=status.phase, reason=decision.reason)
        weight = None
        try:
            weight = self._apply(rollout, plan, decision)
        except RouteRefused as refused:
            # Already recorded as RollingBack: the next reconcile writes 0% again and, if it
            # is refused again, says why (RouteWritable, RouteRefused Event).
            bound.warning("route_refused", weight=refused.weight, error=str(refused))
        finally:
            # The status records the calls: start them even if moving traffic failed.
            self._start_hooks(rollout, status, decision, bound)
        return weight, _notify_at(decision.status, status)

    def _start_hooks(
        self,
        rollout: Rollout,
        status: RolloutStatus,
        decision: vocabulary.Decision,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> None:
        """Start the decision's hook calls. Called only once ``status`` (which records them)
        is written, so that no call is made unrecorded; the payload describes the release as
        just written."""
        if self._hooks is None:
            return
        for call in decision.hook_calls:
            self._hooks.start(rollout.model_copy(update={"status": status}), call)
            bound.info("hook_started", hook=call.name, point=call.point)

    def _record_events(
        self,
        rollout: Rollout,
        decision: vocabulary.Decision,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> None:
        for event in decision.events:
            self._events.record(rollout, event)
            bound.info(_log_name(event.reason), message=event.message)

    def _route_refused(
        self,
        rollout: Rollout,
        plan: plan_mod.Plan,
        decision: vocabulary.Decision,
        refused: RouteRefused,
        *,
        ready: int,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> Result:
        """Hold traffic where the route has it and say why on the Rollout: a False
        ``RouteWritable`` condition with the API server's reason and a Warning Event (once per
        distinct reason). A step the decision took toward the refused weight is not recorded
        (the release stays at the step the route still serves); a rollback in progress keeps
        the decision's status (a rollback's start is written before its route write, in
        ``_roll_back``, which leaves a refusal to the next reconcile)."""
        ns = rollout.metadata.namespace
        live = decision.status.canary_weight
        reason = str(refused)[:MESSAGE_LIMIT]
        message = (
            f"the API server refused setting {plan.router} {ns}/{plan.route_name} to "
            f"{refused.weight}% canary: {reason}; traffic stays at {live}% until the route is "
            "fixed"
        )
        if decision.status.phase == "RollingBack":
            self._record_events(rollout, decision, bound)
            status = self._outboxed(rollout, plan, decision)
        else:
            status = rollout.status
        old = next((c for c in rollout.status.conditions if c.type == ROUTE_WRITABLE), None)
        conditions = vocabulary.set_condition(
            status.conditions,
            ROUTE_WRITABLE,
            status=False,
            reason="Refused",
            message=message,
            now=self._clock.now(),
        )
        status = status.model_copy(update={"conditions": conditions})
        if old is None or old.status != "False" or old.message != message:
            self._events.record(rollout, vocabulary.Event("Warning", "RouteRefused", message))
        bound.warning("route_refused", weight=refused.weight, live=live, error=reason)
        if status != rollout.status:
            self._write(rollout, status)
        report = measuring.Reconciled.of(plan, status.phase, None, ready, measuring.Look.of(status))
        return Result(RETRY_REFUSED, report, error=RouteRefused.__name__)

    def _outboxed(
        self, rollout: Rollout, plan: plan_mod.Plan | None, decision: vocabulary.Decision
    ) -> RolloutStatus:
        """The decision's status with its events' notifications in the outbox (the plan's
        notifications: the last valid plan's when the spec has just turned invalid)."""
        if plan is None or not decision.events:
            return decision.status
        meta = rollout.metadata
        return outbox.record(
            decision.status,
            decision.events,
            plan.notifications,
            uid=meta.uid or f"{meta.namespace}/{meta.name}",
            now=self._clock.now(),
            step_count=len(plan.steps),
        )

    def _invalid(
        self,
        rollout: Rollout,
        problems: list[Problem],
        bound: structlog.typing.FilteringBoundLogger,
    ) -> Result:
        ref = Ref(rollout.metadata.namespace, rollout.metadata.name)
        decision = machine.invalid(rollout.status, problems, self._clock.now())
        decision = vocabulary.with_generation(decision, rollout.metadata.generation)
        last_plan = self._plans.get(ref)
        notify_at = None
        if decision.actions and last_plan is not None:
            # Traffic was shifted under the last valid plan: send it back with that plan, in
            # order (route first); a later action failing must not keep the status unwritten.
            try:
                _, notify_at = self._act(rollout, last_plan, decision, bound)
            except CanaryError as error:
                bound.error("rollback_incomplete", error=str(error))
                status = self._outboxed(rollout, last_plan, decision)
                self._write(rollout, status)
                notify_at = _notify_at(decision.status, status)
        else:
            for event in decision.events:
                self._events.record(rollout, event)
            status = self._outboxed(rollout, last_plan, decision)
            if status != rollout.status:
                self._write(rollout, status)
                notify_at = _notify_at(decision.status, status)
        bound.warning("spec_invalid", problems=[str(p) for p in problems])
        return Result(
            None, finished=_finished(rollout.status, decision.status), notify_at=notify_at
        )

    def _reject_malformed_commands(
        self, ref: Ref, rollout: Rollout, bound: structlog.typing.FilteringBoundLogger
    ) -> None:
        """A Warning Event for each malformed command annotation, once while it stays."""
        problems = frozenset(str(p) for p in commands.ignored(rollout.metadata.annotations))
        for problem in sorted(problems - self._rejected.get(ref, frozenset())):
            self._events.record(rollout, vocabulary.Event("Warning", "CommandRejected", problem))
            bound.warning("command_rejected", problem=problem)
        self._rejected[ref] = problems

    def _write(self, rollout: Rollout, status: RolloutStatus) -> None:
        self._store.write_status(rollout, status)


def _route_written(status: RolloutStatus, now: datetime) -> RolloutStatus:
    """``status`` with ``RouteWritable`` back to True once a weight write was taken again."""
    old = next((c for c in status.conditions if c.type == ROUTE_WRITABLE), None)
    if old is None or old.status == "True":
        return status
    conditions = vocabulary.set_condition(
        status.conditions,
        ROUTE_WRITABLE,
        status=True,
        reason="Written",
        message="the API server took the route's weights again",
        now=now,
    )
    return status.model_copy(update={"conditions": conditions})


def _finished(before: RolloutStatus, after: RolloutStatus) -> history.Finished | None:
    """The release's outcome when ``after`` (written) ends it; None otherwise."""
    if before.phase in TERMINAL_PHASES or after.phase not in TERMINAL_PHASES:
        return None
    return history.outcome(after)


def _notify_at(decided: RolloutStatus, written: RolloutStatus) -> datetime | None:
    """When a notification the write added is due; None when it added none."""
    if written.outbox.sequence == decided.outbox.sequence:
        return None
    return outbox.next_due(written.outbox)


def _may_restart(rollout: Rollout) -> bool:
    """A finished Rollout is looked at again only for a retry, a fixed invalid spec, or an
    abort of a promotion that missed its deadline (the machine ignores any other)."""
    annotations = rollout.metadata.annotations
    invalid = (
        any(c.type == "Valid" and c.reason == "InvalidSpec" for c in rollout.status.conditions)
        and rollout.status.observed_generation != rollout.metadata.generation
    )
    wanted = (commands.key("retry"), commands.key("abort"))
    return invalid or any(k in wanted for k in annotations)


def _log_name(reason: str) -> str:
    """A Kubernetes Event reason as a snake_case log event: StepAdvanced → step_advanced."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in reason).lstrip("_")
