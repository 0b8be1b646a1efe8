"""Going back to the previous release: what a Succeeded Rollout records of the template it
promoted, which earlier release an undo goes back to, and the Rollout that does it.

Called by the workloads adapter (``record``, each time it reads a stable Deployment, so that the
machine can keep it in ``status.promoted`` when a release succeeds), and by ``canary undo``
(``canary.console``) and the HTTP API (``choose`` and ``build``). Pure: the caller lists the
Rollouts, passes ``now`` and creates the object.

An undo is a release like any other — a new Rollout, created with the rights of whoever asks,
through the same approvals and analysis — whose release is the earlier template and whose steps
are the policy's ``undo.steps`` when it has them. Like ``kubectl rollout undo`` it goes back one
release: an undo of an undo returns to the release that was undone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from canary.core.history import TARGET_LABEL
from canary.core.lint import problems_of
from canary.core.release import dns_name
from canary.errors import InvalidSpec
from canary.model.rollout import Rollout
from canary.model.status import TERMINAL_PHASES
from canary.model.template import ALLOWED_PREFIX, DENIED_KEY, TemplatePatch

CHANGE_CAUSE = "kubernetes.io/change-cause"
"""Where an undo Rollout says who asked for it and why (kubectl's rollout-history annotation)."""

_DENIED = re.compile(DENIED_KEY)
_MAX_CAUSE = 1024


def _keys(values: object) -> dict[str, str] | None:
    """Labels or annotations a release may set (others are left to whoever owns them)."""
    if not isinstance(values, Mapping):
        return None
    kept = {
        str(k): str(v)
        for k, v in values.items()
        if not _DENIED.match(str(k)) or str(k).startswith(ALLOWED_PREFIX)
    }
    return kept or None


def _container(container: Mapping[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": container.get("name"), "image": container.get("image")}
    env = [
        {"name": e["name"], "value": e.get("value", "")}
        for e in container.get("env") or []
        if isinstance(e, Mapping) and "name" in e and "valueFrom" not in e
    ]
    if env:
        entry["env"] = env
    if container.get("args"):
        entry["args"] = list(container["args"])
    resources = {
        k: v for k, v in (container.get("resources") or {}).items() if k in ("limits", "requests")
    }
    if any(resources.values()):
        entry["resources"] = {k: v for k, v in resources.items() if v}
    return entry


def record(template: Mapping[str, Any]) -> TemplatePatch | None:
    """What a release can change of a Deployment's pod template (camelCase, as the API server
    returns it): every container's image, plain env values, args and resources, and the pod's
    labels and annotations but the keys a release may not set. None when it does not fit the
    release allow-list's bounds (then that release cannot be undone to)."""
    spec = template.get("spec") or {}
    metadata = template.get("metadata") or {}
    document: dict[str, Any] = {
        "spec": {"containers": [_container(c) for c in spec.get("containers") or []]}
    }
    pod = {k: v for k in ("labels", "annotations") if (v := _keys(metadata.get(k)))}
    if pod:
        document["metadata"] = pod
    try:
        return TemplatePatch.model_validate(document)
    except ValidationError:
        return None


@dataclass(frozen=True)
class Undoing:
    """The release an undo leaves (``current``) and the one it goes back to (``earlier``)."""

    current: Rollout
    earlier: Rollout


def _finished(rollout: Rollout) -> tuple[datetime, datetime, str]:
    epoch = datetime.min.replace(tzinfo=UTC)
    return (
        rollout.status.finished_at or epoch,
        rollout.metadata.creation_timestamp or epoch,
        rollout.metadata.name,
    )


def choose(rollouts: Sequence[Rollout], target: str) -> Undoing:
    """The last two Succeeded releases of Deployment ``target``. Raises ValueError, with what
    to do instead, while a release of it runs or when there is nothing to go back to."""
    mine = [r for r in rollouts if r.spec.target_ref.name == target]
    running = [r for r in mine if r.status.phase not in TERMINAL_PHASES]
    if running:
        name, phase = running[0].metadata.name, running[0].status.phase
        raise ValueError(
            f"release {name} of deploy/{target} is {phase}: `canary abort {name}` sends all "
            "traffic back to stable; undo goes back to an earlier release once none is running"
        )
    done = sorted((r for r in mine if r.status.phase == "Succeeded"), key=_finished)
    if not done:
        raise ValueError(f"deploy/{target} has no Succeeded release to undo")
    if len(done) < 2:
        raise ValueError(
            f"deploy/{target} has one Succeeded release ({done[0].metadata.name}): there is no "
            "earlier release to go back to"
        )
    current, earlier = done[-1], done[-2]
    if earlier.status.promoted is None:
        raise ValueError(
            f"release {earlier.metadata.name} recorded no template (status.promoted is empty: "
            "it succeeded before canary recorded them, or its template is beyond what a release "
            "may set); release its images again with `canary release`"
        )
    return Undoing(current, earlier)


def build(
    undoing: Undoing,
    *,
    now: datetime,
    actor: str,
    comment: str = "",
    name: str | None = None,
) -> Rollout:
    """The Rollout that goes back to ``undoing.earlier``'s template, with the policy of the
    release it undoes (its policyRef and inlined fields). Raises InvalidSpec with field paths
    when the result would not be valid."""
    current, earlier = undoing.current, undoing.earlier
    promoted = earlier.status.promoted
    assert promoted is not None  # choose() refuses an earlier release without one
    target = current.spec.target_ref.name
    containers = (promoted.spec.containers if promoted.spec else None) or []
    images = {c.name: c.image for c in containers if c.image}
    rest = [
        c.wire()
        for c in (c.model_copy(update={"image": None}) for c in containers)
        if len(c.wire()) > 1
    ]
    patch: dict[str, Any] = {}
    if rest:
        patch["spec"] = {"containers": rest}
    if promoted.metadata is not None:
        patch["metadata"] = promoted.metadata.wire()
    release: dict[str, Any] = {"undoOf": earlier.metadata.name, "images": images}
    if patch:
        release["templatePatch"] = patch
    policy = current.spec.model_dump(
        by_alias=True, exclude_unset=True, exclude_none=True, mode="json"
    )
    spec = {**{k: v for k, v in policy.items() if k != "release"}, "release": release}
    why = f"canary undo to {earlier.metadata.name} by {actor or 'someone'}"
    document = {
        "metadata": {
            "name": name or dns_name(f"{target}-undo-{now:%Y%m%d-%H%M%S}"),
            "namespace": current.metadata.namespace,
            "labels": {TARGET_LABEL: target},
            "annotations": {CHANGE_CAUSE: f"{why}: {comment}"[:_MAX_CAUSE] if comment else why},
        },
        "spec": spec,
    }
    try:
        return Rollout.model_validate(document)
    except ValidationError as error:
        raise InvalidSpec(problems_of(error)) from error
