"""The policy's hooks on the local control plane, called by the real controller (`canary run`)
at a real HTTP receiver on this machine (allowed by `--outbound-allow`, as an operator allows a
private receiver): confirm gates hold the release until a 2xx, a pre-rollout that times out
rolls back, post-rollout and rollback hooks are called and their failures reported, every
attempt is in status and in Events, and a hook naming another namespace's Service is refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from tests.hook_receiver import HookReceiver, serving
from tests.integration.e2e.conftest import Release

pytestmark = pytest.mark.integration
ENDED = {"Succeeded", "RolledBack", "Failed", "Aborted"}


def _hook(receiver: HookReceiver, name: str, type_: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "url": receiver.url(name), **fields}


def _attempts(rollout: dict[str, Any]) -> list[tuple[str, str, str, int | None]]:
    hooks = rollout["status"].get("hooks") or {}
    return [(a["hook"], a["point"], a["result"], a.get("code")) for a in hooks.get("attempts", [])]


def _events(env: Release, name: str) -> list[tuple[str, str, str]]:
    found = client.CoreV1Api(env.api).list_namespaced_event(
        env.namespace, field_selector=f"involvedObject.name={name}"
    )
    return [(str(e.type), str(e.reason), str(e.message)) for e in found.items]


def test_hooks_gate_and_follow_real_releases(release_env: Callable[..., Release]) -> None:
    """6.1.0 passes every gate after denials and a timed-out call, its failing post-rollout
    reported; 6.2.0's confirm-start at another namespace is refused until its deadline rolls
    back; 6.3.0's pre-rollout times out: rolled back, rollback and post-rollout called."""
    scripts: dict[str, list[int | str]] = {
        "start": [409, 200],
        "pre": [200],
        "step": [503, 200],
        "promo": ["hang", 200],
        "post": [500],
        "slowpre": ["hang"],
        "rb": [500],
        "post3": [204],
    }
    with serving(scripts) as receiver:
        env = release_env(controller_args=("--outbound-allow", f"{receiver.address}/32"))
        env.create(
            "6.1.0",
            steps=[{"setWeight": 50}],
            hooks=[
                _hook(receiver, "start", "confirm-start", interval="1s"),
                _hook(receiver, "pre", "pre-rollout"),
                _hook(receiver, "step", "confirm-step", interval="1s"),
                _hook(receiver, "promo", "confirm-promotion", interval="1s", callTimeout="1s"),
                _hook(receiver, "post", "post-rollout"),
            ],
        )
        done = env.wait("6.1.0", ENDED)
        assert done["status"]["phase"] == "Succeeded", done["status"]
        assert "post-rollout hook post failed" in done["status"]["message"]
        attempts = _attempts(done)
        assert ("start", "confirm-start", "Failed", 409) in attempts
        assert ("start", "confirm-start", "Passed", 200) in attempts
        assert ("pre", "pre-rollout", "Passed", 200) in attempts
        assert ("step", "confirm-step/0", "Failed", 503) in attempts
        assert ("step", "confirm-step/0", "Passed", 200) in attempts
        assert ("promo", "confirm-promotion", "TimedOut", None) in attempts
        assert ("promo", "confirm-promotion", "Passed", 200) in attempts
        assert ("post", "post-rollout", "Failed", 500) in attempts
        body = receiver.calls("promo")[-1]
        assert body["rollout"]["name"] == "6.1.0"
        assert body["hook"]["type"] == "confirm-promotion"
        reasons = {(kind, reason) for kind, reason, _ in _events(env, "6.1.0")}
        assert {("Normal", "HookNotConfirmed"), ("Normal", "HookPassed")} <= reasons
        assert ("Warning", "HookFailed") in reasons
        image = env.deployment("podinfo").spec.template.spec.containers[0].image
        assert image.endswith(":6.1.0")

        env.create(
            "6.2.0",
            hooks=[
                {
                    "name": "elsewhere",
                    "type": "confirm-start",
                    "url": "http://checks.kube-system.svc:8080/gate",
                    "interval": "1s",
                    "timeout": "3s",
                    "onTimeout": "Rollback",
                }
            ],
        )
        refused = env.wait("6.2.0", ENDED)
        assert refused["status"]["phase"] == "RolledBack", refused["status"]
        # Each call is refused; one still running when the deadline passed is abandoned.
        tried = refused["status"]["hooks"]["attempts"]
        assert {a["hook"] for a in tried} == {"elsewhere"}
        assert {a["result"] for a in tried} <= {"Refused", "Lost"}
        refusals = [a["message"] for a in tried if a["result"] == "Refused"]
        assert len(refusals) >= 2, tried
        assert all("only Services in namespace" in m for m in refusals), refusals
        assert "HookDeadlineExceeded" in {r for _, r, _ in _events(env, "6.2.0")}
        assert env.canary_weight() == 0

        env.create(
            "6.3.0",
            hooks=[
                _hook(receiver, "slowpre", "pre-rollout", callTimeout="1s"),
                _hook(receiver, "rb", "rollback"),
                _hook(receiver, "post3", "post-rollout"),
            ],
        )
        rolled_back = env.wait("6.3.0", ENDED)
        status = rolled_back["status"]
        assert status["phase"] == "RolledBack", status
        assert "pre-rollout hook failed" in status["message"]
        assert "rollback hook rb failed" in status["message"]
        attempts = _attempts(rolled_back)
        assert ("slowpre", "pre-rollout", "TimedOut", None) in attempts
        assert ("rb", "rollback", "Failed", 500) in attempts
        assert ("post3", "post-rollout", "Passed", 204) in attempts
        assert len(receiver.calls("rb")) == 1
        assert env.canary_weight() == 0
        image = env.deployment("podinfo").spec.template.spec.containers[0].image
        assert image.endswith(":6.1.0")
