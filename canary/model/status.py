"""Status of a Rollout: everything the controller needs to resume after a crash lives here.

Written only by the controller (through the status subresource); read by the CLI and dashboard.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from canary.model.base import Wire
from canary.model.template import TemplatePatch

Phase = Literal[
    "Pending",
    "Initializing",
    "Progressing",
    "Paused",
    "WaitingApproval",
    "Promoting",
    "Succeeded",
    "RollingBack",
    "RolledBack",
    "Failed",
    "Superseded",
    "Aborted",
]
TERMINAL_PHASES: frozenset[str] = frozenset(
    {"Succeeded", "RolledBack", "Failed", "Superseded", "Aborted"}
)

StepVerdict = Literal["Running", "Passed", "Failed", "NoData", "Skipped"]
CheckVerdict = Literal["Pass", "Fail", "NoData", "Inconclusive"]


class Condition(Wire):
    """A Kubernetes-style condition (type, status, reason, message, lastTransitionTime)."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str = ""
    last_transition_time: datetime
    observed_generation: int | None = None


class ArmStats(Wire):
    """What was measured for one arm (canary or stable) during a step."""

    requests: int = Field(default=0, ge=0)
    failures: int = Field(default=0, ge=0)
    latency_buckets: list[int] = Field(
        default_factory=list, description="Requests per Linkerd latency bucket (not cumulative)."
    )
    success_rate: float | None = Field(default=None, description="Percent, for people to read.")
    latency_ms: float | None = Field(default=None, description="The configured percentile.")


class CheckResult(Wire):
    """The outcome of one check during a step, with the figure behind it."""

    name: str
    verdict: CheckVerdict
    value: float | None = None
    limit: float | None = None
    message: str = ""


class StepStatus(Wire):
    """The record of one step: its weight, its timing, what was measured and the verdict."""

    index: int = Field(ge=0)
    weight: int | None = Field(default=None, ge=0, le=100)
    started_at: datetime
    finished_at: datetime | None = None
    verdict: StepVerdict = "Running"
    canary: ArmStats = Field(default_factory=ArmStats)
    stable: ArmStats = Field(default_factory=ArmStats)
    checks: list[CheckResult] = Field(default_factory=list)
    no_data_since: datetime | None = None
    unready_since: datetime | None = Field(
        default=None,
        description="Since when no canary pod has been ready while the route sent the canary "
        "traffic (unset while one is, or while the canary gets none).",
    )
    message: str = ""
    needs: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000_000,
        description="Canary requests the step needs before it may pass.",
    )
    needed_for: Literal["minRequestsPerStep", "detect"] | None = Field(
        default=None,
        description="Why it needs them: the policy's minimum, or the power analysis.detect asks "
        "for at the last step shared with the stable.",
    )
    eta: datetime | None = Field(
        default=None,
        description="When the step is expected to have them, at the canary traffic seen so far "
        "(unset once it has them or while no rate is known).",
    )


class ApprovalRecord(Wire):
    """A person's decision at a gate, or a command they gave."""

    gate: str
    decision: Literal["Approved", "Promoted", "Aborted", "Retried", "TimedOut", "Paused", "Resumed"]
    actor: str = ""
    at: datetime
    comment: str = ""


class CommandSeen(Wire):
    """When the controller first saw a command (identified by its kind and ``at``), and which
    approval gate was already open then."""

    kind: Literal["approve", "promote", "abort", "retry", "pause", "resume"]
    at: datetime
    seen_at: datetime = Field(description="The controller's clock when it first saw it.")
    gate: str | None = Field(
        default=None,
        max_length=64,
        description="The approval gate the stored status showed open when the controller first "
        "saw the command (status is written guarded by resourceVersion, so the command was "
        "written after that gate opened); unset when none was. Only an approval seen at its "
        "own open gate passes it.",
    )


class ChatActionUsed(Wire):
    """A chat button or signed link that has acted: each acts at most once (``core.chat``)."""

    nonce: str = Field(pattern=r"^[0-9a-f]{1,64}$", description="Which posting it came from.")
    kind: Literal["approve", "promote", "abort", "retry", "pause", "resume"]
    actor: str = Field(max_length=512)
    at: datetime


class SlackMessage(Wire):
    """A Slack message (posted with the Web API) that the controller keeps up to date."""

    channel: str = Field(pattern=r"^[A-Z0-9]{1,32}$")
    ts: str = Field(pattern=r"^[0-9]{1,12}\.[0-9]{1,8}$")


class ChatStatus(Wire):
    """What chat needs to remember about a release: the buttons and links already used, and
    the Slack messages to update in place as the release moves."""

    used: list[ChatActionUsed] = Field(default_factory=list, max_length=16)
    slack: list[SlackMessage] = Field(default_factory=list, max_length=8)


HookResult = Literal["Running", "Passed", "Failed", "TimedOut", "Refused", "Lost"]
MAX_HOOK_ATTEMPTS = 20


