"""What a release may change in the pod template: the allow-list of ``spec.release.templatePatch``.

The controller applies a release with its own cluster-wide Deployment rights, so whatever a
Rollout's author may put here is what they may run. Only these fields pass: per container its
``image``, ``env`` (plain values), ``args`` and ``resources``; on the pod template its labels and
annotations, except keys that steer the mesh, the node's security profiles or canary itself
(:data:`DENIED_KEY`). Everything else — ``serviceAccountName``, volumes, ``hostPID``, security
contexts, ``valueFrom`` — is an unknown field, refused with its path by ``canary lint``, by the
API server (the generated CRD schema and its CEL rules) and by the controller (which parses every
Rollout through these models). Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from canary.model.base import ServiceName, Wire

DENIED_KEY = (
    r"^(([a-z0-9-]+\.)*linkerd\.io|([a-z0-9-]+\.)*canary\.dev"
    r"|([a-z0-9-]+\.)*apparmor\.security\.beta\.kubernetes\.io"
    r"|([a-z0-9-]+\.)*seccomp\.security\.alpha\.kubernetes\.io)/"
)
"""Label and annotation keys a release may not set: Linkerd's (``linkerd.io/*``,
``config.linkerd.io/*``: injection, proxy config, skipped ports), canary's own, AppArmor and
seccomp profiles."""

ALLOWED_PREFIX = "sim.canary.dev/"
"""The mesh emulator's behaviour annotations (they do nothing where the emulator does not run)."""

_DENIED = re.compile(DENIED_KEY)
_MAX_KEYS = 64


def _allowed_keys(values: dict[str, str]) -> dict[str, str]:
    denied = sorted(k for k in values if _DENIED.match(k) and not k.startswith(ALLOWED_PREFIX))
    if denied:
        raise ValueError(
            f"{', '.join(denied)}: a release may not set linkerd.io, canary.dev, AppArmor or "
            "seccomp keys"
        )
    return values


_KEYS_RULE = {
    "rule": f"self.all(k, size(k) <= 317 && "
    f"(!k.matches(r'{DENIED_KEY}') || k.startsWith('{ALLOWED_PREFIX}')))",
    "message": "a release may not set linkerd.io, canary.dev, AppArmor or seccomp keys",
}

LabelKey = Annotated[str, Field(min_length=1, max_length=317)]
Metadata = Annotated[
    dict[LabelKey, Annotated[str, Field(max_length=4096)]],
    Field(max_length=_MAX_KEYS),
    AfterValidator(_allowed_keys),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": _MAX_KEYS,
            "additionalProperties": {"type": "string", "maxLength": 4096},
            "x-kubernetes-validations": [_KEYS_RULE],
        }
    ),
]

_QUANTITY = re.compile(r"^[+]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


def _quantity(value: object) -> str | int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**18:
        return value
    if isinstance(value, str) and len(value) <= 64 and _QUANTITY.match(value):
        return value
    raise ValueError(f"{str(value)[:40]!r} is not a resource quantity; write it like 500m or 128Mi")


Quantity = Annotated[
    str | int,
    BeforeValidator(_quantity),
    WithJsonSchema({"x-kubernetes-int-or-string": True}),
]


class EnvVar(Wire):
    """An environment variable with a plain value (``valueFrom`` could read any Secret)."""

    name: str = Field(min_length=1, max_length=256, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    value: str = Field(default="", max_length=32768)


ResourceName = Annotated[
    str, Field(min_length=1, max_length=253, pattern=r"^[a-zA-Z0-9]([-a-zA-Z0-9_./]*[a-zA-Z0-9])?$")
]


class Resources(Wire):
    """Requests and limits of a container."""

    limits: dict[ResourceName, Quantity] | None = Field(default=None, max_length=16)
    requests: dict[ResourceName, Quantity] | None = Field(default=None, max_length=16)


Image = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^\s]+$")]


class ContainerPatch(Wire):
    """What a release may change in one container, found by its name."""

    name: ServiceName
    image: Image | None = None
    env: list[EnvVar] | None = Field(default=None, max_length=128)
    args: list[Annotated[str, Field(max_length=4096)]] | None = Field(default=None, max_length=128)
    resources: Resources | None = None


class PodSpecPatch(Wire):
    """The pod spec part of a release: its containers only."""

    containers: list[ContainerPatch] | None = Field(default=None, max_length=32)


class PodMetadataPatch(Wire):
    """The pod template's labels and annotations a release adds or changes."""

    labels: Metadata | None = None
    annotations: Metadata | None = None


class TemplatePatch(Wire):
    """A strategic-merge patch of the pod template, limited to the allow-list above."""

    metadata: PodMetadataPatch | None = None
    spec: PodSpecPatch | None = None

    def patch(self) -> dict[str, Any]:
        """The patch as the API server takes it (camelCase, unset fields left out)."""
        return self.wire()


ALLOWED_FIELDS = (
    "metadata.labels, metadata.annotations, and per container (spec.containers[]) "
    "name, image, env (name, value), args and resources"
)
"""How error messages name the allow-list."""
