"""The plan a rollout runs with: the Rollout merged over its RolloutPolicy, defaults filled in,
and the semantic checks a schema cannot express.

Called by the reconciler (each tick, from the objects it read) and by ``canary lint``.
Pure: raises ``InvalidSpec`` with field paths and hints instead of returning a half-plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from canary.core import outbound, promql
from canary.core import steps as step_plan
from canary.core.judge import Thresholds
from canary.errors import InvalidSpec, Problem
from canary.model.policy import (
    DEFAULT_APPROVAL_TIMEOUT,
    DEFAULT_CANARY_UNAVAILABLE,
    DEFAULT_ERROR_RATE_TOLERANCE,
    DEFAULT_INTERVAL,
    DEFAULT_MIN_REQUESTS,
    DEFAULT_NO_DATA_TIMEOUT,
    DEFAULT_PAUSE_DEADLINE,
    DEFAULT_PROGRESS_DEADLINE,
    DEFAULT_PROMOTION_DEADLINE,
    DEFAULT_UNAVAILABLE_TIMEOUT,
    ROUTE_VERSIONS,
    Approvals,
    CustomMetric,
    Hook,
    Notification,
    OnTimeout,
    PolicyFields,
    ServiceRef,
    Step,
)
from canary.model.rollout import Rollout, RolloutPolicy, merge_policy

Router = Literal["HTTPRoute", "TrafficSplit"]


STABLE_SUFFIX = "-stable"
CANARY_SUFFIX = "-canary"
"""What canary appends to the apex Service's name for the two arms' Services, to the target's
name for the canary Deployment, and to selector label values for the canary pods."""


@dataclass(frozen=True)
class Wait:
    """A wait's deadline and what happens when it passes (``OnTimeout``)."""

    timeout: timedelta
    on_timeout: OnTimeout


@dataclass(frozen=True)
class Plan:
    """Everything the state machine needs to know about what to do, with no optional gaps."""

    target: str
    images: dict[str, str]
    template_patch: dict[str, Any] | None
    service: ServiceRef
    router: Router
    api_version: str
    route_name: str
    steps: tuple[Step, ...]
    interval: timedelta
    thresholds: Thresholds
    no_data_timeout: timedelta
    no_data_on_timeout: Literal["Rollback", "Hold"]
    before_start: Wait | None
    """The beforeStart approval gate (None: no such gate)."""
    before_promotion: Wait | None
    notifications: tuple[Notification, ...]
    custom_metrics: tuple[CustomMetric, ...] = ()
    pause_gates: tuple[Wait | None, ...] = ()
    """Per step: the approval wait of a pause step without a duration, else None."""
    progress: Wait = Wait(DEFAULT_PROGRESS_DEADLINE, "Rollback")
    canary_unavailable: timedelta = DEFAULT_CANARY_UNAVAILABLE
    """How long the route may send the canary its share while no canary pod is ready."""
    promotion: Wait = Wait(DEFAULT_PROMOTION_DEADLINE, "Fail")
    unavailable: Wait = Wait(DEFAULT_UNAVAILABLE_TIMEOUT, "Hold")
    held: Wait = Wait(DEFAULT_PAUSE_DEADLINE, "Hold")
    """A person's hold (``canary pause``)."""
    hooks: tuple[Hook, ...] = ()

    @property
    def stable_service(self) -> str:
        """Name of the Service that selects only stable pods."""
        return f"{self.service.name}{STABLE_SUFFIX}"

    @property
    def canary_service(self) -> str:
        """Name of the Service that selects only canary pods."""
        return f"{self.service.name}{CANARY_SUFFIX}"

    @property
    def canary_deployment(self) -> str:
        """Name of the Deployment that runs the release beside the stable one."""
        return f"{self.target}{CANARY_SUFFIX}"


def _check_steps(steps: tuple[Step, ...], path: str) -> list[Problem]:
    problems: list[Problem] = []
    highest = 0
    for i, step in enumerate(steps):
        weight = step.set_weight
        if weight is None:
            continue
        if weight < highest:
            problems.append(
                Problem(
                    f"{path}[{i}].setWeight",
                    f"{weight} is lower than the {highest} of an earlier step",
                    "weights only go up; end the release with a rollback instead",
                )
            )
        if weight == 0:
            problems.append(
                Problem(
                    f"{path}[{i}].setWeight",
                    "a step at weight 0 sends the canary no traffic to judge",
                    "start at 1 or more",
                )
            )
        highest = max(highest, weight)
    if highest == 0:
        problems.append(
            Problem(path, "no step sends traffic to the canary", "add a setWeight step")
        )
    return problems


