"""The release policy: service, traffic router, steps, analysis, approvals, notifications.

A ``RolloutPolicy`` holds it once per app; a ``Rollout`` may inline any of its fields to
override the referenced policy (see ``canary.model.rollout.merge_policy``). Every field is
optional here because either object may leave it to the other; ``canary.core.plan.build``
fills in the defaults, which are defined once, below.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal, get_args

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from canary.model.base import (
    DERIVED_SUFFIX_ROOM,
    DURATION_PATTERN,
    CallTimeout,
    Duration,
    Interval,
    ServiceName,
    Wire,
    format_duration,
    parse_duration,
)

# The defaults ``canary.core.plan.build`` fills in, and the judge's: the one place they are set.
DEFAULT_INTERVAL = timedelta(seconds=15)
DEFAULT_MIN_REQUESTS = 200
DEFAULT_NO_DATA_TIMEOUT = timedelta(minutes=10)
DEFAULT_STEPS = (5, 10, 20, 50, 100)
DEFAULT_LATENCY_PERCENTILE = 99.0
DEFAULT_FALSE_ROLLBACK_RATE = 0.01
DEFAULT_ERROR_RATE_TOLERANCE = 0.0
DEFAULT_LATENCY_TOLERANCE = 0.2
DEFAULT_HOLD_ABOVE = 1.0
DEFAULT_DETECT_POWER = 0.95
# Every wait's deadline and what happens when it passes (docs/operations.md says why).
DEFAULT_PROGRESS_DEADLINE = timedelta(minutes=10)
DEFAULT_PROMOTION_DEADLINE = timedelta(minutes=30)
DEFAULT_UNAVAILABLE_TIMEOUT = timedelta(minutes=10)
DEFAULT_CANARY_UNAVAILABLE = timedelta(seconds=30)
DEFAULT_APPROVAL_TIMEOUT = timedelta(hours=24)
DEFAULT_PAUSE_DEADLINE = timedelta(hours=24)

OnTimeout = Literal["Rollback", "Hold", "Continue", "Fail"]
"""The one vocabulary of what a wait does when its deadline passes. Rollback: all traffic back
to stable, the canary scaled to zero. Hold: keep waiting (the deadline is reported once).
Continue: go on as if the wait had ended well (pass the gate). Fail: stop acting, leave
traffic where it is, and say what a person should do. Each wait allows the subset that makes
sense for it; every expiry is a ``Stalled`` condition, a Warning Event and a notification."""

GateOnTimeout = Literal["Rollback", "Hold", "Continue"]
"""The ``OnTimeout`` values a gate allows (an approval gate, an approval pause, a confirm hook):
a gate's wait can roll back, keep waiting, or pass."""

MIN_DEADLINE = timedelta(seconds=1)
MAX_DEADLINE = timedelta(days=30)


def _within_deadline_bounds(value: timedelta) -> timedelta:
    if not MIN_DEADLINE <= value <= MAX_DEADLINE:
        raise ValueError(
            f"must be from {format_duration(MIN_DEADLINE)} to {format_duration(MAX_DEADLINE)}"
        )
    return value


Deadline = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(_within_deadline_bounds),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": DURATION_PATTERN,
            "maxLength": 64,
            "x-kubernetes-validations": [
                {
                    "rule": f"duration(self) >= duration('{format_duration(MIN_DEADLINE)}')",
                    "message": f"must be at least {format_duration(MIN_DEADLINE)}",
                },
                {
                    "rule": f"duration(self) <= duration('{format_duration(MAX_DEADLINE)}')",
                    "message": f"must be at most {format_duration(MAX_DEADLINE)}",
                },
            ],
        }
    ),
]
"""How long a wait may last: from 1s to 30 days (720h); on the wire a string such as ``10m``."""

Weight = Annotated[int, Field(ge=0, le=100, description="Percent of requests sent to the canary.")]

RouteApiVersion = Literal[
    "gateway.networking.k8s.io/v1",
    "gateway.networking.k8s.io/v1beta1",
    "policy.linkerd.io/v1beta3",
    "split.smi-spec.io/v1alpha2",
    "split.smi-spec.io/v1alpha1",
]
"""Every API version a route may have: the one list, newest first per router."""
ROUTE_VERSIONS: dict[str, tuple[str, ...]] = {
    router: tuple(v for v in get_args(RouteApiVersion) if v.startswith(group))
    for router, group in (
        ("HTTPRoute", ("gateway.networking.k8s.io/", "policy.linkerd.io/")),
        ("TrafficSplit", ("split.smi-spec.io/",)),
    )
}
"""The API versions each router serves, newest first (the first is the default)."""


