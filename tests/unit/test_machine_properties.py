"""Properties of the state machine over random worlds, commands and crashes (hypothesis)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from canary.adapters.routers.httproute import HTTPRouteRouter
from canary.core import machine, vocabulary
from canary.core.plan import Plan
from canary.model.status import RolloutStatus
from tests.fakes import InMemoryObjects
from tests.unit.fake_cluster import T0, FakeCluster, make_plan

STEPS = (
    st.lists(
        st.one_of(
            st.integers(min_value=1, max_value=100).map(lambda w: {"setWeight": w}),
            st.sampled_from([{"pause": {"duration": "1m"}}, {"pause": {"timeout": "2m"}}]),
        ),
        min_size=1,
        max_size=5,
    )
    .map(
        lambda steps: [
            {"setWeight": w} if "setWeight" in s else s
            for s, w in zip(steps, _rising(steps), strict=True)
        ]
    )
    .filter(lambda steps: any("setWeight" in s for s in steps))
)


def _rising(steps: Sequence[Mapping[str, object]]) -> list[int]:
    top, out = 1, []
    for s in steps:
        w = s.get("setWeight")
        top = max(top, w) if isinstance(w, int) else top
        out.append(top)
    return out


TICK = st.fixed_dictionaries(
    {
        "error_rate": st.sampled_from([0.0, 0.0, 0.0, 0.5]),
        "rps": st.sampled_from([0, 100, 100, 1000]),
        "measured": st.booleans(),
        "blind": st.sampled_from([False, False, False, True]),
        "ready": st.sampled_from([True, True, True, False]),
        "accepted": st.sampled_from([True, True, False]),
        "command": st.sampled_from([None] * 12 + ["approve", "promote", "abort", "retry"]),
        "crash": st.sampled_from([False] * 6 + [True]),
        "advance": st.sampled_from([1, 5, 15, 60, 600]),
    }
)


def _plan(steps: list[dict[str, object]], gate: bool) -> Plan:
    approvals = {"beforePromotion": {"required": True, "timeout": "5m"}} if gate else {}
    return make_plan(
        steps=steps,
        approvals=approvals,
        analysis={"minRequestsPerStep": 20, "successRate": {"min": 99}},
    )


def _simulate(
    steps: list[dict[str, object]], ticks: list[dict[str, object]], gate: bool
) -> list[tuple[vocabulary.Decision, vocabulary.Observation, RolloutStatus, datetime]]:
    plan = _plan(steps, gate)
    cluster = FakeCluster()
    status = RolloutStatus()
    now = T0
    commands: list[vocabulary.Command] = []
    history = []
    for i, tick in enumerate(ticks):
        cluster.canary_error_rate = float(tick["error_rate"])  # type: ignore[arg-type]
        cluster.rps = int(tick["rps"])  # type: ignore[call-overload]
        cluster.pods_become_ready = bool(tick["ready"])
        cluster.accepted = bool(tick["accepted"])
        if tick["command"] is not None:
            commands.append(
                vocabulary.Command(kind=tick["command"], at=now + timedelta(microseconds=i))  # type: ignore[arg-type]
            )
        obs = cluster.observe(
            commands=tuple(commands),
            measured=bool(tick["measured"]),
            metrics_error="down" if tick["blind"] else None,
        )
        decision = machine.decide(plan, status, obs, now)
        for action in decision.actions:
            cluster.apply(action)
        history.append((decision, obs, status, now))
        if not tick["crash"]:  # a crash loses the status write, never the actions already applied
            status = decision.status
        cluster.settle()
        now += timedelta(seconds=int(tick["advance"]))  # type: ignore[call-overload]
    return history


@settings(max_examples=300, deadline=None)
@given(steps=STEPS, ticks=st.lists(TICK, min_size=1, max_size=60), gate=st.booleans())
def test_weights_stay_within_bounds_and_sum_to_100(
    steps: list[dict[str, object]], ticks: list[dict[str, object]], gate: bool
) -> None:
    """Every weight the machine sets, written to an HTTPRoute by the real router, gives stable
    and canary weights within 0–100 that sum to 100, and reads back as the weight set."""
    plan = _plan(steps, gate)
    store = InMemoryObjects()
    router = HTTPRouteRouter(lambda api_version, plural: store)
    for decision, _, _, _ in _simulate(steps, ticks, gate):
        for action in decision.actions:
            if isinstance(action, vocabulary.SetWeight):
                router.set_weights("ns", plan, action.canary)
                route = store.objects[("ns", plan.route_name)]
                written = {
                    ref["name"]: ref["weight"]
                    for rule in route["spec"]["rules"]
                    for ref in rule["backendRefs"]
                }
                stable, canary = written[plan.stable_service], written[plan.canary_service]
                assert 0 <= stable <= 100
                assert 0 <= canary <= 100
                assert stable + canary == 100
                observed = router.observe("ns", plan)
                assert observed is not None
                assert observed.canary_weight == action.canary
        assert 0 <= decision.status.canary_weight <= 100


@settings(max_examples=300, deadline=None)
@given(steps=STEPS, ticks=st.lists(TICK, min_size=1, max_size=60), gate=st.booleans())
def test_fail_and_no_data_never_advance(
    steps: list[dict[str, object]], ticks: list[dict[str, object]], gate: bool
) -> None:
    """A weight step is left for the next one only with enough canary requests and every check
    passing; a pause step only by its duration, an approval or a timeout."""
    for decision, _, before, _ in _simulate(steps, ticks, gate):
        status = decision.status
        index = before.current_step_index
        if status.current_step_index <= index or index >= len(status.steps):
            continue
        if status.approvals and status.approvals[-1].decision in ("Promoted", "Aborted"):
            continue
        left = status.steps[index]
        assert left.verdict == "Passed"
        if "setWeight" in steps[index]:
            assert left.canary.requests >= 20
            assert left.checks
            assert all(c.verdict == "Pass" for c in left.checks)


@settings(max_examples=300, deadline=None)
@given(steps=STEPS, ticks=st.lists(TICK, min_size=1, max_size=60), gate=st.booleans())
def test_rollback_routes_to_stable_and_never_touches_it(
    steps: list[dict[str, object]], ticks: list[dict[str, object]], gate: bool
) -> None:
    """From the decision to roll back on, no action changes stable; RolledBack means 100% stable
    and a canary at zero."""
    for decision, obs, before, _ in _simulate(steps, ticks, gate):
        if decision.status.phase in ("RollingBack", "RolledBack", "Aborted"):
            assert vocabulary.PromoteStable() not in decision.actions
            assert not any(isinstance(a, vocabulary.EnsureCanary) for a in decision.actions)
            assert all(
                a.canary == 0 for a in decision.actions if isinstance(a, vocabulary.SetWeight)
            )
        ended = before.phase == "RollingBack" and decision.status.phase in ("RolledBack", "Aborted")
        if ended:
            assert obs.route is None or (obs.route.canary_weight == 0 and obs.route.accepted)
            assert obs.canary is None or obs.canary.replicas == 0


@settings(max_examples=300, deadline=None)
@given(steps=STEPS, ticks=st.lists(TICK, min_size=1, max_size=80), gate=st.booleans())
def test_promotion_needs_every_step_passed_and_every_approval(
    steps: list[dict[str, object]], ticks: list[dict[str, object]], gate: bool
) -> None:
    """Stable gets the release only after all steps passed and the promotion gate was passed —
    or a person explicitly promoted."""
    for decision, _, _, _ in _simulate(steps, ticks, gate):
        if vocabulary.PromoteStable() not in decision.actions:
            continue
        status = decision.status
        forced = any(r.decision == "Promoted" for r in status.approvals)
        if forced:
            continue
        assert len(status.steps) == len(steps)
        assert all(s.verdict == "Passed" for s in status.steps)
        if gate:
            assert any(
                r.gate == "beforePromotion" and r.decision in ("Approved", "TimedOut")
                for r in status.approvals
            )


@settings(max_examples=200, deadline=None)
@given(steps=STEPS, ticks=st.lists(TICK, min_size=1, max_size=40), gate=st.booleans())
def test_decide_is_deterministic(
    steps: list[dict[str, object]], ticks: list[dict[str, object]], gate: bool
) -> None:
    """Replaying any recorded tick (status, observation, time) gives the identical decision."""
    plan = _plan(steps, gate)
    for decision, obs, before, now in _simulate(steps, ticks, gate):
        assert machine.decide(plan, before, obs, now) == decision


@settings(max_examples=200, deadline=None)
@given(
    steps=STEPS,
    crash_at=st.lists(st.integers(min_value=0, max_value=60), max_size=5),
    bad=st.booleans(),
)
def test_crash_and_replay_reach_the_same_outcome(
    steps: list[dict[str, object]], crash_at: list[int], bad: bool
) -> None:
    """Losing status writes at any ticks (a crash after acting, before writing) changes nothing
    about how the release ends: promoted if healthy, rolled back if not, stable untouched."""
    plan = make_plan(steps=[s for s in steps if "setWeight" in s] or [{"setWeight": 10}])

    def outcome(crashes: set[int]) -> tuple[str, int, str, int]:
        cluster = FakeCluster(canary_error_rate=0.5 if bad else 0.0)
        status, now = RolloutStatus(), T0
        for tick in range(200):
            decision = machine.decide(plan, status, cluster.observe(), now)
            for action in decision.actions:
                cluster.apply(action)
            if tick not in crashes:
                status = decision.status
            if status.phase in ("Succeeded", "RolledBack"):
                break
            cluster.settle()
            now += decision.requeue_after or timedelta(seconds=15)
        return status.phase, cluster.weight, cluster.stable_template, cluster.canary_replicas

    expected = ("RolledBack", 0, "v1", 0) if bad else ("Succeeded", 0, "v2", 0)
    assert outcome(set()) == expected
    assert outcome(set(crash_at)) == expected
