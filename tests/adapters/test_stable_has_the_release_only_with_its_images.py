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
