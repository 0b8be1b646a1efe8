"""People steer releases: approval pauses, abort, and newer releases superseding older ones."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tests.integration.e2e.conftest import Release

pytestmark = pytest.mark.integration


def _command(actor: str = "test") -> str:
    return json.dumps({"at": datetime.now(UTC).isoformat(), "actor": actor, "comment": ""})


def test_pause_step_waits_for_approval(release_env: Callable[..., Release]) -> None:
    """A pause step holds the canary at its weight until `canary approve`, then it promotes."""
    env = release_env()
    env.create("6.1.0", steps=[{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}])
    waiting = env.wait("6.1.0", {"WaitingApproval", "RolledBack", "Failed"})
    assert waiting["status"]["phase"] == "WaitingApproval"
    time.sleep(5)
    assert env.rollout("6.1.0")["status"]["phase"] == "WaitingApproval"
    assert env.canary_weight() == 20
    env.annotate("6.1.0", "canary.dev/approve", _command("ana"))
    done = env.wait("6.1.0", {"Succeeded", "RolledBack", "Failed"})
    assert done["status"]["phase"] == "Succeeded"
    approvals = done["status"]["approvals"]
    assert [(a["gate"], a["decision"], a["actor"]) for a in approvals] == [
        ("step-1", "Approved", "ana")
    ]


def test_abort_mid_way(release_env: Callable[..., Release]) -> None:
    """`canary abort` mid-way: Aborted, 100% stable, canary at zero, stable untouched."""
    env = release_env()
    env.create("6.1.0", steps=[{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}])
    env.wait("6.1.0", {"WaitingApproval"})
    env.annotate("6.1.0", "canary.dev/abort", _command())
    done = env.wait("6.1.0", {"Aborted", "RolledBack", "Failed", "Succeeded"})
    assert done["status"]["phase"] == "Aborted"
    assert env.canary_weight() == 0
    assert env.deployment("podinfo-canary").spec.replicas == 0
    assert env.deployment("podinfo").metadata.generation == 1


def test_newer_rollout_supersedes_the_active_one(release_env: Callable[..., Release]) -> None:
    """A second Rollout for the same Deployment supersedes the first and completes."""
    env = release_env()
    env.create("6.1.0", steps=[{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}])
    env.wait("6.1.0", {"WaitingApproval"})
    env.create("6.2.0")
    old = env.wait("6.1.0", {"Superseded", "Succeeded", "RolledBack", "Failed"})
    assert old["status"]["phase"] == "Superseded"
    new = env.wait("6.2.0", {"Succeeded", "RolledBack", "Failed"})
    assert new["status"]["phase"] == "Succeeded"
    image = env.deployment("podinfo").spec.template.spec.containers[0].image
    assert image.endswith(":6.2.0")
