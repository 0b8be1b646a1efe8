"""The chaos test's judges catch what they look for: an invalid weight, a skipped step, an
advance while blind, a write to the stable Deployment, a write by a replica without the Lease."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.integration.e2e import chaos

LEASE = ("canary-system", "canary-controller")


def _route(*weights: Any) -> dict[str, Any]:
    names = ("app-stable", "app-canary", "app-other")
    refs = [
        {"name": name, "port": 80, **({} if weight is None else {"weight": weight})}
        for name, weight in zip(names, weights, strict=False)
    ]
    return {"metadata": {"name": "app"}, "spec": {"rules": [{"backendRefs": refs}]}}


def test_valid_route_weights_pass() -> None:
    """80/20 and 100/0 are valid; a rule naming none of canary's Services is not judged."""
    assert chaos.route_problems(_route(80, 20)) == []
    assert chaos.route_problems(_route(100, 0)) == []
    other = {"spec": {"rules": [{"backendRefs": [{"name": "x", "weight": 7}]}]}}
    assert chaos.route_problems(other) == []
    assert chaos.canary_weight(_route(80, 20)) == 20


@pytest.mark.parametrize(
    ("weights", "found"),
    [
        ((80, 30), "sum to 110"),
        ((101, -1), "weight 101"),
        ((120, -20), "weight -20"),
        ((50, 49), "sum to 99"),
        ((50, "50"), "weight '50'"),
        ((100, None), "sum to 101"),  # an unset weight is 1
    ],
)
def test_invalid_route_weights_are_caught(weights: tuple[Any, ...], found: str) -> None:
    """Weights outside 0–100, not integers, or not summing to 100 are each reported."""
    problems = chaos.route_problems(_route(*weights))
    assert any(found in problem for problem in problems), problems


@pytest.mark.parametrize(
    "weights",
    [
        [0, 20, 50, 100, 0],
        [20, 20, 50, 50, 0, 20, 0],
        [0, 20, 0, 20, 50, 0],
        [20, 50],  # still going
        [],
    ],
)
def test_walks_through_the_steps_pass(weights: list[int]) -> None:
    """Each run between 0s that is a prefix of the steps is a valid walk (repeats dropped)."""
    assert chaos.walk_problems(weights, [20, 50, 100]) == []


@pytest.mark.parametrize(
    "weights",
    [
        [0, 50, 100, 0],  # first step skipped
        [0, 20, 100, 0],  # middle step skipped
        [0, 20, 50, 20, 0],  # went back without rolling back
        [0, 20, 50, 100, 50, 0],
        [0, 20, 0, 50, 0],  # a second release starting past the first step
    ],
)
def test_skipped_or_reordered_steps_are_caught(weights: list[int]) -> None:
    """A run between 0s that is not a prefix of the steps is reported."""
    assert chaos.walk_problems(weights, [20, 50, 100]) != []


def test_only_rises_inside_the_blind_window_are_advances() -> None:
    """A rise from a step inside the window is an advance; starting the first step, rises
    outside the window and falls inside it are not."""
    samples = [
        chaos.Sample(1.0, "a", 20),
        chaos.Sample(5.0, "a", 0),  # a rollback while blind is no advance
        chaos.Sample(6.0, "b", 20),  # the first step needs no analysis
        chaos.Sample(7.0, "b", 50),  # advance while blind
        chaos.Sample(12.0, "b", 100),  # after the window
    ]
    assert chaos.blind_advances(samples, 4.0, 10.0) == [chaos.Sample(7.0, "b", 50)]
    assert chaos.blind_advances(samples[:2], 4.0, 10.0) == []


def _deployment() -> dict[str, Any]:
    return {
        "metadata": {
            "name": "app",
            "generation": 3,
            "resourceVersion": "100",
            "labels": {"app": "app"},
            "managedFields": [
                {"manager": "kubectl", "operation": "Update", "time": "t1"},
                {"manager": "kcm", "operation": "Update", "subresource": "status", "time": "t2"},
            ],
        },
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": "app:1"}]}}},
        "status": {"readyReplicas": 2},
    }


