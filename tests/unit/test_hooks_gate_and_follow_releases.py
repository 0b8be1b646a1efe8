"""The policy's hooks in the state machine: confirm gates wait for a 2xx answer up to their
deadline, a failed pre-rollout rolls back, post-rollout and rollback hooks are called once and
reported, and every attempt is kept (bounded) in status."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from canary.core import hooks, machine, outbound, vocabulary
from canary.errors import InvalidSpec
from canary.model.policy import Hook
from canary.model.status import MAX_HOOK_ATTEMPTS, RolloutStatus
from tests.unit.fake_cluster import T0, FakeCluster, make_plan

Answer = tuple[str, int | None] | None
"""(result, HTTP status) of the n-th call of a hook; None: no answer ever comes."""
Receiver = Callable[[vocabulary.CallHook, int], Answer]
TERMINAL = ("Succeeded", "RolledBack", "Aborted", "Failed")


def _ok(_call: vocabulary.CallHook, _n: int) -> Answer:
    return ("Passed", 200)


def _no(_call: vocabulary.CallHook, _n: int) -> Answer:
    return ("Failed", 503)


def _after(denials: int) -> Receiver:
    def answer(_call: vocabulary.CallHook, n: int) -> Answer:
        return ("Passed", 200) if n > denials else ("Failed", 409)

    return answer


@dataclasses.dataclass
class Run:
    status: RolloutStatus
    now: datetime
    decisions: list[vocabulary.Decision]
    calls: list[vocabulary.CallHook]
    weights: list[int]
    cluster: FakeCluster

    @property
    def reasons(self) -> list[str]:
        return [e.reason for d in self.decisions for e in d.events]

    def called(self, name: str) -> int:
        return sum(1 for c in self.calls if c.name == name)


def drive(
    receivers: dict[str, Receiver],
    *,
    cluster: FakeCluster | None = None,
    max_ticks: int = 600,
    **spec: Any,
) -> Run:
    """Reconcile a Rollout with ``spec`` until it ends, answering each hook call at the next
    tick as its receiver says (the shell's background calls, played in order)."""
    plan = make_plan(**spec)
    cluster = cluster or FakeCluster()
    status, now = RolloutStatus(), T0
    answers: list[vocabulary.HookAnswer] = []
    counts: Counter[str] = Counter()
    run = Run(status, now, [], [], [], cluster)
    for _ in range(max_ticks):
        obs = dataclasses.replace(cluster.observe(), hook_answers=tuple(answers))
        decision = machine.decide(plan, status, obs, now)
        run.decisions.append(decision)
        for action in decision.actions:
            cluster.apply(action)
        run.weights.append(cluster.weight)
        status = decision.status
        for call in decision.hook_calls:
            run.calls.append(call)
            counts[call.name] += 1
            answer = receivers[call.name](call, counts[call.name])
            if answer is not None:
                answers.append(vocabulary.HookAnswer(call.key, answer[0], answer[1], "", now))  # type: ignore[arg-type]
        if status.phase in TERMINAL:
            break
        cluster.settle()
        now += decision.requeue_after or timedelta(seconds=15)
    run.status, run.now = status, now
    return run


def _hook(name: str, type_: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "url": f"http://{name}.t.svc:8080/", **fields}


def test_a_release_without_hooks_keeps_no_hook_status() -> None:
    """No hooks: nothing is called and status.hooks stays unset."""
    run = drive({})
    assert run.status.phase == "Succeeded"
    assert run.calls == []
    assert run.status.hooks is None


def test_confirm_start_holds_everything_until_a_2xx() -> None:
    """confirm-start answering 409 twice: nothing is created until the third call passes."""
    run = drive({"gate": _after(2)}, hooks=[_hook("gate", "confirm-start", interval="5s")])
    assert run.status.phase == "Succeeded"
    assert run.called("gate") == 3
    first_creation = next(
        i
        for i, d in enumerate(run.decisions)
        if any(isinstance(a, vocabulary.EnsureCanary) for a in d.actions)
    )
    passed_at = next(i for i, d in enumerate(run.decisions) if "HookPassed" in _reasons(d))
    assert first_creation >= passed_at
    assert run.status.hooks is not None
    assert [a.result for a in run.status.hooks.attempts] == ["Failed", "Failed", "Passed"]
    assert [a.code for a in run.status.hooks.attempts] == [409, 409, 200]
    assert run.reasons.count("HookNotConfirmed") == 2


def _reasons(decision: vocabulary.Decision) -> list[str]:
    return [e.reason for e in decision.events]


def test_confirm_start_past_its_deadline_ends_without_creating_anything() -> None:
    """confirm-start never 2xx with timeout 1m, onTimeout Rollback: RolledBack, nothing made."""
    run = drive(
        {"gate": _no},
        hooks=[_hook("gate", "confirm-start", interval="10s", timeout="1m")],
    )
    assert run.status.phase == "RolledBack"
    assert not run.cluster.canary_exists
    assert run.now - T0 >= timedelta(minutes=1)
    stalled = next(c for c in run.status.conditions if c.type == "Stalled")
    assert (stalled.status, stalled.reason) == ("True", "HookDeadlineExceeded")
    assert "confirm-start" in run.status.message


def test_confirm_step_holds_the_weight_until_its_deadline_continues() -> None:
    """A confirm-step hook never 2xx, onTimeout Continue: each increase waits out the
    deadline at the old weight, then the release goes on and is promoted."""
    run = drive(
        {"step": _no},
        hooks=[_hook("step", "confirm-step", timeout="2m", onTimeout="Continue")],
    )
    assert run.status.phase == "Succeeded"
    assert run.now - T0 >= timedelta(minutes=4)  # two increases, two deadlines
    assert run.reasons.count("HookDeadlineExceeded") == 2
    # While the step 2 gate waited, the route stayed at step 1's weight.
    at_ten = [w for w in run.weights if w == 10]
    assert len(at_ten) > 5
    assert max(run.weights) == 50


def test_confirm_step_hold_keeps_asking_past_the_deadline() -> None:
    """onTimeout Hold: reported once, then the gate keeps asking and passes when it says 2xx."""
    run = drive(
        {"step": _after(12)},
        hooks=[_hook("step", "confirm-step", interval="10s", timeout="1m", onTimeout="Hold")],
    )
    assert run.status.phase == "Succeeded"
    assert run.reasons.count("HookDeadlineExceeded") == 1
    assert run.called("step") == 14  # 12 denials, then one pass per increase


def test_confirm_promotion_keeps_the_stable_deployment_untouched_until_it_passes() -> None:
    """Until confirm-promotion answers 2xx the stable Deployment keeps the old template."""
    run = drive(
        {"promo": _after(3)},
        hooks=[_hook("promo", "confirm-promotion", interval="1s")],
    )
    assert run.status.phase == "Succeeded"
    promote = next(
        i
        for i, d in enumerate(run.decisions)
        if any(isinstance(a, vocabulary.PromoteStable) for a in d.actions)
    )
    passed = next(i for i, d in enumerate(run.decisions) if "HookPassed" in _reasons(d))
    assert promote >= passed
    assert run.called("promo") == 4


def test_confirm_promotion_rollback_on_timeout_rolls_back() -> None:
    """confirm-promotion never 2xx, deadline Rollback: RolledBack, stable never changed."""
    run = drive(
        {"promo": _no},
        hooks=[_hook("promo", "confirm-promotion", timeout="30s")],
    )
    assert run.status.phase == "RolledBack"
    assert run.cluster.stable_template == "v1"
    assert run.cluster.weight == 0


@pytest.mark.parametrize("answer", [("Failed", 500), ("TimedOut", None), ("Refused", None)])
def test_a_failed_pre_rollout_rolls_back_before_any_traffic(answer: Answer) -> None:
    """pre-rollout failing, timing out or refused by the URL policy: the canary never gets
    traffic, the release rolls back, and rollback and post-rollout hooks are each called once."""
    run = drive(
        {"pre": lambda _c, _n: answer, "rb": _ok, "post": _ok},
        hooks=[
            _hook("pre", "pre-rollout"),
            _hook("rb", "rollback"),
            _hook("post", "post-rollout"),
        ],
    )
    assert run.status.phase == "RolledBack"
    assert max(run.weights) == 0
    assert "pre-rollout hook failed" in run.status.message
    assert (run.called("pre"), run.called("rb"), run.called("post")) == (1, 1, 1)
    assert "HookFailed" in run.reasons


def test_pre_rollout_is_called_once_the_canary_is_ready() -> None:
    """pre-rollout runs after the canary pods are ready and before the first step's traffic."""
    run = drive({"pre": _ok}, hooks=[_hook("pre", "pre-rollout")])
    assert run.status.phase == "Succeeded"
    first = next(i for i, c in enumerate(run.decisions) if c.hook_calls)
    assert run.cluster.canary_exists
    assert run.weights[first] == 0
    assert run.called("pre") == 1


def test_a_failed_post_rollout_is_reported_and_the_release_still_succeeds() -> None:
    """post-rollout answering 500: Succeeded, the message and a Warning Event say so."""
    run = drive({"post": _no}, hooks=[_hook("post", "post-rollout")])
    assert run.status.phase == "Succeeded"
    assert "post-rollout hook post failed" in run.status.message
    warning = next(e for d in run.decisions for e in d.events if e.reason == "HookFailed")
    assert warning.type == "Warning"
    assert "503" in warning.message
    assert run.called("post") == 1


def test_rollback_hook_is_called_once_when_analysis_fails() -> None:
    """An error regression rolls back; the rollback hook is called once, then RolledBack."""
    run = drive(
        {"rb": _no},
        cluster=FakeCluster(canary_error_rate=0.2),
        hooks=[_hook("rb", "rollback")],
    )
    assert run.status.phase == "RolledBack"
    assert run.called("rb") == 1
    assert "rollback hook rb failed" in run.status.message


def test_a_call_that_never_answers_is_marked_lost_and_asked_again() -> None:
    """A call with no answer (the controller restarted mid-call) is Lost after its timeout
    and a grace, then asked again."""
    answers: list[Answer] = [None, ("Passed", 200)]
    run = drive(
        {"pre": lambda _c, n: answers[n - 1]},
        hooks=[_hook("pre", "pre-rollout", callTimeout="3s")],
    )
    assert run.status.phase == "Succeeded"
    assert run.status.hooks is not None
    assert [a.result for a in run.status.hooks.attempts] == ["Lost", "Passed"]
    lost = run.status.hooks.attempts[0]
    assert lost.finished_at is not None
    assert lost.finished_at - lost.started_at >= timedelta(seconds=3) + hooks.LOST_GRACE


def test_attempts_in_status_are_bounded() -> None:
    """A gate asked 60 times keeps only the latest attempts in status."""
    run = drive(
        {"gate": _after(59)},
        hooks=[_hook("gate", "confirm-start", interval="1s")],
    )
    assert run.status.phase == "Succeeded"
    assert run.called("gate") == 60
    assert run.status.hooks is not None
    assert len(run.status.hooks.attempts) == MAX_HOOK_ATTEMPTS
    assert run.status.hooks.attempts[-1].result == "Passed"


def test_every_call_carries_the_hooks_settings() -> None:
    """A call names its hook, point, URL, timeout and metadata, and a key unique per call."""
    run = drive(
        {"gate": _after(1)},
        hooks=[_hook("gate", "confirm-step", interval="1s", callTimeout="4s", metadata={"k": "v"})],
    )
    first, second = run.calls[:2]
    assert (first.point, first.url, first.timeout) == (
        "confirm-step/0",
        "http://gate.t.svc:8080/",
        timedelta(seconds=4),
    )
    assert first.metadata == (("k", "v"),)
    assert first.key != second.key
    assert [c.point for c in run.calls] == ["confirm-step/0", "confirm-step/0", "confirm-step/1"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"callTimeout": "61s"}, "at most 1m"),
        ({"type": "pre-rollout", "interval": "5s"}, r"only for confirm-\* hooks"),
        ({"type": "rollback", "onTimeout": "Rollback"}, r"only for confirm-\* hooks"),
        ({"onTimeout": "Fail"}, "Input should be"),
        ({"timeout": "721h"}, "must be"),
        ({"url": "http://user:pw@gate.t.svc/"}, "String should match pattern"),
        ({"url": "ftp://gate.t.svc/"}, "String should match pattern"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "at most 16"),
        ({"name": "Not_A_Label"}, "String should match pattern"),
    ],
)
def test_hook_fields_are_bounded(fields: dict[str, Any], message: str) -> None:
    """Out-of-bounds hook fields are refused by the model with a clear message."""
    document = {**_hook("gate", "confirm-step"), **fields}
    with pytest.raises(ValidationError, match=message):
        Hook.model_validate(document)


