"""The core's vocabulary: what the shell observed, what the machine decides, and the Events
and commands that pass between them.

Imported by everything that speaks to or for the state machine: the reconciler builds an
``Observation`` and applies a ``Decision``'s actions; ports and adapters take ``RouteState``,
``Event`` and the actions; the CLI, the HTTP API, chat and ``core.commands`` deal in ``Command``.
Only ``canary.core.machine`` decides. Pure data and pure helpers: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from canary.core import judge
from canary.model.status import Condition, RolloutStatus
from canary.model.template import TemplatePatch

CommandKind = Literal["approve", "promote", "abort", "retry", "pause", "resume"]


# --- what the shell observed -------------------------------------------------------------


@dataclass(frozen=True)
class Autoscaler:
    """The replica bounds of a HorizontalPodAutoscaler (autoscaling/v2)."""

    min_replicas: int
    max_replicas: int


@dataclass(frozen=True)
class TargetState:
    """The stable Deployment."""

    replicas: int
    """``spec.replicas``: what it is asked to run (with an autoscaler, the autoscaler's number)."""
    ready: bool
    """Rolled out: its newest generation is observed and every replica is updated and ready."""
    has_release: bool
    """Its pod template already is this release's template (promotion has been applied)."""
    template: TemplatePatch | None = None
    """Its pod template as far as a release can change it (``canary.core.undo.record``)."""
    current_replicas: int | None = None
    """``status.replicas``: the pods it runs now (None: not reported yet)."""
    ready_replicas: int = 0
    """``status.readyReplicas``: the pods that can take traffic now."""
    autoscaler: Autoscaler | None = None
    """The user's HorizontalPodAutoscaler whose scale target it is (None: it has none)."""


@dataclass(frozen=True)
class CanaryState:
    """The canary Deployment."""

    replicas: int
    ready_replicas: int
    current: bool
    """It runs this release's template (not an older Rollout's)."""
    settled: bool = True
    """The Deployment controller has seen the canary Deployment's latest spec. Until it has (a
    moment after canary scales it or changes its template), ``ready_replicas`` is 0 because
    which pods are ready is unknown, not because pods went away."""


@dataclass(frozen=True)
class RouteState:
    """The live route (the router is the truth for actual weights)."""

    canary_weight: int
    accepted: bool
    """The mesh accepted the route, so the weights are in effect."""
    rejection_reason: str = ""
    """Why the mesh refuses the route (its condition reason, e.g. ``NoMatchingParent``)."""
    rejection_message: str = ""
    """What the mesh said, and how to fix it."""


@dataclass(frozen=True)
class Command:
    """A person's command, given through an annotation by the CLI, chat or the HTTP API."""

    kind: CommandKind
    at: datetime
    actor: str = ""
    comment: str = ""


@dataclass(frozen=True)
class HookAnswer:
    """How one hook call ended (``key`` names the call, as ``CallHook.key``)."""

    key: str
    result: Literal["Passed", "Failed", "TimedOut", "Refused"]
    code: int | None
    message: str
    at: datetime


@dataclass(frozen=True)
class Observation:
    """What the reconciler read this time. ``evidence`` is the tick's new counts (None when
    this reconcile did not measure); ``metrics_error`` says why measuring failed; ``early``
    the counts since the weight changed, settle included (for a fail-only look)."""

    target: TargetState | None
    apex_service: bool
    canary: CanaryState | None = None
    services_ready: bool = False
    route: RouteState | None = None
    evidence: judge.Evidence | None = None
    metrics_error: str | None = None
    early: judge.Evidence | None = None
    commands: tuple[Command, ...] = ()
    superseded_by: str | None = None
    newer_promotion: bool = False
    """A newer Rollout of the same target has promoted (or is promoting, or failed promoting)
    its release: the stable Deployment's template is no longer this Rollout's to watch."""
    hook_answers: tuple[HookAnswer, ...] = ()
    """Hook calls that ended since they were started (the shell keeps them until they are
    recorded; an answer already recorded is ignored)."""


# --- what to do ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EnsureServices:
    """Create or correct the ``-stable`` and ``-canary`` Services."""


@dataclass(frozen=True)
class EnsureCanary:
    """Create or update the canary Deployment (stable template + release) at this size.

    With ``autoscaler`` the canary gets its own HorizontalPodAutoscaler with these bounds (the
    stable's metrics and behavior), and ``replicas`` is only a floor: the canary is created
    with it and raised to it, never lowered, so the controller never undoes the autoscaler.
    Without it, a canary HorizontalPodAutoscaler left from earlier is removed."""

    replicas: int
    autoscaler: Autoscaler | None = None


@dataclass(frozen=True)
class SetWeight:
    """Route ``canary`` percent to the canary and the rest to stable (create the route)."""

    canary: int


@dataclass(frozen=True)
class PromoteStable:
    """Give the stable Deployment the release's pod template."""


@dataclass(frozen=True)
class ScaleCanaryToZero:
    """Scale the canary Deployment to zero replicas, if it exists."""


Action = EnsureServices | EnsureCanary | SetWeight | PromoteStable | ScaleCanaryToZero


@dataclass(frozen=True)
class CallHook:
    """Start one hook call (POST the release's JSON to ``url``) off the reconcile path; its
    answer comes back in a later ``Observation.hook_answers``."""

    key: str
    name: str
    type: str
    point: str
    url: str
    timeout: timedelta
    metadata: tuple[tuple[str, str], ...] = ()
    step_count: int = 0
    """How many steps the release has (the payload says "step i of n")."""


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to record on the Rollout."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    """The outcome of one tick: actions to apply in order, then the status to write."""

    actions: tuple[Action, ...]
    status: RolloutStatus
    reason: str
    requeue_after: timedelta | None
    events: tuple[Event, ...] = ()
    hook_calls: tuple[CallHook, ...] = ()


def set_condition(
    conditions: list[Condition],
    type_: str,
    *,
    status: bool | None,
    reason: str,
    message: str,
    now: datetime,
) -> list[Condition]:
    """Conditions with ``type_`` set; its lastTransitionTime moves only when its status does."""
    value: Literal["True", "False", "Unknown"] = (
        "Unknown" if status is None else ("True" if status else "False")
    )
    old = next((c for c in conditions if c.type == type_), None)
    since = old.last_transition_time if old is not None and old.status == value else now
    new = Condition(
        type=type_, status=value, reason=reason, message=message, last_transition_time=since
    )
    return [new if c.type == type_ else c for c in conditions] if old else [*conditions, new]


def with_generation(decision: Decision, generation: int | None) -> Decision:
    """The decision with ``observedGeneration`` stamped into its status."""
    return replace(
        decision, status=decision.status.model_copy(update={"observed_generation": generation})
    )
