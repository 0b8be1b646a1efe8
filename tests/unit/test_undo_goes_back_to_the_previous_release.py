"""``canary undo``: a Succeeded release records the template it promoted; an undo is a new
Rollout back to the previous Succeeded release's template, with the policy's undo steps."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from canary.console import Console
from canary.core import machine, undo
from canary.core import plan as plan_mod
from canary.core.vocabulary import Observation, RouteState, TargetState
from canary.errors import InvalidSpec
from canary.model.rollout import Rollout, RolloutPolicy
from canary.model.status import RolloutStatus
from canary.model.template import TemplatePatch
from canary.ports import Ref
from tests.fake_store import MemoryRolloutStore
from tests.unit.fake_cluster import make_plan

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

TEMPLATE: dict[str, Any] = {
    "metadata": {
        "labels": {"app": "podinfo"},
        "annotations": {
            "linkerd.io/inject": "enabled",
            "sim.canary.dev/error-rate": "0.0",
            "team": "web",
        },
    },
    "spec": {
        "serviceAccountName": "podinfo",
        "containers": [
            {
                "name": "podinfo",
                "image": "podinfo:6.0.0",
                "env": [
                    {"name": "LEVEL", "value": "info"},
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                ],
                "args": ["--port=9898"],
                "resources": {"requests": {"cpu": "100m"}, "limits": {}},
            },
            {"name": "sidecar", "image": "busybox:1.36"},
        ],
    },
}


def _rollout(name: str, image: str, *, phase: str = "Succeeded", minute: int = 0) -> Rollout:
    status: dict[str, Any] = {"phase": phase}
    if phase == "Succeeded":
        status["finishedAt"] = NOW + timedelta(minutes=minute)
        status["promoted"] = {"spec": {"containers": [{"name": "podinfo", "image": image}]}}
    return Rollout.model_validate(
        {
            "metadata": {
                "name": name,
                "namespace": "test",
                "creationTimestamp": NOW + timedelta(minutes=minute - 5),
            },
            "spec": {
                "targetRef": {"name": "podinfo"},
                "release": {"images": {"podinfo": image}},
                "policyRef": {"name": "podinfo"},
                "analysis": {"minRequestsPerStep": 50},
            },
            "status": status,
        }
    )


def test_record_keeps_what_a_release_may_set_and_drops_the_rest() -> None:
    """Images, plain env, args, resources, labels and allowed annotations are recorded;
    valueFrom env, linkerd.io keys and pod fields a release cannot set are not."""
    recorded = undo.record(TEMPLATE)
    assert recorded is not None
    assert recorded.wire() == {
        "metadata": {
            "labels": {"app": "podinfo"},
            "annotations": {"sim.canary.dev/error-rate": "0.0", "team": "web"},
        },
        "spec": {
            "containers": [
                {
                    "name": "podinfo",
                    "image": "podinfo:6.0.0",
                    "env": [{"name": "LEVEL", "value": "info"}],
                    "args": ["--port=9898"],
                    "resources": {"requests": {"cpu": "100m"}},
                },
                {"name": "sidecar", "image": "busybox:1.36"},
            ]
        },
    }


def test_record_of_a_template_beyond_the_release_bounds_is_none() -> None:
    """A template with more env vars than a release may set cannot be recorded (None)."""
    env = [{"name": f"V{i}", "value": "x"} for i in range(200)]
    template = {"spec": {"containers": [{"name": "podinfo", "image": "p:1", "env": env}]}}
    assert undo.record(template) is None


def test_a_succeeded_release_records_the_template_it_promoted() -> None:
    """Promotion ending Succeeded writes the stable template it observed into status.promoted."""
    recorded = TemplatePatch.model_validate(
        {"spec": {"containers": [{"name": "podinfo", "image": "podinfo:6.1.0"}]}}
    )
    obs = Observation(
        target=TargetState(replicas=2, ready=True, has_release=True, template=recorded),
        apex_service=True,
        services_ready=True,
        route=RouteState(canary_weight=0, accepted=True),
    )
    status = RolloutStatus(phase="Promoting", phase_since=NOW)
    decision = machine.decide(make_plan(), status, obs, NOW)
    assert decision.status.phase == "Succeeded"
    assert decision.status.promoted == recorded


def test_choose_takes_the_last_two_succeeded_releases_by_finish() -> None:
    """The current release is the last to succeed; rolled-back ones are skipped."""
    rollouts = [
        _rollout("p-3", "podinfo:3", minute=30),
        _rollout("p-1", "podinfo:1", minute=10),
        _rollout("p-2", "podinfo:2", minute=20),
        _rollout("p-4", "podinfo:4", phase="RolledBack", minute=40),
    ]
    undoing = undo.choose(rollouts, "podinfo")
    assert (undoing.current.metadata.name, undoing.earlier.metadata.name) == ("p-3", "p-2")


@pytest.mark.parametrize(
    ("rollouts", "message"),
    [
        ([], "has no Succeeded release to undo"),
        ([_rollout("p-1", "podinfo:1")], "there is no earlier release to go back to"),
        (
            [_rollout("p-1", "podinfo:1"), _rollout("p-2", "podinfo:2", phase="Progressing")],
            "release p-2 of deploy/podinfo is Progressing: `canary abort p-2`",
        ),
        (
            [
                _rollout("p-1", "podinfo:1").model_copy(
                    update={"status": RolloutStatus(phase="Succeeded", finished_at=NOW)}
                ),
                _rollout("p-2", "podinfo:2", minute=5),
            ],
            "release p-1 recorded no template",
        ),
    ],
)
def test_choose_refuses_with_what_to_do(rollouts: list[Rollout], message: str) -> None:
    """Nothing to go back to, or a release still running: a clear refusal."""
    with pytest.raises(ValueError, match=message.replace("`", ".")):
        undo.choose(rollouts, "podinfo")


def test_build_goes_back_to_the_earlier_template_with_the_current_policy() -> None:
    """The undo Rollout releases the earlier images and template values, names the release it
    goes back to, keeps the undone release's policy and says who asked and why."""
    earlier = _rollout("p-1", "podinfo:1").model_copy(
        update={
            "status": RolloutStatus(
                phase="Succeeded", finished_at=NOW, promoted=undo.record(TEMPLATE)
            )
        }
    )
    current = _rollout("p-2", "podinfo:2", minute=5)
    made = undo.build(
        undo.Undoing(current, earlier), now=NOW, actor="alice", comment="5xx after release"
    )
    assert made.metadata.name == "podinfo-undo-20261130-120000"
    assert made.metadata.labels == {"canary.dev/target": "podinfo"}
    assert made.metadata.annotations == {
        undo.CHANGE_CAUSE: "canary undo to p-1 by alice: 5xx after release"
    }
    release = made.spec.release
    assert release.undo_of == "p-1"
    assert release.images == {"podinfo": "podinfo:6.0.0", "sidecar": "busybox:1.36"}
    assert release.template_patch is not None
    assert release.template_patch.patch() == {
        "metadata": {
            "labels": {"app": "podinfo"},
            "annotations": {"sim.canary.dev/error-rate": "0.0", "team": "web"},
        },
        "spec": {
            "containers": [
                {
                    "name": "podinfo",
                    "env": [{"name": "LEVEL", "value": "info"}],
                    "args": ["--port=9898"],
                    "resources": {"requests": {"cpu": "100m"}},
                }
            ]
        },
    }
    assert made.spec.policy_ref is not None
    assert made.spec.policy_ref.name == "podinfo"
    assert made.spec.analysis is not None
    assert made.spec.analysis.min_requests_per_step == 50


