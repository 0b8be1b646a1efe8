"""``bench.accounts.AuditLog`` counts one user's requests from the API server's JSON audit log:
what the scale harness attributes to the controller. Lines logged before it was made, other
users' requests, other resources, and a line the API server has not finished writing are not
counted (the last one is, once complete). ``audit_events``, which the e2e tests read the log
with, yields the complete events from an offset whose line holds a string."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.accounts import AuditLog, audit_events, resource_of

ME = "system:serviceaccount:scale-1:canary-scale"


def _event(user: str, verb: str, resource: str, subresource: str = "") -> bytes:
    ref: dict[str, Any] = {"resource": resource, "namespace": "scale-1", "name": "app-0"}
    if subresource:
        ref["subresource"] = subresource
    event = {"kind": "Event", "stage": "ResponseComplete", "verb": verb, "objectRef": ref}
    return json.dumps({**event, "user": {"username": user}}).encode() + b"\n"


def test_counts_only_the_users_requests_of_the_resources_since_it_was_made(
    tmp_path: Path,
) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(_event(ME, "get", "deployments"))  # before: not counted
    audit = AuditLog(log, ME, ("deployments", "rollouts"))
    assert audit.requests() == {}
    late = _event(ME, "update", "rollouts", "status")
    with log.open("ab") as handle:
        handle.write(_event(ME, "get", "deployments"))
        handle.write(
            _event("system:serviceaccount:kube-system:namespace-controller", "get", "deployments")
        )
        handle.write(_event(ME + "x", "get", "deployments"))
        handle.write(_event(ME, "get", "secrets"))
        handle.write(_event(ME, "patch", "deployments", "scale"))
        handle.write(late[:20])  # the API server is writing this line
    first = audit.requests()
    assert first == {("GET", "deployments"): 1, ("PATCH", "deployments/scale"): 1}
    with log.open("ab") as handle:
        handle.write(late[20:])
    assert audit.requests() == {**first, ("PUT", "rollouts/status"): 1}


def test_audit_events_are_the_complete_lines_after_the_offset_that_hold_the_string(
    tmp_path: Path,
) -> None:
    log = tmp_path / "audit.log"
    before = _event(ME, "get", "deployments")
    other = _event("system:kube-controller-manager", "list", "leases")
    partial = _event(ME, "create", "events")
    log.write_bytes(before + _event(ME, "patch", "deployments", "scale") + other + partial[:30])
    mine = list(audit_events(log, len(before), "canary-scale"))
    assert [(e["verb"], resource_of(e["objectRef"])) for e in mine] == [
        ("patch", "deployments/scale")
    ]
    assert [e["verb"] for e in audit_events(log, 0)] == ["get", "patch", "list"]
