"""The chaos test's judges: pure functions over what it recorded, so each can be shown to catch
the failure it looks for (tests/unit/test_chaos_judges_catch_invalid_states.py).

- ``route_problems``: a route's weights are integers in 0–100 summing to 100 in every rule that
  names canary's Services.
- ``walk_problems``: the canary weights one route went through, repeats dropped, split at 0: each
  run is a prefix of the step list (no step skipped, none repeated out of order), 0 after it.
- ``blind_advances``: a canary weight that rose while Prometheus was down.
- ``stable_changes``: what a rollback changed on the stable Deployment (anything but status).
- ``writes_by_non_holders``: from the API server's audit log, a write by a controller replica
  that did not hold the Lease when it wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]

WRITES = {"create", "update", "patch", "delete", "deletecollection"}


@dataclass(frozen=True)
class Sample:
    """One stored version of a route: when it was seen, whose it is and its canary weight."""

    seen: float  # time.monotonic() when the version was read from etcd
    route: str
    canary: int


def _side(name: str) -> str | None:
    for side in ("stable", "canary"):
        if name.endswith(f"-{side}"):
            return side
    return None


def route_problems(route: Json) -> list[str]:
    """Every weight of a canary-steered rule is an integer in 0–100, and they sum to 100."""
    name = route.get("metadata", {}).get("name", "?")
    problems = []
    for index, rule in enumerate(route.get("spec", {}).get("rules") or []):
        refs = rule.get("backendRefs") or []
        if not any(_side(str(ref.get("name", ""))) for ref in refs):
            continue
        weights = [ref.get("weight", 1) for ref in refs]
        for ref, weight in zip(refs, weights, strict=True):
            if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
                problems.append(f"{name} rule {index}: {ref.get('name')} has weight {weight!r}")
        if all(isinstance(w, int) for w in weights) and sum(weights) != 100:
            problems.append(f"{name} rule {index}: weights {weights} sum to {sum(weights)}")
    return problems


def canary_weight(route: Json) -> int:
    """The weight of the ``-canary`` backends of the route's rules (0 when none)."""
    return sum(
        int(ref.get("weight", 1))
        for rule in route.get("spec", {}).get("rules") or []
        for ref in rule.get("backendRefs") or []
        if _side(str(ref.get("name", ""))) == "canary"
    )


def walk_problems(weights: Sequence[int], steps: Sequence[int]) -> list[str]:
    """The canary weights one route took, in order, against the step weights: after dropping
    repeats, every run between two 0s is a non-empty prefix of ``steps``."""
    walk = [w for i, w in enumerate(weights) if i == 0 or weights[i - 1] != w]
    problems = []
    run: list[int] = []
    for weight in [*walk, 0]:
        if weight == 0:
            run = []
            continue
        run.append(weight)
        if list(steps[: len(run)]) != run:
            problems.append(f"weights went {run} (steps {list(steps)}) in walk {walk}")
            run = []
    return problems


def blind_advances(samples: Iterable[Sample], start: float, end: float) -> list[Sample]:
    """Samples in [start, end] whose canary weight rose from a step's (non-zero) weight: an
    advance needs a passed analysis. Starting the first step (from 0) needs none."""
    last: dict[str, int] = {}
    risen = []
    for sample in sorted(samples, key=lambda s: s.seen):
        before = last.get(sample.route, 0)
        if start <= sample.seen <= end and 0 < before < sample.canary:
            risen.append(sample)
        last[sample.route] = sample.canary
    return risen


def status_annotations(deployment: Json) -> set[str]:
    """Annotations written through the status subresource. Its strategy keeps annotations, and
    kube-controller-manager's deployment controller records ``deployment.kubernetes.io/revision``
    that way, a moment after it first sees a Deployment or a new template."""
    owned: set[str] = set()
    for entry in (deployment.get("metadata") or {}).get("managedFields") or []:
        if entry.get("subresource") == "status":
            fields = ((entry.get("fieldsV1") or {}).get("f:metadata") or {}).get("f:annotations")
            owned |= {key.removeprefix("f:") for key in fields or {}}
    return owned


def _unchanged_part(deployment: Json, ignored: set[str]) -> Json:
    """A Deployment without what its status writes change (status, resourceVersion, the
    managedFields entries of the status subresource and the annotations they own)."""
    metadata = dict(deployment.get("metadata") or {})
    metadata.pop("resourceVersion", None)
    metadata["managedFields"] = [
        entry
        for entry in metadata.get("managedFields") or []
        if entry.get("subresource") != "status"
    ]
    annotations = {
        key: value
        for key, value in (metadata.get("annotations") or {}).items()
        if key not in ignored
    }
    metadata["annotations"] = annotations or None
    return {"metadata": metadata, "spec": deployment.get("spec")}


def stable_changes(before: Json, after: Json) -> list[str]:
    """What changed on the stable Deployment between two reads, status aside: its generation,
    pod template, labels, annotations or a spec/metadata write (managedFields)."""
    by_status = status_annotations(before) | status_annotations(after)
    old, new = _unchanged_part(before, by_status), _unchanged_part(after, by_status)
    changed = []
    for key in ("generation", "labels", "annotations", "managedFields"):
        if old["metadata"].get(key) != new["metadata"].get(key):
            changed.append(f"metadata.{key}")
    for key in sorted(set(old["spec"] or {}) | set(new["spec"] or {})):
        if (old["spec"] or {}).get(key) != (new["spec"] or {}).get(key):
            changed.append(f"spec.{key}")
    return changed


def _is_lease(event: Json, lease: tuple[str, str]) -> bool:
    ref = event.get("objectRef") or {}
    return ref.get("resource") == "leases" and (ref.get("namespace"), ref.get("name")) == lease


def writes_by_non_holders(events: Iterable[Json], agents: str, lease: tuple[str, str]) -> list[str]:
    """Audit events in the order the API server received them: every write by a controller
    process (``userAgent`` starting with ``agents``; each process has its own) other than the
    one whose write to the Lease last succeeded."""
    holder: str | None = None
    problems = []
    for event in sorted(events, key=lambda e: str(e.get("requestReceivedTimestamp"))):
        replica = str(event.get("userAgent", ""))
        if not replica.startswith(agents) or event.get("verb") not in WRITES:
            continue
        code = int((event.get("responseStatus") or {}).get("code") or 0)
        if _is_lease(event, lease):
            if 200 <= code < 300:
                holder = replica
            continue
        if replica != holder:
            ref = event.get("objectRef") or {}
            problems.append(
                f"{replica} ({event.get('verb')} {ref.get('resource')}/{ref.get('name')} at "
                f"{event.get('requestReceivedTimestamp')}) wrote while {holder} held the Lease"
            )
    return problems
