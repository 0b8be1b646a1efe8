"""The small Protocols through which the runtime talks to the world.

Adapters implement them (``canary.adapters.*``); ``canary.cli`` wires adapters into the runtime;
tests use fakes that implement the same Protocols, kept honest by contract tests that run
against both the fake and the real adapter. Each port has at most four methods. No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from canary.core import evidence, outbox
from canary.core.access import Permission
from canary.core.plan import Plan
from canary.core.vocabulary import (
    Action,
    CallHook,
    CanaryState,
    Event,
    HookAnswer,
    RouteState,
    TargetState,
)
from canary.model.rollout import Rollout, RolloutPolicy
from canary.model.status import OutboxEntry, RolloutStatus


@dataclass(frozen=True, order=True)
class Ref:
    """A namespaced object name."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class RolloutStore(Protocol):
    """Rollouts and their policies in the cluster."""

    def get(self, ref: Ref) -> Rollout | None:
        """The Rollout, or None when it does not exist."""

    def list(self, namespace: str | None = None, target: str | None = None) -> Sequence[Rollout]:
        """Every Rollout (in one namespace, or in all), sorted by namespace and name; with
        ``target``, only those whose targetRef names that Deployment."""

    def policy(self, ref: Ref) -> RolloutPolicy | None:
        """The RolloutPolicy, or None when it does not exist."""

    def write_status(self, rollout: Rollout, status: RolloutStatus) -> None:
        """Replace the status, guarded by the Rollout's resourceVersion (raises Conflict).
        A Rollout without its ``canary.dev/target`` label gets it with the write."""


@dataclass(frozen=True)
class WorkloadState:
    """The workloads of one rollout as they are now."""

    target: TargetState | None
    apex_service: bool
    canary: CanaryState | None
    services_ready: bool


class Workloads(Protocol):
    """The stable and canary Deployments and the -stable/-canary Services."""

    def observe(self, namespace: str, rollout: str, plan: Plan) -> WorkloadState:
        """Read the target, the canary and the Services of ``plan``."""

    def apply(self, namespace: str, rollout: str, plan: Plan, action: Action) -> None:
        """Carry out one workload action (EnsureServices, EnsureCanary, PromoteStable,
        ScaleCanaryToZero); idempotent. Raises InvalidSpec when the release cannot apply."""


class TrafficRouter(Protocol):
    """The object that splits traffic between stable and canary (HTTPRoute, TrafficSplit)."""

    def observe(self, namespace: str, plan: Plan) -> RouteState | None:
        """The live weights, or None when the route does not exist yet."""

    def set_weights(self, namespace: str, plan: Plan, canary: int) -> None:
        """Route ``canary`` percent to the canary, the rest to stable; create the route if
        absent, otherwise change only the weights of canary's backends."""


@dataclass(frozen=True)
class Arms:
    """Which Linkerd ``deployment`` label values are the two arms of a rollout."""

    namespace: str
    stable: str
    canary: str


class MetricProvider(Protocol):
    """Prometheus, read the way the Linkerd proxies report."""

    def snapshot(
        self, targets: Sequence[Arms], buckets: Collection[Arms] | None = None
    ) -> evidence.Snapshot:
        """Cumulative inbound counters of every pod of both arms of every rollout in
        ``targets``, from ONE query (``evidence.advance`` turns two snapshots into per-tick
        deltas); latency buckets only for the rollouts in ``buckets`` (None: all of them),
        the other pods' ``buckets`` empty. Raises MetricsUnavailable when Prometheus cannot
        answer, InvalidSpec for a name that is not a Kubernetes name."""

    def value(self, query: str) -> float | None:
        """The single number a custom PromQL query returns, None when it returns nothing."""


class EventRecorder(Protocol):
    """Kubernetes Events on a Rollout (chat and webhooks hear of them through the outbox)."""

    def record(self, rollout: Rollout, event: Event) -> None:
        """Record ``event`` about ``rollout``; never raises."""


class HookCaller(Protocol):
    """The policy's hooks, called off the reconcile path (``canary.adapters.hooks``)."""

    def start(self, rollout: Rollout, call: CallHook) -> None:
        """Begin ``call`` in the background (nothing if it is running or done); never raises
        and never waits for the answer."""

    def answers(self, ref: Ref) -> Sequence[HookAnswer]:
        """The answers of the Rollout's calls that have ended (kept, bounded, until newer ones
        push them out: the machine ignores those it has recorded)."""


class Courier(Protocol):
    """Delivers the notifications of a Rollout's outbox to their receivers (chat, webhooks)."""

    def deliver(self, rollout: Rollout, entry: OutboxEntry) -> outbox.Attempt:
        """Send ``entry`` to its receiver (the ``entry.receiver``-th notification of the
        Rollout's policy) within a bounded time; the outcome, never an exception."""


class Clock(Protocol):
    """The current time (UTC)."""

    def now(self) -> datetime:
        """Now, timezone-aware."""


@dataclass(frozen=True)
class Change:
    """Something changed in the cluster: a Rollout, a Deployment (maybe a target), or a route
    (kind :data:`ROUTE`: an HTTPRoute or TrafficSplit a Rollout may steer)."""

    kind: str
    namespace: str
    name: str
    labels: Mapping[str, str] | None = None


ROUTE = "Route"
"""The ``Change.kind`` of any route kind."""


class ChangeFeed(Protocol):
    """Watches the cluster and reports changes as they happen."""

    def run(self, on_change: Callable[[Change], None], stop: StopSignal) -> None:
        """Report changes until ``stop`` is set; reconnects by itself. Blocks."""


class StopSignal(Protocol):
    """A flag another thread sets to ask a loop to stop (``threading.Event`` fits)."""

    def is_set(self) -> bool:
        """Whether the loop should stop."""

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep until set or ``timeout`` seconds passed; True when set."""


class LeaseLock(Protocol):
    """A coordination.k8s.io Lease that at most one controller replica holds."""

    def try_acquire(self, identity: str, ttl: timedelta) -> bool:
        """Take or renew the lease for ``identity``; False while another holder's is valid."""

    def release(self, identity: str) -> None:
        """Give the lease up if ``identity`` holds it (on a clean shutdown)."""


class RolloutJanitor(Protocol):
    """How retention keeps the history tidy (``canary.runtime.retention``): it labels Rollouts
    with their target and removes old finished ones."""

    def label(self, ref: Ref, key: str, value: str) -> None:
        """Set one label on the Rollout, leaving the others as they are."""

    def delete(self, rollout: Rollout) -> None:
        """Delete ``rollout`` if it is unchanged since it was read (raises Conflict when it
        changed); nothing when it is already gone."""


class Annotator(Protocol):
    """Where people's commands are written: annotations on a Rollout (``canary.core.commands``
    encodes them). Implemented by ``KubeRolloutStore``; used by the CLI and the HTTP API."""

    def annotate(self, ref: Ref, key: str, value: str) -> None:
        """Set one annotation on the Rollout, leaving the others as they are."""


@dataclass(frozen=True)
class Identity:
    """A caller as the cluster's authenticator knows them (from a TokenReview)."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] | None = None


class AccessReview(Protocol):
    """The cluster's own authentication and authorization, asked about API callers."""

    def authenticate(self, token: str) -> Identity | None:
        """Who holds this bearer token (a TokenReview); None when the token is not valid."""

    def allowed(self, who: Identity, permission: Permission, namespace: str | None) -> bool:
        """Whether RBAC grants ``permission`` to ``who`` in ``namespace`` (None: in every
        namespace), by a SubjectAccessReview."""