class ServiceRef(Wire):
    """The apex Service that clients call; canary adds ``<name>-stable`` and ``<name>-canary``."""

    name: ServiceName
    port: int = Field(ge=1, le=65535, description="The Service port the route applies to.")

    @field_validator("name")
    @classmethod
    def _derived_names_fit(cls, name: str) -> str:
        if len(name) > 63 - DERIVED_SUFFIX_ROOM:
            raise ValueError(
                f"{name}-stable and {name}-canary would be longer than a Service name may be "
                f"(63 characters): use at most {63 - DERIVED_SUFFIX_ROOM}"
            )
        return name


class Traffic(Wire):
    """How traffic is split between stable and canary."""

    router: Literal["HTTPRoute", "TrafficSplit"] | None = Field(
        default=None, description="HTTPRoute (Gateway API, default) or TrafficSplit (SMI)."
    )
    api_version: RouteApiVersion | None = Field(
        default=None, description="API version of the route object; the newest by default."
    )
    route_name: ServiceName | None = Field(
        default=None, description="Name of the route object; the apex Service's name by default."
    )

    @model_validator(mode="after")
    def _version_matches_router(self) -> Traffic:
        router = self.router or "HTTPRoute"
        if self.api_version is not None and self.api_version not in ROUTE_VERSIONS[router]:
            allowed = ", ".join(ROUTE_VERSIONS[router])
            raise ValueError(
                f"apiVersion {self.api_version} does not serve {router}; use {allowed}"
            )
        return self


class Pause(Wire):
    """Hold the rollout: for a duration, or (without one) until someone approves."""

    duration: Duration | None = Field(
        default=None, description="How long to hold; without it the step waits for an approval."
    )
    timeout: Duration | None = Field(
        default=None, description="For an approval pause: how long to wait before onTimeout."
    )
    on_timeout: GateOnTimeout | None = Field(
        default=None,
        description="What an approval pause does when its timeout passes: Rollback (default "
        "when a timeout is set), Continue, or Hold (keep waiting, report it once).",
    )


class Step(Wire):
    """One step of the rollout: exactly one of setWeight or pause."""

    set_weight: Weight | None = None
    pause: Pause | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Step:
        if (self.set_weight is None) == (self.pause is None):
            raise ValueError("a step has exactly one of setWeight or pause")
        return self


class SuccessRate(Wire):
    """Absolute floor on the canary's success rate."""

    min: float = Field(
        ge=0,
        le=100,
        description=(
            "Lowest acceptable success rate, in percent. A canary is rolled back on it only when"
            " it is also worse than the stable (with compareWithStable on): a breach both share"
            " is not the release's."
        ),
    )


class Latency(Wire):
    """Absolute ceiling on a latency percentile of the canary."""

    percentile: float = Field(
        default=DEFAULT_LATENCY_PERCENTILE, gt=0, lt=100, description="Which percentile, e.g. 99."
    )
    max_ms: int = Field(
        ge=1,
        le=600_000,
        description=(
            "Highest acceptable value of that percentile, in ms. A canary is rolled back on it"
            " only when it is also slower than the stable (with compareWithStable on)."
        ),
    )


class CompareWithStable(Wire):
    """The sequential canary-versus-stable test (see docs/analysis.md).

    It may be checked at every tick without raising the false-rollback rate: the evidence against
    the canary is an e-value over the whole rollout, and the rollout fails once it reaches
    1/falseRollbackRate."""

    enabled: bool = Field(
        default=True,
        description="Compare the canary's error rate and latency with the stable's, live.",
    )
    false_rollback_rate: float | None = Field(
        default=None,
        gt=0,
        lt=0.5,
        description="Largest chance of rolling back a release that is as good as stable (within "
        "the tolerances) and meets its SLOs, per rollout, however often it is checked "
        f"(default {DEFAULT_FALSE_ROLLBACK_RATE:g}).",
    )
    error_rate_tolerance: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="How much worse the canary's error rate may be, as a ratio over stable's, "
        f"before it counts as a regression (default {DEFAULT_ERROR_RATE_TOLERANCE:g}: any "
        "sustained excess; 0.5 accepts up to "
        "1.5× stable's rate).",
    )
    latency_tolerance: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="How much slower the canary may be, as a ratio (default "
        f"{DEFAULT_LATENCY_TOLERANCE:g}: up to {DEFAULT_LATENCY_TOLERANCE:.0%} slower). "
        "Latency is compared on Linkerd's buckets, so the effective slack is the next "
        "bucket bound at least this much above.",
    )
    hold_above: float | None = Field(
        default=None,
        gt=0,
        le=1_000_000,
        description="A step that has its minimum requests still waits while any check's "
        "evidence against the canary (an e-value) is above this (default "
        f"{DEFAULT_HOLD_ABOVE:g}: the data must not "
        "favour 'worse' over 'as good'). Higher advances sooner; lower catches subtle "
        "regressions more often at the cost of slower steps.",
    )