def test_hook_names_are_unique() -> None:
    """Two hooks with one name are an InvalidSpec naming spec.hooks."""
    with pytest.raises(InvalidSpec, match=r"spec\.hooks.*defined twice"):
        make_plan(hooks=[_hook("a", "pre-rollout"), _hook("a", "rollback")])


def test_gates_share_the_one_on_timeout_vocabulary() -> None:
    """Approval pauses, approval gates and confirm hooks accept the same gate actions."""
    for action in ("Rollback", "Hold", "Continue"):
        plan = make_plan(
            steps=[{"setWeight": 10}, {"pause": {"timeout": "1m", "onTimeout": action}}],
            approvals={"timeout": "1m", "onTimeout": action},
            hooks=[_hook("g", "confirm-step", onTimeout=action)],
        )
        assert plan.pause_gates[1] is not None
        assert plan.pause_gates[1].on_timeout == action
        assert hooks.wait_of(plan.hooks[0]).on_timeout == action


def test_lint_refuses_hooks_outside_the_documents_namespace() -> None:
    """`canary lint` names a hook URL that is not a Service of the document's namespace."""
    from canary.core import lint

    policy = {
        "apiVersion": "canary.dev/v1alpha1",
        "kind": "RolloutPolicy",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "hooks": [
                _hook("ok", "pre-rollout") | {"url": "http://checks.shop.svc:8080/"},
                _hook("bad", "confirm-step") | {"url": "http://checks.payments.svc:8080/"},
            ]
        },
    }
    findings = lint.check([policy])
    assert [(f.problem.path, f.kind) for f in findings] == [("spec.hooks[1].url", "RolloutPolicy")]
    assert "only Services in namespace shop" in findings[0].problem.message
    assert "--outbound-allow" in findings[0].problem.hint