def test_build_with_an_invalid_name_lists_the_problem() -> None:
    """A --name that is no Kubernetes name is refused with its field path."""
    undoing = undo.Undoing(_rollout("p-2", "podinfo:2"), _rollout("p-1", "podinfo:1"))
    with pytest.raises(InvalidSpec) as error:
        undo.build(undoing, now=NOW, actor="a", name="Bad_Name")
    assert [p.path for p in error.value.problems] == ["metadata.name"]


def _policy(**fields: Any) -> RolloutPolicy:
    return RolloutPolicy.model_validate(
        {
            "metadata": {"name": "podinfo", "namespace": "test"},
            "spec": {"service": {"name": "podinfo", "port": 9898}, **fields},
        }
    )


def test_an_undo_runs_the_policys_undo_steps_and_a_release_its_steps() -> None:
    """undo.steps replace steps (and the stepWeight shorthand) for an undo only."""
    policy = _policy(stepWeight=10, undo={"steps": [{"setWeight": 50}, {"setWeight": 100}]})
    release = _rollout("p-2", "podinfo:2")
    undoing = undo.build(undo.Undoing(release, _rollout("p-1", "podinfo:1")), now=NOW, actor="a")
    assert [s.set_weight for s in plan_mod.build(undoing, policy).steps] == [50, 100]
    assert len(plan_mod.build(release, policy).steps) == 10
    plain = _policy(steps=[{"setWeight": 20}])
    assert [s.set_weight for s in plan_mod.build(undoing, plain).steps] == [20]


def test_bad_undo_steps_are_reported_at_their_path() -> None:
    """An undo step list that sends no traffic is refused with spec.undo.steps."""
    policy = _policy(undo={"steps": [{"pause": {"duration": "1m"}}]})
    undoing = undo.build(
        undo.Undoing(_rollout("p-2", "podinfo:2"), _rollout("p-1", "podinfo:1")),
        now=NOW,
        actor="a",
    )
    with pytest.raises(InvalidSpec) as error:
        plan_mod.build(undoing, policy)
    assert [p.path for p in error.value.problems] == ["spec.undo.steps"]


def test_console_undo_creates_the_rollout_or_says_why_not() -> None:
    """canary undo deploy/podinfo creates the undo Rollout; with one release it refuses."""
    store, out, err = MemoryRolloutStore(), io.StringIO(), io.StringIO()
    view = Console(
        store=store,
        annotator=store,
        create=lambda r: store.rollouts[Ref("test", store.add(r).name)],
        namespace="test",
        out=out,
        err=err,
        clock=lambda: NOW,
    )
    store.add(_rollout("p-1", "podinfo:1"))
    assert view.undo("podinfo", actor="alice") == 1
    assert err.getvalue() == (
        "error: cannot undo deploy/podinfo: deploy/podinfo has one Succeeded release (p-1): "
        "there is no earlier release to go back to\n"
    )
    store.add(_rollout("p-2", "podinfo:2", minute=5))
    assert view.undo("podinfo", actor="alice") == 0
    assert out.getvalue() == (
        "rollout.canary.dev/podinfo-undo-20261130-120000 created (back to p-1's template)\n"
    )
    made = store.rollouts[Ref("test", "podinfo-undo-20261130-120000")]
    assert made.spec.release.images == {"podinfo": "podinfo:1"}
    assert made.spec.release.undo_of == "p-1"
