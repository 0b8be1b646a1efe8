"""A route write the API server refuses (an admission webhook such as Linkerd's) holds traffic at
the weight the route still has, is reported on the Rollout (RouteWritable=False with the
reason, one Warning Event) and retried; no later action runs on a weight that did not take."""

from __future__ import annotations

from canary.core import plan as plan_mod
from canary.errors import Problem, WriteRefused
from canary.model.status import Condition
from canary.runtime import reconciler as rec
from tests.fakes import FakeRouter
from tests.unit.test_reconciler_and_controller_drive_releases import World

LINKERD = 'admission webhook "linkerd-policy-validator.linkerd.io" denied the request: bad timeout'


class RefusingRouter(FakeRouter):
    """A router whose writes the API server refuses while ``refusing`` (weights stay)."""

    refusing = False

    def set_weights(self, namespace: str, plan: plan_mod.Plan, canary: int) -> None:
        route = self.routes.get((namespace, plan.route_name))
        if self.refusing and (route is None or route.canary_weight != canary):
            raise WriteRefused([Problem("", f"patch httproutes {namespace}/x: {LINKERD}")])
        super().set_weights(namespace, plan, canary)


def _world() -> World:
    return World(router=RefusingRouter())


def _condition(world: World) -> Condition | None:
    stored = world.store.get(world.ref)
    assert stored is not None
    return next((c for c in stored.status.conditions if c.type == rec.ROUTE_WRITABLE), None)


def _at_first_step(world: World) -> None:
    for _ in range(20):
        world.tick()
        if world.router.routes and world.route_weight() == 10:
            return
    raise AssertionError("the release never reached its first step")


def test_a_refused_step_holds_traffic_where_it_is_and_says_why() -> None:
    """The advance to 50% is refused: the route keeps 10%, the release stays at the 50% step
    without measuring anything there (its canary pods may start: they get no traffic),
    RouteWritable=False quotes the webhook, one Warning Event however many tries."""
    world = _world()
    _at_first_step(world)
    assert isinstance(world.router, RefusingRouter)
    world.router.refusing = True
    results = [world.tick() for _ in range(30)]
    assert world.route_weight() == 10
    stored = world.store.get(world.ref)
    assert stored is not None
    assert stored.status.phase == "Progressing"
    assert stored.status.steps[0].verdict == "Passed"
    (held,) = stored.status.steps[1:]
    assert (held.weight, held.verdict, held.canary.requests) == (50, "Running", 0)
    condition = _condition(world)
    assert condition is not None
    assert (condition.status, condition.reason) == ("False", "Refused")
    assert LINKERD in condition.message
    assert "to 50% canary" in condition.message
    assert "traffic stays at 10%" in condition.message
    assert world.events.events.count(("podinfo-2", "RouteRefused")) == 1
    refused = [r for r in results if r.error == "RouteRefused"]
    assert refused
    assert {r.requeue_after for r in refused} == {rec.RETRY_REFUSED}


def test_once_the_route_takes_weights_again_the_release_goes_on() -> None:
    """After the route's owner fixes it, the release finishes and RouteWritable turns True."""
    world = _world()
    _at_first_step(world)
    assert isinstance(world.router, RefusingRouter)
    world.router.refusing = True
    for _ in range(30):
        world.tick()
    world.router.refusing = False
    assert world.drive() == "Succeeded"
    condition = _condition(world)
    assert condition is not None
    assert (condition.status, condition.reason) == ("True", "Written")


def test_a_refused_rollback_is_kept_and_leaves_the_canary_serving() -> None:
    """A failing canary whose rollback to 0% is refused stays RollingBack with its pods (the
    route still sends it 10%); once the route is fixed the rollback completes."""
    world = _world()
    _at_first_step(world)
    assert isinstance(world.router, RefusingRouter)
    world.router.refusing = True
    world.cluster.canary_error_rate = 0.5
    for _ in range(30):
        world.tick()
    assert world.phase() == "RollingBack"
    assert world.route_weight() == 10
    assert world.cluster.canary_replicas > 0
    assert ("podinfo-2", "RouteRefused") in world.events.events
    world.router.refusing = False
    assert world.drive() == "RolledBack"
    assert world.route_weight() == 0
    assert world.cluster.canary_replicas == 0
