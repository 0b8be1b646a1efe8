"""``has_release``: the stable Deployment has a release when it names it and runs its images."""

from __future__ import annotations

from typing import Any

import pytest

from canary.adapters.kube.workloads import RELEASE_ANNOTATION, has_release, release_id
from tests.unit.fake_cluster import make_plan

PLAN = make_plan(release={"images": {"podinfo": "podinfo:6.1.0", "sidecar": "proxy:2"}})
ROLLOUT = "podinfo-6-1-0"


def _deployment(annotation: str | None, images: dict[str, str]) -> dict[str, Any]:
    annotations = {} if annotation is None else {RELEASE_ANNOTATION: annotation}
    containers = [{"name": name, "image": image} for name, image in images.items()]
    return {
        "metadata": {"annotations": annotations},
        "spec": {"template": {"spec": {"containers": containers}}},
    }


RELEASED = {"podinfo": "podinfo:6.1.0", "sidecar": "proxy:2", "extra": "other:1"}


@pytest.mark.parametrize(
    ("annotation", "images", "expected"),
    [
        (release_id(ROLLOUT, PLAN), RELEASED, True),
        (release_id(ROLLOUT, PLAN), {**RELEASED, "podinfo": "podinfo:6.0.0"}, False),
        (release_id(ROLLOUT, PLAN), {"podinfo": "podinfo:6.1.0"}, False),
        (release_id("podinfo-older", PLAN), RELEASED, False),
        (None, RELEASED, False),
    ],
    ids=["named-and-running", "git-image-back", "container-missing", "other-release", "unnamed"],
)
def test_release_needs_the_annotation_and_every_released_image(
    annotation: str | None, images: dict[str, str], expected: bool
) -> None:
    """Only the annotation of this release together with every released image counts."""
    assert has_release(_deployment(annotation, images), ROLLOUT, PLAN) is expected


PATCHED = make_plan(
    release={
        "templatePatch": {
            "metadata": {"annotations": {"config/hash": "abc"}, "labels": {"tier": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "podinfo",
                        "env": [{"name": "LEVEL", "value": "debug"}, {"name": "EMPTY"}],
                        "args": ["--port", "9898"],
                        "resources": {"limits": {"cpu": "0.5"}},
                    }
                ]
            },
        }
    }
)


def _patched_deployment(**changes: Any) -> dict[str, Any]:
    """The stable after the templatePatch-only release: as the API server stores it (an empty
    env value left out, the CPU limit written as 500m), with ``changes`` applied on top."""
    container: dict[str, Any] = {
        "name": "podinfo",
        "image": "podinfo:6.0.0",
        "env": [
            {"name": "LEVEL", "value": "debug"},
            {"name": "EMPTY"},
            {"name": "GIT", "value": "1"},
        ],
        "args": ["--port", "9898"],
        "resources": {"limits": {"cpu": "500m"}},
    }
    container.update(changes.get("container", {}))
    template_metadata = {
        "annotations": {"config/hash": "abc", "other": "x"},
        "labels": {"app": "podinfo", "tier": "web"},
    }
    template_metadata.update(changes.get("metadata", {}))
    return {
        "metadata": {"annotations": {RELEASE_ANNOTATION: release_id(ROLLOUT, PATCHED)}},
        "spec": {"template": {"metadata": template_metadata, "spec": {"containers": [container]}}},
    }


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, True),
        ({"metadata": {"annotations": {"config/hash": "old"}}}, False),
        ({"metadata": {"labels": {"app": "podinfo"}}}, False),
        ({"container": {"env": [{"name": "EMPTY"}]}}, False),
        ({"container": {"env": [{"name": "LEVEL", "value": "info"}, {"name": "EMPTY"}]}}, False),
        ({"container": {"args": ["--port", "8080"]}}, False),
        ({"container": {"name": "renamed"}}, False),
    ],
    ids=[
        "as-released",
        "annotation-back",
        "label-gone",
        "env-gone",
        "env-value-back",
        "args-back",
        "container-gone",
    ],
)
def test_a_template_patch_release_is_judged_by_what_it_set(
    changes: dict[str, Any], expected: bool
) -> None:
    """A release of a templatePatch alone (no images) is checked by the labels, annotations,
    env values and args it set; a resource quantity the API server rewrote does not count."""
    assert has_release(_patched_deployment(**changes), ROLLOUT, PATCHED) is expected
