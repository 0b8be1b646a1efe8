"""The reconciler and the hook port: a call is started only after the status recording it as
Running is written (so no call is ever made unrecorded), the payload's Rollout carries that
status, answers come back through the port on later reconciles, and the release goes on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from canary.core import vocabulary
from canary.core.plan import Plan
from canary.errors import ApiUnavailable
from canary.model.rollout import Rollout
from canary.ports import Ref
from canary.runtime import reconciler as rec
from tests.fakes import FakeRouter
from tests.unit.fake_cluster import make_rollout
from tests.unit.test_reconciler_and_controller_drive_releases import World


@dataclass
class AnsweringHooks:
    """``ports.HookCaller`` that answers every call 200 once the test says time has passed."""

    world: Any = None
    started: list[vocabulary.CallHook] = field(default_factory=list)
    recorded_first: list[bool] = field(default_factory=list)
    payload_status: list[str] = field(default_factory=list)
    done: list[vocabulary.HookAnswer] = field(default_factory=list)

    def start(self, rollout: Rollout, call: vocabulary.CallHook) -> None:
        stored = self.world.store.get(self.world.ref)
        attempts = stored.status.hooks.attempts if stored.status.hooks else []
        self.recorded_first.append(
            any(a.key == call.key and a.result == "Running" for a in attempts)
        )
        hooks = rollout.status.hooks
        self.payload_status.append(hooks.point if hooks else "")
        self.started.append(call)

    def answers(self, ref: Ref) -> tuple[vocabulary.HookAnswer, ...]:
        return tuple(self.done)

    def answer_all(self) -> None:
        keys = {a.key for a in self.done}
        now = self.world.clock.now()
        self.done.extend(
            vocabulary.HookAnswer(c.key, "Passed", 200, "", now)
            for c in self.started
            if c.key not in keys
        )


def _hook(name: str, type_: str) -> dict[str, str]:
    return {"name": name, "type": type_, "url": f"http://{name}.t.svc/"}


def test_calls_are_recorded_then_started_and_their_answers_move_the_release() -> None:
    """Every call is Running in the stored status before it starts; answered 200, the
    release passes each hook and is promoted, each hook called at each of its points."""
    hooks = AnsweringHooks()
    world = World(
        rollout=make_rollout(
            hooks=[
                _hook("start", "confirm-start"),
                _hook("pre", "pre-rollout"),
                _hook("step", "confirm-step"),
                _hook("promo", "confirm-promotion"),
                _hook("post", "post-rollout"),
            ]
        )
    )
    hooks.world = world
    world.reconciler = rec.Reconciler(
        world.store,
        world.workloads,
        {"HTTPRoute": world.router},
        world.events,
        world.clock,
        hooks=hooks,
    )
    for _ in range(80):
        world.tick()
        hooks.answer_all()
        if world.phase() in ("Succeeded", "RolledBack", "Failed"):
            break
    assert world.phase() == "Succeeded"
    assert [(c.name, c.point) for c in hooks.started] == [
        ("start", "confirm-start"),
        ("pre", "pre-rollout"),
        ("step", "confirm-step/0"),
        ("step", "confirm-step/1"),
        ("promo", "confirm-promotion"),
        ("post", "post-rollout"),
    ]
    assert all(hooks.recorded_first)
    assert hooks.payload_status == [c.point for c in hooks.started]
    stored = world.store.get(world.ref)
    assert stored is not None
    assert stored.status.hooks is not None
    assert {a.result for a in stored.status.hooks.attempts} == {"Passed"}
    assert ("podinfo-2", "HookPassed") in world.events.events


class _FailingToStable(FakeRouter):
    """A router whose first write of 0% once armed fails as an unavailable API server would."""

    armed = failed = False

    def set_weights(self, namespace: str, plan: Plan, canary: int) -> None:
        if canary == 0 and self.armed and not self.failed:
            self.failed = True
            raise ApiUnavailable("the API server is unavailable")
        super().set_weights(namespace, plan, canary)


def test_a_rollbacks_hook_is_started_though_its_route_write_failed() -> None:
    """A rollback is written before traffic moves; its hook calls, Running in that status, are
    started even when the route write after it fails (the next reconcile routes to stable)."""
    hooks = AnsweringHooks()
    router = _FailingToStable()
    world = World(rollout=make_rollout(hooks=[_hook("rb", "rollback")]), router=router)
    hooks.world = world
    world.reconciler = rec.Reconciler(
        world.store, world.workloads, {"HTTPRoute": router}, world.events, world.clock,
        hooks=hooks,
    )  # fmt: skip
    for _ in range(20):
        world.tick()
        if world.phase() == "Progressing" and world.route_weight() > 0:
            break
    assert hooks.started == []
    world.cluster.canary_error_rate, router.armed = 1.0, True
    for _ in range(80):
        world.tick()
        if router.failed:
            break
    assert router.failed
    assert world.phase() == "RollingBack"
    assert [(c.name, c.point) for c in hooks.started] == [("rb", "rollback")]
    assert all(hooks.recorded_first)
    for _ in range(20):
        world.tick()
        hooks.answer_all()
        if world.phase() == "RolledBack":
            break
    assert world.phase() == "RolledBack"
    assert world.route_weight() == 0
    assert [c.name for c in hooks.started] == ["rb"]
