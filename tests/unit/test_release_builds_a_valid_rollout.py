"""`canary release` arguments become a valid, sensibly named Rollout."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from canary.core import release
from canary.errors import InvalidSpec

NOW = datetime(2026, 11, 21, 8, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["deploy/podinfo", "deployment/podinfo", "deployments.apps/podinfo"]
)
def test_targets_name_a_deployment(text: str) -> None:
    """kubectl's spellings of a Deployment are accepted."""
    assert release.parse_target(text) == "podinfo"


@pytest.mark.parametrize("text", ["podinfo", "svc/podinfo", "deploy/"])
def test_other_targets_are_refused(text: str) -> None:
    """A bare name, another kind or no name is a usage error."""
    with pytest.raises(ValueError, match="deploy/NAME"):
        release.parse_target(text)


def test_images_and_env_parse() -> None:
    """CONTAINER=IMAGE and CONTAINER:NAME=VALUE split where they should (values may hold '=')."""
    assert release.parse_image("podinfo=ghcr.io/x/podinfo:6.1.0") == (
        "podinfo",
        "ghcr.io/x/podinfo:6.1.0",
    )
    assert release.parse_env("podinfo:OPTS=a=b") == ("podinfo", "OPTS", "a=b")
    assert release.parse_env("podinfo:EMPTY=") == ("podinfo", "EMPTY", "")


@pytest.mark.parametrize("text", ["podinfo", "=img", "podinfo="])
def test_bad_images_are_refused(text: str) -> None:
    """An image without a container name or reference is a usage error."""
    with pytest.raises(ValueError, match="CONTAINER=IMAGE"):
        release.parse_image(text)


@pytest.mark.parametrize("text", ["podinfo", "podinfo:X", ":X=1", "podinfo:=1"])
def test_bad_env_is_refused(text: str) -> None:
    """An env setting without container, name or '=' is a usage error."""
    with pytest.raises(ValueError, match="CONTAINER:NAME=VALUE"):
        release.parse_env(text)


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("ghcr.io/stefanprodan/podinfo:6.1.0", "6.1.0"),
        ("localhost:5000/podinfo:v2", "v2"),
        ("localhost:5000/podinfo", None),
        ("podinfo:latest", None),
        ("podinfo@sha256:0123456789abcdef0123", "0123456789ab"),
        ("podinfo@sha256:", None),
    ],
)
def test_image_tag_finds_the_version(image: str, tag: str | None) -> None:
    """The tag, not a registry port; a digest's first 12 digits; nothing for latest."""
    assert release.image_tag(image) == tag


def test_names_come_from_the_tag_or_the_time() -> None:
    """podinfo + 6.1.0 → podinfo-6-1-0; no usable tag → a timestamp; always a DNS label."""
    assert release.release_name("podinfo", {"podinfo": "x/podinfo:6.1.0"}, NOW) == "podinfo-6-1-0"
    assert release.release_name("podinfo", {"podinfo": "podinfo"}, NOW) == "podinfo-20261121-080005"
    assert release.release_name("podinfo", {}, NOW) == "podinfo-20261121-080005"
    assert release.dns_name("__") == "release"
    assert len(release.dns_name("a" * 100)) == 63


def test_build_makes_a_rollout_with_images_env_policy_and_shorthand() -> None:
    """Every option lands in the spec; the policy defaults to the Deployment's name."""
    rollout = release.build(
        namespace="test",
        deployment="podinfo",
        images={"podinfo": "podinfo:6.1.0"},
        env={"podinfo": {"LOG": "debug"}},
        now=NOW,
        step_weight=10,
        max_weight=50,
    )
    assert rollout.metadata.name == "podinfo-6-1-0"
    assert rollout.metadata.namespace == "test"
    wire = rollout.wire()["spec"]
    assert wire["policyRef"] == {"name": "podinfo"}
    assert wire["release"]["templatePatch"] == {
        "spec": {"containers": [{"name": "podinfo", "env": [{"name": "LOG", "value": "debug"}]}]}
    }
    assert (wire["stepWeight"], wire["maxWeight"]) == (10, 50)


def test_build_with_explicit_name_and_policy() -> None:
    """--name and --policy are taken as given."""
    rollout = release.build(
        namespace="t",
        deployment="web",
        images={"web": "web:2"},
        env={},
        now=NOW,
        name="web-hotfix",
        policy="shared",
    )
    assert rollout.metadata.name == "web-hotfix"
    assert rollout.spec.policy_ref is not None
    assert rollout.spec.policy_ref.name == "shared"


def test_a_release_is_labelled_with_its_target() -> None:
    """canary.dev/target names the Deployment (left out when too long for a label value)."""
    made = release.build(namespace="t", deployment="web", images={"web": "w:2"}, env={}, now=NOW)
    assert made.metadata.labels == {"canary.dev/target": "web"}
    long = "w" * 64
    made = release.build(
        namespace="t", deployment=long, images={"web": "w:2"}, env={}, now=NOW, name="w-2"
    )
    assert made.metadata.labels == {}


def test_build_refuses_an_invalid_release_with_field_paths() -> None:
    """A release that changes nothing, or a bad name, is InvalidSpec naming the field."""
    with pytest.raises(InvalidSpec) as caught:
        release.build(namespace="t", deployment="web", images={}, env={}, now=NOW, name="Bad_Name")
    paths = {p.path for p in caught.value.problems}
    assert "metadata.name" in paths
    assert "spec.release" in paths