class Detect(Wire):
    """The error regression the rollout must be able to catch before the canary takes all the
    traffic (see docs/analysis.md, "Power on request")."""

    error_ratio: float = Field(
        gt=1,
        le=1000,
        description="How many times the stable's error rate the canary's must be for it to count "
        "as the regression to detect (e.g. 2: twice as many failed requests). Must exceed "
        "1 + compareWithStable.errorRateTolerance.",
    )
    power: float | None = Field(
        default=None,
        ge=0.5,
        le=0.999,
        description="The probability of catching that regression (default "
        f"{DEFAULT_DETECT_POWER:g}). The last step that still shares traffic with the stable "
        "holds until it has served enough canary requests for it.",
    )


class NoData(Wire):
    """What to do while a step has no canary traffic to judge."""

    action: Literal["Hold"] = Field(default="Hold", description="Hold: keep the current weight.")
    timeout: Duration | None = Field(default=None, description="How long to hold; default 10m.")
    on_timeout: Literal["Rollback", "Hold"] | None = Field(
        default=None, description="What to do once the timeout passes; default Rollback."
    )


class Unavailable(Wire):
    """What to do while the metrics cannot be read (Prometheus down, a query failing). The
    step holds meanwhile: an outage is never a breach and never lets a rollout advance."""

    timeout: Deadline | None = Field(
        default=None,
        description="How long metrics may stay unreadable before onTimeout; default "
        f"{format_duration(DEFAULT_UNAVAILABLE_TIMEOUT)}.",
    )
    on_timeout: Literal["Hold", "Rollback"] | None = Field(
        default=None,
        description="Hold (default: keep holding, report it once; one Prometheus outage must "
        "not roll back every release in the cluster) or Rollback.",
    )


class ProgressDeadline(Wire):
    """How long the canary pods of a step may take to become ready."""

    timeout: Deadline | None = Field(
        default=None,
        description=f"Default {format_duration(DEFAULT_PROGRESS_DEADLINE)}, as a Deployment's.",
    )
    on_timeout: Literal["Rollback", "Hold"] | None = Field(
        default=None, description="Rollback (default) or Hold (keep waiting, report it once)."
    )
    canary_unavailable: Deadline | None = Field(
        default=None,
        description=(
            "How long the route may send the canary its share while no canary pod is ready "
            "(its pods crashed or fail readiness after the step began) before the release is "
            f"rolled back. Default {format_duration(DEFAULT_CANARY_UNAVAILABLE)}: a canary "
            "pod moved by a node drain must be ready again within it."
        ),
    )


class PromotionDeadline(Wire):
    """How long the stable Deployment may take to roll out the release during promotion."""

    timeout: Deadline | None = Field(
        default=None, description=f"Default {format_duration(DEFAULT_PROMOTION_DEADLINE)}."
    )
    on_timeout: Literal["Fail", "Hold"] | None = Field(
        default=None,
        description="Fail (default: stop with traffic where it is, both sides serving, and "
        "say what to do; the stable Deployment is never reverted) or Hold (keep waiting).",
    )


class PauseDeadline(Wire):
    """How long a person's hold (canary pause) may last; the other deadlines stop meanwhile."""

    timeout: Deadline | None = Field(
        default=None, description=f"Default {format_duration(DEFAULT_PAUSE_DEADLINE)}."
    )
    on_timeout: Literal["Hold", "Continue", "Rollback"] | None = Field(
        default=None,
        description="Hold (default: stay held, report it once so a forgotten hold surfaces), "
        "Continue (resume on its own) or Rollback.",
    )