def test_a_call_running_when_the_deadline_passes_is_abandoned() -> None:
    """A confirm call still running at its deadline is marked Lost; none stays Running."""
    run = drive(
        {"gate": lambda _c, n: ("Failed", 409) if n == 1 else None},
        hooks=[_hook("gate", "confirm-start", interval="1s", timeout="5s", callTimeout="60s")],
    )
    assert run.status.phase == "RolledBack"
    assert run.status.hooks is not None
    assert [a.result for a in run.status.hooks.attempts] == ["Failed", "Lost"]
    assert "moved on" in run.status.hooks.attempts[-1].message


def test_an_abort_while_a_confirm_call_runs_leaves_no_call_running() -> None:
    """Aborted at a confirm-step gate whose call never answers: the call is Lost, not Running."""
    plan = make_plan(hooks=[_hook("gate", "confirm-step", callTimeout="60s")])
    cluster = FakeCluster()
    status, now = RolloutStatus(), T0
    for _ in range(20):
        decision = machine.decide(plan, status, cluster.observe(), now)
        for action in decision.actions:
            cluster.apply(action)
        status = decision.status
        cluster.settle()
        now += timedelta(seconds=1)
    assert status.hooks is not None
    assert status.hooks.attempts[-1].result == "Running"
    abort = vocabulary.Command("abort", now, actor="ana")
    for _ in range(10 + machine.CANARY_DRAIN.seconds):  # the canary drains before it goes
        decision = machine.decide(plan, status, cluster.observe(commands=(abort,)), now)
        for action in decision.actions:
            cluster.apply(action)
        status = decision.status
        cluster.settle()
        now += timedelta(seconds=1)
    assert status.phase == "Aborted"
    assert status.hooks is not None
    assert [a.result for a in status.hooks.attempts] == ["Lost"]


