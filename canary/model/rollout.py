"""The Rollout (one per release) and RolloutPolicy resources, and how the two combine.

Pure: parsing and merging only. The CRDs in ``crds/`` are generated from these classes
(``canary.model.crdgen``), so the schema and the models cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from canary.model.base import DERIVED_SUFFIX_ROOM, Name, ServiceName, Wire
from canary.model.policy import PolicyFields, RolloutPolicySpec
from canary.model.status import RolloutStatus
from canary.model.template import Image, TemplatePatch

GROUP = "canary.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
ROLLOUT_LABEL = f"{GROUP}/rollout"
"""The label naming the Rollout on the objects canary makes for it (its canary Deployment)."""
MANAGED_BY = {"app.kubernetes.io/managed-by": "canary"}
"""The label on every object canary creates (and so may change)."""


ROLLOUT_NAME_MESSAGE = (
    "a Rollout's name has at most 63 characters: the canary Deployment carries it as a label value"
)


class ObjectMeta(Wire):
    """The parts of Kubernetes object metadata canary reads."""

    model_config = ConfigDict(extra="ignore")

    name: Name
    namespace: str = "default"
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    creation_timestamp: datetime | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class TargetRef(Wire):
    """The stable workload this release changes."""

    kind: Literal["Deployment"] = "Deployment"
    name: Name

    @field_validator("name")
    @classmethod
    def _canary_name_fits(cls, name: str) -> str:
        # Linkerd labels each pod with its Deployment's name (the `deployment` label of its
        # metrics), and a label value holds at most 63 characters.
        if len(name) > 63 - DERIVED_SUFFIX_ROOM:
            raise ValueError(
                f"{name}-canary would be longer than a Deployment name Linkerd can label "
                f"(63 characters): use at most {63 - DERIVED_SUFFIX_ROOM}"
            )
        return name


class Release(Wire):
    """What this release changes in the stable pod template."""

    images: dict[ServiceName, Image] | None = Field(
        default=None, max_length=32, description="New image per container name."
    )
    template_patch: TemplatePatch | None = Field(
        default=None,
        description="Strategic-merge patch of the pod template, for env or config changes. "
        "Only containers' image, env, args and resources, and the pod's labels and annotations "
        "(not linkerd.io, canary.dev, AppArmor or seccomp keys) may change.",
    )
    undo_of: Name | None = Field(
        default=None,
        description="This release is an undo back to the template that Rollout promoted "
        "(canary undo writes it): the policy's undo.steps apply instead of its steps.",
    )

    @model_validator(mode="after")
    def _changes_something(self) -> Release:
        if not self.images and not self.template_patch:
            raise ValueError("a release changes something: set images, templatePatch, or both")
        return self


class PolicyRef(Wire):
    """A RolloutPolicy in the Rollout's namespace."""

    name: Name


class RolloutSpec(PolicyFields):
    """Spec of a Rollout: the target, the release, and policy fields that override the policy."""

    target_ref: TargetRef
    release: Release
    policy_ref: PolicyRef | None = None


class Rollout(Wire):
    """One release of one workload."""

    model_config = ConfigDict(extra="ignore")

    api_version: Literal["canary.dev/v1alpha1"] = "canary.dev/v1alpha1"
    kind: Literal["Rollout"] = "Rollout"
    metadata: ObjectMeta
    spec: RolloutSpec
    status: RolloutStatus = Field(default_factory=RolloutStatus)

    @field_validator("metadata")
    @classmethod
    def _name_is_a_label_value(cls, metadata: ObjectMeta) -> ObjectMeta:
        # The canary Deployment carries the Rollout's name as a label value.
        if len(metadata.name) > 63:
            raise ValueError(ROLLOUT_NAME_MESSAGE)
        return metadata


def decided_alike(read: Rollout, now: Rollout) -> bool:
    """Whether a status decided from ``read`` still holds for ``now``, the same Rollout as
    stored later: true when only what the controller never decides from changed since (its
    labels, such as the ``canary.dev/target`` label retention adds, or other metadata), false
    when its uid, generation, spec, annotations (people's commands) or status did."""
    before, after = read.metadata, now.metadata
    return (
        (before.uid, before.generation, before.annotations)
        == (after.uid, after.generation, after.annotations)
        and read.spec == now.spec
        and read.status == now.status
    )


class RolloutPolicy(Wire):
    """The reusable release policy of one app."""

    model_config = ConfigDict(extra="ignore")

    api_version: Literal["canary.dev/v1alpha1"] = "canary.dev/v1alpha1"
    kind: Literal["RolloutPolicy"] = "RolloutPolicy"
    metadata: ObjectMeta
    spec: RolloutPolicySpec


_ROLLOUT_ONLY = frozenset({"targetRef", "release", "policyRef"})


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _set_fields(model: Wire) -> dict[str, Any]:
    # Only what the author wrote: a default in the Rollout must not override the policy.
    return model.model_dump(by_alias=True, exclude_unset=True, exclude_none=True, mode="json")


def merge_policy(spec: RolloutSpec, policy: RolloutPolicySpec | None) -> PolicyFields:
    """The policy the Rollout runs with: the referenced policy, overridden field by field by
    whatever the Rollout inlines. Objects merge deeply; lists (steps, metrics) replace whole.
    A Rollout's ``steps`` also replaces the policy's ``stepWeight/maxWeight`` and vice versa."""
    base = _set_fields(policy) if policy is not None else {}
    own = {k: v for k, v in _set_fields(spec).items() if k not in _ROLLOUT_ONLY}
    if "steps" in own:
        base = {k: v for k, v in base.items() if k not in ("stepWeight", "maxWeight")}
    if "stepWeight" in own or "maxWeight" in own:
        base = {k: v for k, v in base.items() if k != "steps"}
    return PolicyFields.model_validate(_deep_merge(base, own))
