"""Least privilege, derived: the rules of the chart's ClusterRole and Lease Role are exactly the
(verb, group, resource) the controller's ServiceAccounts called during this session's e2e tests,
as the API server's audit log records them — a call the rules lack fails the test, and so does
a rule nothing called, unless it is one of the few listed below with the reason it cannot show.

Runs last among the e2e tests (see conftest) and needs them in the same session.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bench.accounts import audit_events, resource_of
from devenv import layout
from tests.integration.conftest import Cluster
from tests.integration.serviceaccount import DEPLOY

pytestmark = pytest.mark.integration

Call = tuple[str, str, str]  # verb, API group, resource[/subresource]

# The controllers' accounts: the cluster-wide install's (canary-system/canary) and the
# namespaced installs' of the e2e tests (canary-ns-*/canary); other tests' accounts do not count.
CONTROLLER = re.compile(r"^system:serviceaccount:canary-[a-z0-9-]+:canary$")

# Granted but not called by the e2e run, each for a reason the run cannot show.
JUSTIFIED: dict[Call, str] = {
    **{
        (verb, "policy.linkerd.io", "httproutes"): "Linkerd's own HTTPRoute version "
        "(spec.traffic.apiVersion: policy.linkerd.io/v1beta3); the e2e routes are Gateway API's"
        for verb in ("list", "watch", "create", "patch")
    },
    ("get", "canary.dev", "rollouts"): "the HTTP API reads single Rollouts for its callers "
    "(tests/api); the controller reads them from its cache",
    ("get", "canary.dev", "rolloutpolicies"): "the HTTP API reads a Rollout's policy for its "
    "callers (tests/api); the controller reads them from its cache",
    ("patch", "canary.dev", "rollouts"): "people's commands through the controller's HTTP API "
    "(approve/abort/… are annotations; tests/api); the e2e tests annotate as the admin",
    ("create", "canary.dev", "rollouts"): "undo through the controller's HTTP API creates the "
    "Rollout for a caller RBAC lets create one (tests/api); the e2e tests call no API endpoint",
    ("delete", "canary.dev", "rollouts"): "retention deletes finished Rollouts beyond "
    "--keep-finished (20); no e2e target has that many",
    ("create", "authentication.k8s.io", "tokenreviews"): "the HTTP API reviews its callers' "
    "tokens (tests/api); the e2e tests call no API endpoint",
    ("create", "authorization.k8s.io", "subjectaccessreviews"): "the HTTP API asks RBAC what "
    "its callers may do (tests/api)",
    **{
        (verb, "autoscaling", "horizontalpodautoscalers"): "the canary's own autoscaler, made "
        "only for a target with a HorizontalPodAutoscaler; the e2e targets have none "
        "(tests/integration/test_canary_gets_its_own_autoscaler.py writes one through the same "
        "adapter, with kube-controller-manager acting on it)"
        for verb in ("create", "update", "delete")
    },
    ("update", "", "services"): "replacing the -stable/-canary Services' selectors when the apex "
    "Service's selector changes (a patch would keep the old keys)",
}


def _granted() -> set[Call]:
    """The rules of every role deploy/ binds to the controller's ServiceAccount (the approver
    and operator ClusterRoles are for people and bound to no one)."""
    docs = [d for d in yaml.safe_load_all((DEPLOY / "canary.yaml").read_text()) if d]
    bound = {
        (doc["roleRef"]["kind"], doc["roleRef"]["name"])
        for doc in docs
        if doc["kind"] in ("ClusterRoleBinding", "RoleBinding")
        and any(
            subject["kind"] == "ServiceAccount" and subject["name"] == "canary"
            for subject in doc["subjects"]
        )
    }
    rules = [
        rule
        for doc in docs
        if (doc["kind"], doc["metadata"]["name"]) in bound
        for rule in doc["rules"]
    ]
    return {
        (verb, group, resource)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _called(log: Path, offset: int) -> dict[Call, set[str]]:
    """Every resource call of a controller account since ``offset``, with where and who."""
    called: dict[Call, set[str]] = {}
    for entry in audit_events(log, offset):
        user = entry["user"]["username"]
        ref = entry.get("objectRef")
        if not CONTROLLER.match(user) or ref is None:
            continue
        call = (entry["verb"], ref.get("apiGroup", ""), resource_of(ref))
        code = entry.get("responseStatus", {}).get("code")
        called.setdefault(call, set()).add(f"{user} in {ref.get('namespace', '*')} -> {code}")
    return called


def test_the_rules_are_exactly_what_the_controller_called(
    cluster: Cluster, audit_offset: int
) -> None:
    """No call is missing from the rules; no rule goes uncalled without a stated reason."""
    log = layout.DevDir(cluster.dev_dir).audit_log
    assert log.exists(), (
        f"{log} is missing: the dev environment predates audit logging; "
        "restart it (make dev-down dev-up)"
    )
    called = _called(log, audit_offset)
    assert called, "no controller call was audited: run this with the other e2e tests"
    granted = _granted()
    missing = {call: sorted(where) for call, where in called.items() if call not in granted}
    assert not missing, f"the controller called what its RBAC does not grant: {missing}"
    unused = granted - set(called) - set(JUSTIFIED)
    assert not unused, f"granted but never called (remove, or justify in JUSTIFIED): {unused}"
    stale = set(JUSTIFIED) - granted
    assert not stale, f"JUSTIFIED names rules the chart no longer grants: {stale}"