def test_passing_confirm_start_restarts_the_progress_deadline() -> None:
    """Time spent at confirm-start is not counted against the progress deadline: the
    Initializing phase's clock starts again when the gate passes."""
    run = drive(
        {"gate": _after(30)},
        hooks=[_hook("gate", "confirm-start", interval="30s")],
        progressDeadline={"timeout": "5m"},
    )
    assert run.status.phase == "Succeeded"
    assert run.now - T0 > timedelta(minutes=15)


def test_a_rollback_hook_that_never_answers_delays_only_the_final_phase() -> None:
    """A rollback hook whose calls are lost (no answer ever recorded): traffic is back on
    stable at once; it is asked again twice, then RolledBack says it failed."""
    run = drive(
        {"rb": lambda _c, _n: None},
        cluster=FakeCluster(canary_error_rate=0.2),
        hooks=[_hook("rb", "rollback", callTimeout="10s")],
    )
    assert run.status.phase == "RolledBack"
    assert run.called("rb") == 1 + hooks.LOST_RETRIES
    rolling = next(i for i, d in enumerate(run.decisions) if d.status.phase == "RollingBack")
    assert run.weights[rolling] == 0
    assert run.status.hooks is not None
    assert [a.result for a in run.status.hooks.attempts] == ["Lost"] * 3
    assert "rollback hook rb failed" in run.status.message


