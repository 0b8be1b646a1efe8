"""A tiny, deterministic stand-in for the cluster that the state machine's actions act on.

It applies ``machine`` actions the way the real adapters do (absolute, idempotent) and produces
the ``Observation`` the reconciler would read, with traffic evidence from the live weight.
Used only by the unit tests of the pure core; the real adapters are tested against a real API
server in tests/integration.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from canary.core import judge, machine, vocabulary
from canary.core import plan as plan_mod
from canary.model.rollout import Rollout
from canary.model.status import RolloutStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BUCKETS = 26


def make_rollout(**spec: object) -> Rollout:
    """A valid Rollout for Deployment podinfo with any spec fields overridden."""
    base: dict[str, object] = {
        "targetRef": {"name": "podinfo"},
        "release": {"images": {"podinfo": "podinfo:6.1.0"}},
        "service": {"name": "podinfo", "port": 9898},
        "steps": [{"setWeight": 10}, {"setWeight": 50}],
        "analysis": {"minRequestsPerStep": 50, "successRate": {"min": 99}},
    }
    base.update(spec)
    return Rollout.model_validate(
        {"metadata": {"name": "podinfo-2", "namespace": "t"}, "spec": base}
    )


def make_plan(**spec: object) -> plan_mod.Plan:
    """The plan of ``make_rollout(**spec)`` with no policy."""
    return plan_mod.build(make_rollout(**spec), None)


@dataclass
class FakeCluster:
    """World state: stable Deployment, canary Deployment, Services, route, traffic."""

    stable_replicas: int = 4
    stable_template: str = "v1"
    stable_ready: bool = True
    canary_exists: bool = False
    canary_replicas: int = 0
    canary_ready: int = 0
    canary_template: str = ""
    services: bool = False
    route_exists: bool = False
    weight: int = 0
    accepted: bool = True
    target_exists: bool = True
    rps: int = 100
    canary_error_rate: float = 0.0
    stable_error_rate: float = 0.0
    pods_become_ready: bool = True
    stable_rolls_out: bool = True
    metrics_error: str | None = None
    """While set, every measuring tick fails with it (Prometheus down)."""
    autoscaler: vocabulary.Autoscaler | None = None
    """The stable Deployment's HorizontalPodAutoscaler bounds (None: it has none)."""
    stable_ready_pods: int | None = None
    """Ready stable pods (None: all of ``stable_replicas``)."""
    canary_autoscaler: vocabulary.Autoscaler | None = None
    """The canary's own autoscaler, as the adapter keeps it."""

    def apply(self, action: vocabulary.Action) -> None:
        """Apply one action as the adapters would."""
        match action:
            case vocabulary.SetWeight(canary=w):
                self.route_exists = True
                self.weight = w
            case vocabulary.EnsureServices():
                self.services = True
            case vocabulary.EnsureCanary(replicas=r, autoscaler=a):
                if a is not None and self.canary_template == "v2":
                    r = max(r, self.canary_replicas)  # a floor: the autoscaler owns the rest
                self.canary_exists = True
                self.canary_replicas = r
                self.canary_autoscaler = a
                self.canary_template = "v2"
                self.canary_ready = min(self.canary_ready, r)
            case vocabulary.ScaleCanaryToZero():
                self.canary_autoscaler = None
                self.canary_replicas = 0
                self.canary_ready = 0
            case vocabulary.PromoteStable():
                self.stable_template = "v2"
                self.stable_ready = False

    def settle(self) -> None:
        """Time passes: pods start."""
        if self.pods_become_ready:
            self.canary_ready = self.canary_replicas if self.canary_exists else 0
        self.stable_ready = self.stable_ready or self.stable_rolls_out

    def evidence(self, seconds: float) -> judge.Evidence:
        """Traffic served since the last tick at the live weight, failures at the set rates."""
        total = int(self.rps * seconds)
        canary = total * self.weight // 100 if self.route_exists else 0
        stable = total - canary
        c_fail = round(canary * self.canary_error_rate)
        s_fail = round(stable * self.stable_error_rate)
        buckets = (0,) * 6 + (1,) + (0,) * (BUCKETS - 7)
        return judge.Evidence(
            canary=judge.Arm(canary, c_fail, tuple(canary * b for b in buckets)),
            stable=judge.Arm(stable, s_fail, tuple(stable * b for b in buckets)),
        )

    def observe(
        self,
        seconds: float = 15.0,
        commands: tuple[vocabulary.Command, ...] = (),
        measured: bool = True,
        metrics_error: str | None = None,
    ) -> vocabulary.Observation:
        """What the reconciler would read now."""
        metrics_error = metrics_error or self.metrics_error
        return vocabulary.Observation(
            target=(
                vocabulary.TargetState(
                    replicas=self.stable_replicas,
                    ready=self.stable_ready,
                    has_release=self.stable_template == "v2",
                    current_replicas=self.stable_replicas,
                    ready_replicas=(
                        self.stable_replicas
                        if self.stable_ready_pods is None
                        else self.stable_ready_pods
                    ),
                    autoscaler=self.autoscaler,
                )
                if self.target_exists
                else None
            ),
            apex_service=True,
            canary=(
                vocabulary.CanaryState(
                    replicas=self.canary_replicas,
                    ready_replicas=self.canary_ready,
                    current=self.canary_template == "v2",
                )
                if self.canary_exists
                else None
            ),
            services_ready=self.services,
            route=vocabulary.RouteState(self.weight, self.accepted) if self.route_exists else None,
            evidence=self.evidence(seconds) if measured and metrics_error is None else None,
            metrics_error=metrics_error,
            commands=commands,
        )


def run(
    plan: plan_mod.Plan,
    cluster: FakeCluster,
    *,
    status: RolloutStatus | None = None,
    now: datetime = T0,
    max_ticks: int = 200,
    commands: tuple[vocabulary.Command, ...] = (),
    stop_at_gates: bool = True,
) -> tuple[RolloutStatus, datetime, list[vocabulary.Decision]]:
    """Reconcile until a terminal phase (or ``max_ticks``); with ``stop_at_gates`` also at an
    approval gate when no command is given."""
    status = status or RolloutStatus()
    decisions: list[vocabulary.Decision] = []
    for _ in range(max_ticks):
        decision = machine.decide(plan, status, cluster.observe(commands=commands), now)
        decisions.append(decision)
        for action in decision.actions:
            cluster.apply(action)
        status = decision.status
        if status.phase in ("Succeeded", "RolledBack", "Aborted", "Failed", "Superseded"):
            break
        if status.phase == "WaitingApproval" and stop_at_gates and not commands:
            break
        cluster.settle()
        now += decision.requeue_after or timedelta(seconds=15)
    return status, now, decisions