class HookAttempt(Wire):
    """One call of a hook: when, and what it answered (``Lost``: the controller restarted
    before the call ended)."""

    hook: str = Field(max_length=63)
    type: str = Field(max_length=32)
    point: str = Field(max_length=40, description="Where the release was: e.g. confirm-step/2.")
    key: str = Field(max_length=160, description="Identifies the call (hook@point@start).")
    started_at: datetime
    finished_at: datetime | None = None
    result: HookResult = "Running"
    code: int | None = Field(default=None, ge=100, le=599, description="The HTTP status.")
    message: str = Field(default="", max_length=512)


class HookState(Wire):
    """Where the release's hooks stand: the point it is at, since when it waits there, which
    hooks passed there, and the latest calls (running ones included)."""

    point: str = Field(default="", max_length=40)
    since: datetime | None = None
    passed: list[str] = Field(default_factory=list, max_length=10)
    attempts: list[HookAttempt] = Field(default_factory=list, max_length=MAX_HOOK_ATTEMPTS)


class OutboxEvent(Wire):
    """The event a pending notification is about."""

    type: Literal["Normal", "Warning"]
    reason: str = Field(max_length=128)
    message: str = Field(default="", max_length=1024)


class OutboxEntry(Wire):
    """One notification still to deliver: an event for one receiver of the policy, with the
    rollout's state right after the event (what the message will say, however late it goes)."""

    key: str = Field(
        max_length=128,
        description="The event's idempotency key (<rollout uid>:<sequence>); every receiver of "
        "the event gets the same one.",
    )
    sequence: int = Field(ge=1)
    receiver: int = Field(ge=0, description="Which of the policy's notifications, by index.")
    type: Literal["slack", "msteams", "webhook"]
    event: OutboxEvent
    at: datetime = Field(description="When the event happened.")
    phase: Phase
    canary_weight: int = Field(ge=0, le=100)
    step_index: int = Field(ge=0)
    step_count: int = Field(ge=0)
    decisions: int | None = Field(
        default=None,
        ge=0,
        description="How many records status.approvals held right after the event: the "
        "decisions made by then are its first this many (counted, since a command's 'at' is "
        "read from the clock of whoever gave it). Absent in an entry recorded before it was "
        "kept: all of them.",
    )
    attempts: int = Field(default=0, ge=0)
    next_attempt_at: datetime
    last_error: str = Field(default="", max_length=256)


class Outbox(Wire):
    """Notifications the controller owes: recorded by the reconcile that made the event, removed
    by the delivery worker once a receiver acknowledged them (or gave up on them)."""

    sequence: int = Field(default=0, ge=0, description="Events numbered so far.")
    pending: list[OutboxEntry] = Field(default_factory=list, max_length=100)
    delivered: int = Field(default=0, ge=0, description="Notifications acknowledged.")
    dead_lettered: int = Field(
        default=0, ge=0, description="Notifications given up on after their last attempt."
    )
    last_dead_letter: str = Field(
        default="", max_length=512, description="Which was the last given up on, and why."
    )


class RolloutStatus(Wire):
    """The controller's durable record of a rollout."""

    phase: Phase = "Pending"
    phase_since: datetime | None = None
    paused_at: datetime | None = Field(
        default=None,
        description="Since when a person has held the release (canary pause); its deadlines "
        "stop meanwhile. None: not held.",
    )
    metrics_unavailable_since: datetime | None = Field(
        default=None, description="Since when the metrics could not be read (None: they can)."
    )
    current_step_index: int = Field(default=0, ge=0)
    canary_weight: int = Field(default=0, ge=0, le=100)
    stable_ready_at_start: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="Ready pods of the stable Deployment when the canary was started (it "
        "served all traffic with them): a rollback that finds fewer says so.",
    )
    canary_drained_from: datetime | None = Field(
        default=None,
        description="When the route was first seen sending the canary nothing at the end of "
        "a rollback or a promotion: the canary keeps its pods a few seconds more, for client "
        "proxies still applying the route, then is scaled to zero.",
    )
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    message: str = ""
    steps: list[StepStatus] = Field(default_factory=list)
    approvals: list[ApprovalRecord] = Field(default_factory=list)
    promoted: TemplatePatch | None = Field(
        default=None,
        description="Set when the release Succeeded: the stable pod template it promoted, as "
        "far as a release can change it (images, env, args, resources, labels, annotations). "
        "canary undo goes back to it.",
    )
    commands_seen: list[CommandSeen] = Field(
        default_factory=list,
        max_length=8,
        description="The latest command of each kind, when the controller first saw it and "
        "at which open gate: a gate passes only on an approval first seen while it was open.",
    )
    chat: ChatStatus = Field(default_factory=ChatStatus)

    hooks: HookState | None = Field(
        default=None, description="The policy's hooks: the latest calls and what they answered."
    )
    outbox: Outbox = Field(
        default_factory=Outbox,
        description="Notifications still to deliver, and how deliveries went.",
    )