class CustomMetric(Wire):
    """An extra PromQL check. ``{{namespace}}``, ``{{target}}``, ``{{canary}}`` and
    ``{{interval}}`` are replaced before the query runs; the result must be one number."""

    name: ServiceName
    query: str = Field(min_length=1, max_length=4096)
    min: float | None = Field(default=None, allow_inf_nan=False)
    max: float | None = Field(default=None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _has_bound(self) -> CustomMetric:
        if self.min is None and self.max is None:
            raise ValueError("a metric check needs min, max, or both")
        return self


class Analysis(Wire):
    """How each step is judged."""

    interval: Interval | None = Field(
        default=None, description="Evaluation tick, from 1s to 1h; default 15s."
    )
    min_requests_per_step: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000_000,
        description="Canary requests a step needs before it may pass. Default: "
        f"{DEFAULT_MIN_REQUESTS}, or, once the step has run 4 minutes, the step weight's share "
        "of them (10 at 5%), so a step at low traffic does not wait for hours.",
    )
    success_rate: SuccessRate | None = None
    latency: Latency | None = None
    compare_with_stable: CompareWithStable | None = None
    detect: Detect | None = None
    no_data: NoData | None = None
    unavailable: Unavailable | None = None
    metrics: list[CustomMetric] | None = Field(default=None, max_length=20)


class ApprovalGate(Wire):
    """A point where a person must approve before the rollout goes on."""

    required: bool = True
    timeout: Duration | None = Field(
        default=None, description="How long to wait; forever if unset."
    )
    on_timeout: Literal["Rollback", "Continue", "Hold", "Promote"] | None = Field(
        default=None,
        description="What happens when the timeout passes: Rollback (default when a timeout "
        "is set), Continue (promote), Hold (keep waiting, report it once); Promote is the "
        "older name of Continue.",
    )


class Approvals(Wire):
    """Approval gates around the rollout. ``timeout``/``onTimeout`` apply to every gate that
    sets none of its own (beforeStart, and approval pauses and beforePromotion without one)."""

    before_start: bool | None = Field(default=None, description="Wait for an approval to start.")
    before_promotion: ApprovalGate | None = None
    timeout: Deadline | None = Field(
        default=None,
        description="How long any gate waits before onTimeout. Unset: after "
        f"{format_duration(DEFAULT_APPROVAL_TIMEOUT)} the wait is reported (Hold) and goes on.",
    )
    on_timeout: GateOnTimeout | None = Field(
        default=None,
        description="What a gate does when its timeout passes; default Rollback when a timeout "
        "is set.",
    )


class SecretKeyRef(Wire):
    """A key in a Secret in the Rollout's namespace."""

    name: ServiceName
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")


EventReason = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z]{0,63}$")]
"""The reason of a rollout event (``StepAdvanced``, ``Promoted``…), as Kubernetes Events show it."""

URL_PATTERN = r"^https?://[^\s/?#@]+([/?#][^\s]*)?$"
"""http(s), a host without credentials, then anything but white space."""


class Notification(Wire):
    """Where to tell people about the rollout."""

    type: Literal["slack", "msteams", "webhook"]
    url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=URL_PATTERN,
        description="An http or https URL, without user:password@ (keep secrets in urlFrom).",
    )
    url_from: SecretKeyRef | None = Field(default=None, description="Read the URL from a Secret.")
    channel: str | None = Field(
        default=None,
        pattern=r"^[A-Z0-9]{1,32}$",
        description="slack only: a channel ID (C0123ABCD). With the controller's Slack bot "
        "token the message is posted there and updated in place as the release moves; a url "
        "or urlFrom, if also given, is used only when the controller has no bot token.",
    )
    events: list[EventReason] | None = Field(
        default=None,
        max_length=32,
        description="Only these event reasons (e.g. AwaitingApproval, RolledBack, Promoted); "
        "every event when unset.",
    )
    signing_secret_from: SecretKeyRef | None = Field(
        default=None,
        description="Sign each delivery with this key (HMAC-SHA256 in the X-Canary-Signature "
        "header; docs/notifications.md). Webhooks only.",
    )

    @model_validator(mode="after")
    def _signs_webhooks_only(self) -> Notification:
        if self.signing_secret_from is not None and self.type != "webhook":
            raise ValueError("signingSecretFrom applies to webhook notifications only")
        return self

    @model_validator(mode="after")
    def _has_url(self) -> Notification:
        if self.channel is not None and self.type != "slack":
            raise ValueError("channel is for slack notifications only")
        if self.url is not None and self.url_from is not None:
            raise ValueError("a notification has exactly one of url or urlFrom")
        if self.url is None and self.url_from is None and self.channel is None:
            raise ValueError(
                "a notification has exactly one of url or urlFrom (slack: or a channel)"
            )
        return self


