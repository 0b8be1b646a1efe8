"""The console's messages when the server refuses a Rollout or a policy cannot be read."""

from __future__ import annotations

import io

from canary.console import Console
from canary.errors import InvalidSpec, Problem
from canary.model.rollout import Rollout, RolloutPolicy
from canary.ports import Ref
from tests.fake_store import MemoryRolloutStore


class UnreadablePolicies(MemoryRolloutStore):
    """A store whose RolloutPolicies do not parse."""

    def policy(self, ref: Ref) -> RolloutPolicy | None:
        raise InvalidSpec([Problem("spec.steps", "bad")])


def _refuse(rollout: Rollout) -> Rollout:
    raise InvalidSpec([Problem("spec.release.images", "forbidden by admission policy")])


def test_a_release_the_server_refuses_lists_the_servers_reasons() -> None:
    """A 422 from the API server is printed as kubectl does, one problem per line."""
    store, err = MemoryRolloutStore(), io.StringIO()
    view = Console(store=store, annotator=store, create=_refuse, namespace="t", err=err)
    assert view.release("web", {"web": "web:2"}, {}) == 1
    assert err.getvalue() == (
        'The Rollout "web-2" is invalid:\n* spec.release.images: forbidden by admission policy\n'
    )


def test_an_unreadable_policy_leaves_the_step_count_unknown() -> None:
    """get still lists a Rollout whose policy does not parse; its STEP shows without a total."""
    store, out = UnreadablePolicies(), io.StringIO()
    rollout = Rollout.model_validate(
        {
            "metadata": {"name": "web-2", "namespace": "t"},
            "spec": {
                "targetRef": {"name": "web"},
                "release": {"images": {"web": "web:2"}},
                "policyRef": {"name": "web"},
            },
            "status": {
                "phase": "Progressing",
                "currentStepIndex": 1,
                "steps": [
                    {"index": 0, "startedAt": "2026-11-21T08:00:00Z"},
                    {"index": 1, "startedAt": "2026-11-21T08:01:00Z"},
                ],
            },
        }
    )
    store.rollouts[Ref("t", "web-2")] = rollout
    view = Console(store=store, annotator=store, create=lambda r: r, namespace="t", out=out)
    assert view.get(None, all_namespaces=False, output=None) == 0
    assert out.getvalue().splitlines()[1].split()[:5] == [
        "web-2",
        "Deployment/web",
        "Progressing",
        "0%",
        "2",
    ]