def test_status_writes_are_not_changes_to_the_stable_deployment() -> None:
    """A new status (and so resourceVersion and status managedFields) is not a change."""
    after = _deployment()
    after["metadata"]["resourceVersion"] = "140"
    after["metadata"]["managedFields"][1]["time"] = "t9"
    after["status"] = {"readyReplicas": 1}
    assert chaos.stable_changes(_deployment(), after) == []


def test_the_deployment_controllers_revision_annotation_is_a_status_write() -> None:
    """kube-controller-manager sets ``deployment.kubernetes.io/revision`` through the status
    subresource after a wave's snapshot may have been taken (seen in CI: seed 782584596). That
    is not a change; the same annotation written by another manager is."""
    owned: dict[str, Any] = {
        "f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}}
    }
    after = _deployment()
    after["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "1"}
    after["metadata"]["managedFields"][1]["fieldsV1"] = owned
    assert chaos.stable_changes(_deployment(), after) == []
    by_us = _deployment()
    by_us["metadata"]["annotations"] = {"canary.dev/touched": "yes"}
    by_us["metadata"]["managedFields"][1]["fieldsV1"] = owned
    assert chaos.stable_changes(_deployment(), by_us) == ["metadata.annotations"]


def test_writes_to_the_stable_deployment_are_caught() -> None:
    """A new template, generation, label or spec write is reported by name."""
    after = _deployment()
    after["spec"]["template"]["spec"]["containers"][0]["image"] = "app:2"
    after["metadata"]["generation"] = 4
    after["metadata"]["managedFields"].append({"manager": "canary", "time": "t3"})
    assert chaos.stable_changes(_deployment(), after) == [
        "metadata.generation",
        "metadata.managedFields",
        "spec.template",
    ]
    relabelled = copy.deepcopy(_deployment())
    relabelled["metadata"]["labels"]["canary.dev/x"] = "y"
    assert chaos.stable_changes(_deployment(), relabelled) == ["metadata.labels"]


def _event(at: str, agent: str, verb: str, resource: str, code: int = 200) -> dict[str, Any]:
    namespace, name = LEASE if resource == "leases" else ("ns", "app")
    return {
        "requestReceivedTimestamp": at,
        "userAgent": agent,
        "verb": verb,
        "objectRef": {"resource": resource, "namespace": namespace, "name": name},
        "responseStatus": {"code": code},
    }


def test_writes_of_the_lease_holder_pass() -> None:
    """The holder writes; the other replica only reads; after a handover the new holder."""
    events = [
        _event("t01", "canary/a_1", "update", "leases"),
        _event("t02", "canary/a_1", "patch", "httproutes"),
        _event("t03", "canary/b_1", "get", "leases"),
        _event("t04", "canary/b_1", "update", "leases", code=409),
        _event("t05", "canary/a_1", "create", "events"),
        _event("t06", "kubectl", "patch", "rollouts"),  # not a controller
        _event("t07", "canary/b_1", "update", "leases"),
        _event("t08", "canary/b_1", "patch", "rollouts"),
    ]
    assert chaos.writes_by_non_holders(events, "canary/", LEASE) == []


def test_writes_without_the_lease_are_caught() -> None:
    """A write by a replica that lost the Lease, or that never held it, is reported."""
    events = [
        _event("t01", "canary/a_1", "update", "leases"),
        _event("t02", "canary/b_1", "patch", "httproutes"),  # never held it
        _event("t03", "canary/b_1", "update", "leases"),
        _event("t04", "canary/a_1", "patch", "rollouts"),  # lost it
        _event("t05", "canary/a_2", "update", "leases", code=409),  # restarted, refused
        _event("t06", "canary/a_2", "create", "events"),
    ]
    problems = chaos.writes_by_non_holders(events, "canary/", LEASE)
    assert [problem.split(" ")[0] for problem in problems] == [
        "canary/b_1",
        "canary/a_1",
        "canary/a_2",
    ]