def _check_queries(rollout: Rollout, fields: PolicyFields) -> list[Problem]:
    """Each custom query must render and be confinable to the Rollout's namespace."""
    metrics = (fields.analysis.metrics if fields.analysis else None) or []
    interval = (fields.analysis.interval if fields.analysis else None) or DEFAULT_INTERVAL
    target = rollout.spec.target_ref.name
    problems: list[Problem] = []
    for index, metric in enumerate(metrics):
        try:
            promql.render(
                metric.query,
                namespace=rollout.metadata.namespace,
                target=target,
                canary=f"{target}-canary",
                interval=interval,
            )
        except InvalidSpec as error:
            path = f"spec.analysis.metrics[{index}].query"
            problems.extend(Problem(path, p.message, p.hint) for p in error.problems)
    return problems


def _check_hooks(hooks: list[Hook]) -> list[Problem]:
    """Hook names are unique, and every URL is one canary calls at all."""
    problems: list[Problem] = []
    names = [h.name for h in hooks]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(Problem("spec.hooks", f"hook {name!r} is defined twice", "rename one"))
    for index, hook in enumerate(hooks):
        try:
            outbound.destination(hook.url)
        except outbound.Refused as refused:
            problems.append(Problem(f"spec.hooks[{index}].url", str(refused)))
    return problems


_GATE_ACTIONS: dict[str, OnTimeout] = {
    "Rollback": "Rollback",
    "Hold": "Hold",
    "Continue": "Continue",
    "Promote": "Continue",
}


def approval_wait(
    approvals: Approvals | None, timeout: timedelta | None, on_timeout: str | None
) -> Wait:
    """An approval gate's wait: its own timeout/onTimeout, else the approvals' defaults. A
    timeout someone set rolls back by default (as it always has); with none set, the gate is
    reported after a day and goes on waiting."""
    timeout = timeout or (approvals.timeout if approvals else None)
    chosen = on_timeout or (approvals.on_timeout if approvals else None)
    action = _GATE_ACTIONS.get(chosen or "", "Hold" if timeout is None else "Rollback")
    return Wait(timeout or DEFAULT_APPROVAL_TIMEOUT, action)


def _check_detect(fields: PolicyFields, steps: tuple[Step, ...]) -> list[Problem]:
    """``analysis.detect`` needs the error comparison, a step shared with the stable, and a
    regression larger than the tolerated one."""
    analysis = fields.analysis
    detect = analysis.detect if analysis else None
    if detect is None or analysis is None:
        return []
    path = "spec.analysis.detect"
    compare = analysis.compare_with_stable
    if compare is not None and not compare.enabled:
        return [
            Problem(
                path,
                "detect needs the comparison with stable, which is disabled",
                "remove analysis.detect or enable analysis.compareWithStable",
            )
        ]
    tolerance = (
        compare.error_rate_tolerance
        if compare is not None and compare.error_rate_tolerance is not None
        else DEFAULT_ERROR_RATE_TOLERANCE
    )
    problems: list[Problem] = []
    if detect.error_ratio <= 1.0 + tolerance:
        problems.append(
            Problem(
                f"{path}.errorRatio",
                f"{detect.error_ratio:g} is within the tolerated error rate "
                f"(1 + errorRateTolerance = {1.0 + tolerance:g}): it can never be detected",
                f"ask for more than {1.0 + tolerance:g}, or lower errorRateTolerance",
            )
        )
    if not any(s.set_weight is not None and 0 < s.set_weight < 100 for s in steps):
        problems.append(
            Problem(
                path,
                "no step shares traffic with the stable (a weight between 0 and 100)",
                "add a step such as setWeight: 50 before 100",
            )
        )
    return problems


def thresholds(fields: PolicyFields) -> Thresholds:
    """The judge's settings from a policy's analysis section, defaults filled in."""
    analysis = fields.analysis
    success = analysis.success_rate if analysis else None
    latency = analysis.latency if analysis else None
    compare = analysis.compare_with_stable if analysis else None
    metrics = (analysis.metrics if analysis else None) or []
    minimum = analysis.min_requests_per_step if analysis else None
    detect = analysis.detect if analysis else None
    base = Thresholds(min_requests=DEFAULT_MIN_REQUESTS)
    return Thresholds(
        min_requests=DEFAULT_MIN_REQUESTS if minimum is None else minimum,
        min_requests_scaled=minimum is None,
        detect_error_ratio=detect.error_ratio if detect else None,
        detect_power=(detect.power if detect and detect.power is not None else base.detect_power),
        success_rate_min=success.min if success else None,
        latency_percentile=latency.percentile if latency else base.latency_percentile,
        latency_max_ms=latency.max_ms if latency else None,
        custom={m.name: (m.min, m.max) for m in metrics},
        compare_with_stable=compare.enabled if compare else True,
        false_rollback_rate=(
            compare.false_rollback_rate
            if compare and compare.false_rollback_rate is not None
            else base.false_rollback_rate
        ),
        error_rate_tolerance=(
            compare.error_rate_tolerance
            if compare and compare.error_rate_tolerance is not None
            else base.error_rate_tolerance
        ),
        latency_tolerance=(
            compare.latency_tolerance
            if compare and compare.latency_tolerance is not None
            else base.latency_tolerance
        ),
        hold_above=(
            compare.hold_above if compare and compare.hold_above is not None else base.hold_above
        ),
    )