class Undo(Wire):
    """How an undo (``canary undo``: a Rollout back to the previous release's template) runs."""

    steps: list[Step] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="The steps of an undo, instead of the policy's steps: usually fewer and "
        "bigger, since the template it goes back to already ran in production.",
    )


HookType = Literal[
    "confirm-start",
    "confirm-step",
    "confirm-promotion",
    "pre-rollout",
    "post-rollout",
    "rollback",
]
"""When a hook is called (docs/hooks.md): the three confirm gates wait for a 2xx answer;
pre-rollout must answer 2xx once or the release rolls back; post-rollout and rollback are
called once and their answers reported."""
CONFIRM_HOOKS: frozenset[str] = frozenset({"confirm-start", "confirm-step", "confirm-promotion"})

DEFAULT_CALL_TIMEOUT = timedelta(seconds=10)
DEFAULT_HOOK_INTERVAL = timedelta(seconds=10)
DEFAULT_HOOK_TIMEOUT = timedelta(hours=1)


class Hook(Wire):
    """An HTTP call the controller makes at a point of the release (a POST of the release's
    JSON). Only to Services in the Rollout's own namespace (``<service>.<namespace>.svc``) or
    hosts the operator allows."""

    name: ServiceName
    type: HookType
    url: str = Field(
        max_length=2048,
        pattern=URL_PATTERN,
        description="An http or https URL, e.g. http://checks.<namespace>.svc:8080/gate.",
    )
    call_timeout: CallTimeout | None = Field(
        default=None,
        description="How long one call may take, from 1s to 60s (default "
        f"{format_duration(DEFAULT_CALL_TIMEOUT)}); no answer in time is a failed call.",
    )
    interval: Interval | None = Field(
        default=None,
        description="confirm-*: how soon to ask again after a non-2xx answer (default "
        f"{format_duration(DEFAULT_HOOK_INTERVAL)}).",
    )
    timeout: Deadline | None = Field(
        default=None,
        description="confirm-*: how long the release waits for a 2xx answer before onTimeout "
        f"(default {format_duration(DEFAULT_HOOK_TIMEOUT)}).",
    )
    on_timeout: GateOnTimeout | None = Field(
        default=None,
        description="confirm-*: Rollback (default), Hold (keep asking, report it once) or "
        "Continue (pass the gate).",
    )
    metadata: dict[ServiceName, Annotated[str, Field(max_length=256)]] | None = Field(
        default=None, max_length=16, description="Passed as is in the call's JSON."
    )

    @model_validator(mode="after")
    def _gate_fields_on_gates(self) -> Hook:
        if self.type not in CONFIRM_HOOKS:
            given = [
                alias
                for alias, value in (
                    ("interval", self.interval),
                    ("timeout", self.timeout),
                    ("onTimeout", self.on_timeout),
                )
                if value is not None
            ]
            if given:
                raise ValueError(
                    f"{', '.join(given)}: only for confirm-* hooks; a {self.type} hook is "
                    "called once (callTimeout bounds the call)"
                )
        return self


class PolicyFields(Wire):
    """Every field a RolloutPolicy holds and a Rollout may override."""

    service: ServiceRef | None = None
    traffic: Traffic | None = None
    steps: list[Step] | None = Field(default=None, min_length=1, max_length=100)
    step_weight: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Shorthand for steps: raise the canary weight by this much each step.",
    )
    max_weight: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="With stepWeight: the last weight before promotion (default 100).",
    )
    analysis: Analysis | None = None
    approvals: Approvals | None = None
    progress_deadline: ProgressDeadline | None = None
    promotion_deadline: PromotionDeadline | None = None
    pause_deadline: PauseDeadline | None = None
    notifications: list[Notification] | None = Field(default=None, max_length=10)
    undo: Undo | None = None
    hooks: list[Hook] | None = Field(
        default=None, max_length=10, description="HTTP calls that gate or follow the release."
    )

    @model_validator(mode="after")
    def _steps_or_shorthand(self) -> PolicyFields:
        if self.steps is not None and (self.step_weight is not None or self.max_weight is not None):
            raise ValueError("use either steps or stepWeight/maxWeight, not both")
        return self


class RolloutPolicySpec(PolicyFields):
    """Spec of a RolloutPolicy."""
