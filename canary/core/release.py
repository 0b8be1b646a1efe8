"""The Rollout that ``canary release`` creates: parsing its arguments, naming it, building it.

Called by ``canary.cli``. Pure: the caller passes ``now`` and creates the object. Argument
parsers raise ``ValueError`` with a message fit for a usage error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from canary.core.history import TARGET_LABEL
from canary.core.lint import problems_of
from canary.errors import InvalidSpec
from canary.model.rollout import Rollout

_DEPLOYMENT_KINDS = ("deploy", "deployment", "deployments", "deployment.apps", "deployments.apps")
_MAX_NAME = 63  # the name also goes into labels, whose values stop at 63 characters


def parse_target(text: str) -> str:
    """``deploy/podinfo`` (or ``deployment/podinfo``) → ``podinfo``."""
    kind, slash, name = text.rpartition("/")
    if not slash or kind.lower() not in _DEPLOYMENT_KINDS or not name:
        raise ValueError(f"{text!r} is not a Deployment; write deploy/NAME")
    return name


def parse_image(text: str) -> tuple[str, str]:
    """``CONTAINER=IMAGE`` → (container, image)."""
    container, equals, image = text.partition("=")
    if not equals or not container or not image:
        raise ValueError(f"{text!r}: write CONTAINER=IMAGE, e.g. podinfo=ghcr.io/org/podinfo:6.1.0")
    return container, image


def parse_env(text: str) -> tuple[str, str, str]:
    """``CONTAINER:NAME=VALUE`` → (container, name, value)."""
    container, colon, assignment = text.partition(":")
    name, equals, value = assignment.partition("=")
    if not colon or not equals or not container or not name:
        raise ValueError(f"{text!r}: write CONTAINER:NAME=VALUE, e.g. podinfo:LOG_LEVEL=debug")
    return container, name, value


def image_tag(image: str) -> str | None:
    """The part of an image reference that names the version: the tag, or the digest's first
    12 hex digits; None for an untagged or ``latest`` image."""
    repository, at, digest = image.partition("@")
    if at:
        return digest.rpartition(":")[2][:12] or None
    last = repository.rpartition("/")[2]
    _, colon, tag = last.partition(":")
    return tag if colon and tag and tag != "latest" else None


def dns_name(text: str) -> str:
    """``text`` as a DNS label: lower case, runs of other characters turned into one '-'."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower())[:_MAX_NAME].strip("-")
    return name or "release"


def release_name(deployment: str, images: Mapping[str, str], now: datetime) -> str:
    """``<deployment>-<tag>`` from the first container's image tag, else a timestamp."""
    tags = [image_tag(images[c]) for c in sorted(images)]
    suffix = next((t for t in tags if t), now.strftime("%Y%m%d-%H%M%S"))
    return dns_name(f"{deployment}-{suffix}")


def build(
    *,
    namespace: str,
    deployment: str,
    images: Mapping[str, str],
    env: Mapping[str, Mapping[str, str]],
    now: datetime,
    name: str | None = None,
    policy: str | None = None,
    step_weight: int | None = None,
    max_weight: int | None = None,
) -> Rollout:
    """The Rollout of one release; ``policy`` defaults to the Deployment's name (one policy per
    app). Raises InvalidSpec, with field paths, when the result would not be valid."""
    release: dict[str, Any] = {}
    if images:
        release["images"] = dict(images)
    if env:
        release["templatePatch"] = {
            "spec": {
                "containers": [
                    {"name": c, "env": [{"name": k, "value": v} for k, v in env[c].items()]}
                    for c in sorted(env)
                ]
            }
        }
    spec: dict[str, Any] = {
        "targetRef": {"kind": "Deployment", "name": deployment},
        "release": release,
        "policyRef": {"name": policy or deployment},
    }
    if step_weight is not None:
        spec["stepWeight"] = step_weight
    if max_weight is not None:
        spec["maxWeight"] = max_weight
    document = {
        "metadata": {
            "name": name or release_name(deployment, images, now),
            "namespace": namespace,
            # A label value stops at 63 characters; a longer Deployment name goes unlabelled.
            "labels": {TARGET_LABEL: deployment} if len(deployment) <= 63 else {},
        },
        "spec": spec,
    }
    try:
        return Rollout.model_validate(document)
    except ValidationError as error:
        raise InvalidSpec(problems_of(error)) from error