def build(rollout: Rollout, policy: RolloutPolicy | None) -> Plan:
    """Merge ``rollout`` over ``policy`` and check what a schema cannot. The caller has already
    resolved ``spec.policyRef`` (``policy`` is None when there is none)."""
    spec = rollout.spec
    fields = merge_policy(spec, policy.spec if policy is not None else None)
    undo_steps = fields.undo.steps if fields.undo is not None else None
    if spec.release.undo_of is not None and undo_steps is not None:
        # An undo goes back to a template that already ran: the policy's undo.steps apply.
        fields = fields.model_copy(
            update={"steps": list(undo_steps), "step_weight": None, "max_weight": None}
        )
    problems: list[Problem] = []
    if fields.service is None:
        problems.append(
            Problem(
                "spec.service",
                "no apex Service: neither the Rollout nor its policy names one",
                "set service: {name: <Service>, port: <port>} here or in the RolloutPolicy",
            )
        )
    steps = step_plan.expand(fields)
    steps_path = "spec.steps" if fields.steps is not None else "spec.stepWeight"
    if spec.release.undo_of is not None and undo_steps is not None:
        steps_path = "spec.undo.steps"
    problems.extend(_check_steps(steps, steps_path))
    metric_names = [m.name for m in (fields.analysis.metrics or [])] if fields.analysis else []
    for name in sorted({n for n in metric_names if metric_names.count(n) > 1}):
        problems.append(
            Problem("spec.analysis.metrics", f"metric {name!r} is defined twice", "rename one")
        )
    problems.extend(_check_queries(rollout, fields))
    problems.extend(_check_detect(fields, steps))
    problems.extend(_check_hooks(fields.hooks or []))
    if problems or fields.service is None:
        raise InvalidSpec(problems)
    traffic = fields.traffic
    router: Router = traffic.router if traffic and traffic.router else "HTTPRoute"
    analysis = fields.analysis
    no_data = analysis.no_data if analysis else None
    unavailable = analysis.unavailable if analysis else None
    approvals = fields.approvals
    gate = approvals.before_promotion if approvals else None
    progress, promotion = fields.progress_deadline, fields.promotion_deadline
    held = fields.pause_deadline
    return Plan(
        target=spec.target_ref.name,
        images=dict(spec.release.images or {}),
        template_patch=(
            spec.release.template_patch.patch() if spec.release.template_patch else None
        ),
        service=fields.service,
        router=router,
        api_version=(traffic.api_version if traffic else None) or ROUTE_VERSIONS[router][0],
        route_name=(traffic.route_name if traffic else None) or fields.service.name,
        steps=steps,
        interval=(analysis.interval if analysis else None) or DEFAULT_INTERVAL,
        thresholds=thresholds(fields),
        no_data_timeout=(no_data.timeout if no_data else None) or DEFAULT_NO_DATA_TIMEOUT,
        no_data_on_timeout=(no_data.on_timeout if no_data else None) or "Rollback",
        before_start=(
            approval_wait(approvals, None, None) if approvals and approvals.before_start else None
        ),
        before_promotion=(
            approval_wait(approvals, gate.timeout, gate.on_timeout)
            if gate is not None and gate.required
            else None
        ),
        notifications=tuple(fields.notifications or ()),
        custom_metrics=tuple((analysis.metrics if analysis else None) or ()),
        pause_gates=tuple(
            approval_wait(approvals, s.pause.timeout, s.pause.on_timeout)
            if s.pause is not None and s.pause.duration is None
            else None
            for s in steps
        ),
        progress=Wait(
            (progress.timeout if progress else None) or DEFAULT_PROGRESS_DEADLINE,
            (progress.on_timeout if progress else None) or "Rollback",
        ),
        canary_unavailable=(
            (progress.canary_unavailable if progress else None) or DEFAULT_CANARY_UNAVAILABLE
        ),
        promotion=Wait(
            (promotion.timeout if promotion else None) or DEFAULT_PROMOTION_DEADLINE,
            (promotion.on_timeout if promotion else None) or "Fail",
        ),
        unavailable=Wait(
            (unavailable.timeout if unavailable else None) or DEFAULT_UNAVAILABLE_TIMEOUT,
            (unavailable.on_timeout if unavailable else None) or "Hold",
        ),
        held=Wait(
            (held.timeout if held else None) or DEFAULT_PAUSE_DEADLINE,
            (held.on_timeout if held else None) or "Hold",
        ),
        hooks=tuple(fields.hooks or ()),
    )