def test_helpers_leave_a_release_without_hook_status_alone() -> None:
    """No status.hooks yet: nothing to pass, abandon or report."""
    assert hooks.pass_all((), "confirm-step", None) is None
    assert hooks.abandon(None, None, T0) is None
    assert hooks.failed_note(None) == ""


def test_a_hook_url_canary_never_calls_is_an_invalid_spec() -> None:
    """A URL the schema lets through but the outbound policy cannot parse names its path."""
    with pytest.raises(InvalidSpec, match=r"spec\.hooks\[0\]\.url.*not a DNS name"):
        make_plan(hooks=[_hook("a", "pre-rollout") | {"url": "http://bad_host.t.svc/"}])


@pytest.mark.parametrize("address", ["::ffff:127.0.0.1", "169.254.169.254", "fe80::1%eth0"])
def test_hook_addresses_never_reach_loopback_link_local_or_metadata(address: str) -> None:
    """Whatever a hook's host resolves to, loopback, link-local and metadata are refused."""
    target = outbound.check_hook(outbound.Policy(), "http://gate.t.svc/", "t")
    with pytest.raises(outbound.Refused, match="loopback, link-local or metadata"):
        outbound.check_hook_address(target, address)


def test_a_private_cluster_address_is_fine_for_a_hook_but_not_a_notification() -> None:
    """A Service's cluster IP is private: hooks may call it, notifications need an allow."""
    target = outbound.check_hook(outbound.Policy(), "http://gate.t.svc/", "t")
    outbound.check_hook_address(target, "10.96.0.12")
    with pytest.raises(outbound.Refused, match="not public"):
        outbound.check_address(outbound.Policy(), target, "10.96.0.12")


def test_a_person_pausing_stops_a_confirm_gates_deadline() -> None:
    """Held by `canary pause` for two hours at a confirm-step gate with a 1h deadline: after
    `canary resume` the gate still has what was left of its hour."""
    plan = make_plan(hooks=[_hook("gate", "confirm-step", interval="1m", timeout="1h")])
    cluster = FakeCluster()
    status, now = RolloutStatus(), T0
    answers: list[vocabulary.HookAnswer] = []

    def tick(*commands: vocabulary.Command) -> None:
        nonlocal status, now
        obs = dataclasses.replace(cluster.observe(commands=commands), hook_answers=tuple(answers))
        decision = machine.decide(plan, status, obs, now)
        for action in decision.actions:
            cluster.apply(action)
        answers.extend(
            vocabulary.HookAnswer(c.key, "Failed", 409, "", now) for c in decision.hook_calls
        )
        status = decision.status
        cluster.settle()

    for _ in range(40):  # to the first gate, denied for ten minutes
        tick()
        now += timedelta(seconds=15)
    assert status.hooks is not None
    assert status.hooks.point == "confirm-step/0"
    pause = vocabulary.Command("pause", now, actor="ana")
    tick(pause)
    now += timedelta(hours=2)
    resume = vocabulary.Command("resume", now, actor="ana")
    tick(pause, resume)
    now += timedelta(seconds=15)
    tick(pause, resume)
    assert status.phase == "Progressing"
    assert cluster.weight == 0
    for _ in range(300):  # the rest of the hour runs out
        now += timedelta(seconds=15)
        tick(pause, resume)
        if status.phase != "Progressing":
            break
    assert status.phase in ("RollingBack", "RolledBack")
    assert now - T0 > timedelta(hours=3)
