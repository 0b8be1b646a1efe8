"""Every duration, count, URL and derived name in a spec is bounded, parsing fails only with a
validation error at the field, and a release's templatePatch may change only the allow-list."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from canary.adapters.kube.workloads import release_patch
from canary.core import commands, lint, plan
from canary.model.rollout import Rollout, RolloutSpec

SPEC: dict[str, Any] = {
    "targetRef": {"name": "podinfo"},
    "release": {"images": {"podinfo": "ghcr.io/stefanprodan/podinfo:6.1.0"}},
    "service": {"name": "podinfo", "port": 9898},
}


def _spec(**extra: Any) -> dict[str, Any]:
    return {**SPEC, **extra}


def _errors(spec: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        RolloutSpec.model_validate(spec)
    return [(lint.field_path(e["loc"]), str(e["msg"])) for e in caught.value.errors()]


LONG = "a" * 57


@pytest.mark.parametrize(
    ("spec", "path", "message"),
    [
        (_spec(analysis={"interval": "99999999999h"}), "analysis.interval", "not a duration"),
        (_spec(analysis={"interval": "999999h"}), "analysis.interval", "at most 1h"),
        (_spec(analysis={"interval": "500ms"}), "analysis.interval", "at least 1s"),
        (_spec(analysis={"interval": "0s"}), "analysis.interval", "at least 1s"),
        (
            _spec(steps=[{"setWeight": 5}, {"pause": {"duration": "70000000h"}}]),
            "steps[1].pause.duration",
            "not a duration",
        ),
        (
            _spec(steps=[{"setWeight": 5}, {"pause": {"duration": "721h"}}]),
            "steps[1].pause.duration",
            "at most 720h",
        ),
        (
            _spec(steps=[{"pause": {"timeout": "999999h"}}, {"setWeight": 5}]),
            "steps[0].pause.timeout",
            "at most 720h",
        ),
        (_spec(analysis={"noData": {"timeout": "800h"}}), "analysis.noData.timeout", "720h"),
        (
            _spec(approvals={"beforePromotion": {"timeout": "1000h"}}),
            "approvals.beforePromotion.timeout",
            "720h",
        ),
        (_spec(steps=[{"setWeight": 5}] * 101), "steps", "at most 100 items"),
        (_spec(analysis={"minRequestsPerStep": 10**12}), "analysis.minRequestsPerStep", "less"),
        (_spec(analysis={"latency": {"maxMs": 10**12}}), "analysis.latency.maxMs", "less"),
        (
            _spec(analysis={"compareWithStable": {"holdAbove": 1e300}}),
            "analysis.compareWithStable.holdAbove",
            "less",
        ),
        (
            _spec(analysis={"metrics": [{"name": "m", "query": "up", "max": float("inf")}]}),
            "analysis.metrics[0].max",
            "finite",
        ),
        (
            _spec(analysis={"metrics": [{"name": "m", "query": "x" * 5000, "max": 1}]}),
            "analysis.metrics[0].query",
            "at most 4096",
        ),
        (
            _spec(notifications=[{"type": "webhook", "url": "https://u:p@hooks.example.com/x"}]),
            "notifications[0].url",
            "should match pattern",
        ),
        (
            _spec(notifications=[{"type": "webhook", "url": "file:///etc/passwd"}]),
            "notifications[0].url",
            "should match pattern",
        ),
        (
            _spec(notifications=[{"type": "webhook", "url": "https://x.example.com"}] * 11),
            "notifications",
            "at most 10",
        ),
        (_spec(service={"name": LONG, "port": 80}), "service.name", f"{LONG}-stable"),
        (_spec(targetRef={"name": LONG}), "targetRef.name", f"{LONG}-canary"),
        (
            _spec(release={"images": {"podinfo": "bad image"}}),
            "release.images.podinfo",
            "pattern",
        ),
    ],
)
def test_out_of_bounds_values_fail_at_their_field(
    spec: dict[str, Any], path: str, message: str
) -> None:
    """Each unbounded or unparseable value is a ValidationError at its field, never a crash."""
    assert any(p == path and message in m for p, m in _errors(spec)), _errors(spec)


def test_the_largest_durations_the_pattern_allows_still_parse() -> None:
    """Six-digit parts of every unit parse to a timedelta and are then refused by the bound."""
    errors = _errors(_spec(analysis={"interval": "999999h999999m999999s999999ms"}))
    assert errors == [("analysis.interval", "Value error, must be at most 1h")]


def test_a_long_rollout_name_is_refused() -> None:
    """The canary Deployment carries the Rollout's name as a label value: 63 characters at most."""
    document = {"metadata": {"name": "r" * 64}, "spec": SPEC}
    with pytest.raises(ValidationError, match="at most 63 characters"):
        Rollout.model_validate(document)


@pytest.mark.parametrize(
    "at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "9" * 10000]
)
def test_command_times_without_a_utc_equivalent_are_ignored(at: str) -> None:
    """A command whose 'at' cannot be placed in UTC is left out with a reason, not raised."""
    annotations = {commands.key("approve"): f'{{"at": "{at}", "actor": "mallory"}}'}
    assert commands.decode(annotations) == ()
    (problem,) = commands.ignored(annotations)
    assert problem.path == "metadata.annotations[canary.dev/approve]"
    assert len(problem.message) < 200


def _patched(patch: dict[str, Any]) -> list[tuple[str, str]]:
    return _errors(_spec(release={"templatePatch": patch}))


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ({"spec": {"serviceAccountName": "cluster-admin"}}, "serviceAccountName"),
        ({"spec": {"hostPID": True}}, "hostPID"),
        ({"spec": {"hostNetwork": True}}, "hostNetwork"),
        ({"spec": {"volumes": [{"name": "r", "hostPath": {"path": "/"}}]}}, "volumes"),
        ({"spec": {"nodeName": "control-plane"}}, "nodeName"),
        (
            {"spec": {"containers": [{"name": "app", "securityContext": {"privileged": True}}]}},
            "containers[0].securityContext",
        ),
        (
            {"spec": {"containers": [{"name": "app", "volumeMounts": [{"name": "r"}]}]}},
            "containers[0].volumeMounts",
        ),
        (
            {"spec": {"containers": [{"name": "app", "command": ["/bin/sh"]}]}},
            "containers[0].command",
        ),
        (
            {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "x"}}}],
                        }
                    ]
                }
            },
            "containers[0].env[0].valueFrom",
        ),
        ({"spec": {"initContainers": [{"name": "x", "image": "busybox"}]}}, "initContainers"),
    ],
)
def test_template_patch_outside_the_allow_list_is_refused(patch: dict[str, Any], path: str) -> None:
    """Pod-spec fields beyond containers' image/env/args/resources fail at their path."""
    full = f"release.templatePatch.spec.{path}"
    assert any(p == full for p, _ in _patched(patch)), _patched(patch)


@pytest.mark.parametrize(
    "key",
    [
        "linkerd.io/inject",
        "config.linkerd.io/skip-inbound-ports",
        "config.alpha.linkerd.io/proxy-wait-before-exit-seconds",
        "canary.dev/rollout",
        "container.apparmor.security.beta.kubernetes.io/app",
        "seccomp.security.alpha.kubernetes.io/pod",
    ],
)
@pytest.mark.parametrize("where", ["labels", "annotations"])
def test_template_patch_may_not_set_denied_keys(key: str, where: str) -> None:
    """Mesh, canary, AppArmor and seccomp keys are refused on the pod template's metadata."""
    errors = _patched({"metadata": {where: {key: "x"}}})
    assert any(p == f"release.templatePatch.metadata.{where}" and key in m for p, m in errors), (
        errors
    )


def test_allowed_template_patch_reaches_the_release_patch() -> None:
    """Image, env, args, resources, labels and the emulator's annotations pass unchanged."""
    patch = {
        "metadata": {
            "labels": {"team": "web"},
            "annotations": {"sim.canary.dev/error-rate": "0.5", "example.com/owner": "web"},
        },
        "spec": {
            "containers": [
                {
                    "name": "podinfo",
                    "env": [{"name": "LEVEL", "value": "debug"}],
                    "args": ["--port=9898"],
                    "resources": {
                        "limits": {"cpu": "500m", "memory": "128Mi"},
                        "requests": {"cpu": 1},
                    },
                }
            ]
        },
    }
    rollout = Rollout.model_validate(
        {
            "metadata": {"name": "r", "namespace": "t"},
            "spec": _spec(release={"templatePatch": patch}),
        }
    )
    built = plan.build(rollout, None)
    assert release_patch(built) == {"spec": {"template": patch}}


def test_resource_quantities_must_be_quantities() -> None:
    """A resource value that is not a Kubernetes quantity fails at its key."""
    patch = {"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "lots"}}}]}}
    errors = _patched(patch)
    assert any(
        p == "release.templatePatch.spec.containers[0].resources.limits.cpu" for p, _ in errors
    )


def test_lint_names_a_patched_field_outside_the_allow_list_with_what_may_be_set() -> None:
    """`canary lint`'s answer for a templatePatch field it refuses says what a release may set."""
    spec = _spec(release={"templatePatch": {"spec": {"serviceAccountName": "cluster-admin"}}})
    with pytest.raises(ValidationError) as caught:
        RolloutSpec.model_validate(spec)
    (problem,) = lint.problems_of(caught.value)
    assert problem.path == "release.templatePatch.spec.serviceAccountName"
    assert problem.message == "a release may not change this field"
    assert "templatePatch may set only" in problem.hint
