"""The CustomResourceDefinitions of canary, derived from the pydantic models.

The models are the single source of truth: this module turns their JSON Schema into the
structural OpenAPI v3 schema Kubernetes wants, adds the CEL rules that span fields, printer
columns and the status subresource. ``canary.crdgen`` writes the result to ``crds/``; a check
in ``make lint`` fails when the files there differ from what the models say. Pure.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from canary.model.base import DERIVED_SUFFIX_ROOM
from canary.model.policy import ROUTE_VERSIONS, RolloutPolicySpec
from canary.model.rollout import GROUP, ROLLOUT_NAME_MESSAGE, VERSION, RolloutSpec
from canary.model.status import RolloutStatus

# Rules the API server checks on create and update. Each mirrors a model validator, so
# `canary lint` (offline, pydantic) and the API server (CEL) reject the same objects.
CEL_RULES: dict[str, list[dict[str, str]]] = {
    "Step": [
        {
            "rule": "has(self.setWeight) != has(self.pause)",
            "message": "a step has exactly one of setWeight or pause",
        }
    ],
    "Traffic": [
        {
            "rule": "!has(self.apiVersion) || "
            "((has(self.router) && self.router == 'TrafficSplit') == "
            "self.apiVersion.startsWith('split.smi-spec.io/'))",
            "message": "apiVersion does not serve this router: "
            + "; ".join(f"{r} takes {', '.join(v)}" for r, v in ROUTE_VERSIONS.items()),
        }
    ],
    "CustomMetric": [
        {
            "rule": "has(self.min) || has(self.max)",
            "message": "a metric check needs min, max, or both",
        }
    ],
    "Notification": [
        {
            "rule": "!(has(self.url) && has(self.urlFrom))",
            "message": "a notification has exactly one of url or urlFrom",
        },
        {
            "rule": "has(self.url) || has(self.urlFrom) || has(self.channel)",
            "message": "a notification has exactly one of url or urlFrom (slack: or a channel)",
        },
        {
            "rule": "!has(self.channel) || self.type == 'slack'",
            "message": "channel is for slack notifications only",
        },
    ],
    "Release": [
        {
            "rule": "(has(self.images) && size(self.images) > 0) || has(self.templatePatch)",
            "message": "a release changes something: set images, templatePatch, or both",
        }
    ],
    "PolicyFields": [
        {
            "rule": "!has(self.steps) || (!has(self.stepWeight) && !has(self.maxWeight))",
            "message": "use either steps or stepWeight/maxWeight, not both",
        }
    ],
}
CEL_RULES["ServiceRef"] = [
    {
        "rule": f"size(self.name) <= {63 - DERIVED_SUFFIX_ROOM}",
        "message": "name: <name>-stable and <name>-canary must fit a Service name (63 characters): "
        f"use at most {63 - DERIVED_SUFFIX_ROOM}",
    }
]
CEL_RULES["TargetRef"] = [
    {
        "rule": f"size(self.name) <= {63 - DERIVED_SUFFIX_ROOM}",
        "message": "name: <name>-canary must fit the label Linkerd puts on its pods (63 "
        f"characters): use at most {63 - DERIVED_SUFFIX_ROOM}",
    }
]
CEL_RULES["RolloutSpec"] = CEL_RULES["PolicyFields"]
CEL_RULES["RolloutPolicySpec"] = CEL_RULES["PolicyFields"]

_KEEP = (
    "description",
    "enum",
    "format",
    "maximum",
    "minimum",
    "maxLength",
    "minLength",
    "maxItems",
    "minItems",
    "maxProperties",
    "minProperties",
    "pattern",
)


class SchemaError(ValueError):
    """A model uses a shape that a structural Kubernetes schema cannot express."""


def _described(node: dict[str, Any]) -> dict[str, Any]:
    return {"description": node["description"]} if "description" in node else {}


def _scalar_facets(node: dict[str, Any], described: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {key: node[key] for key in _KEEP if key in node}
    if "const" in node:
        out["enum"] = [node["const"]]
    text = described or out.get("description")
    if text:
        out["description"] = " ".join(text.replace("``", "").split())
    if "exclusiveMinimum" in node:
        out["minimum"], out["exclusiveMinimum"] = node["exclusiveMinimum"], True
    if "exclusiveMaximum" in node:
        out["maximum"], out["exclusiveMaximum"] = node["exclusiveMaximum"], True
    return out


def _structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Convert one JSON Schema node (pydantic's dialect) to a structural OpenAPI v3 node."""
    rules: list[dict[str, str]] = []
    described = node.get("description")
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        rules = CEL_RULES.get(name, [])
        node = defs[name]
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise SchemaError(f"unions other than Optional[X] are not structural: {node}")
        return _structural({**options[0], **_described(node)}, defs)
    rules = [*node.get("x-kubernetes-validations", []), *rules]
    if node.get("x-kubernetes-int-or-string"):
        return {"x-kubernetes-int-or-string": True, **_scalar_facets(node, described)}
    out = _scalar_facets(node, described)
    kind = node.get("type", "string" if "enum" in out else "object")
    out["type"] = kind
    if kind == "array":
        out["items"] = _structural(node["items"], defs)
    if kind == "object":
        if "properties" in node:
            out["properties"] = {k: _structural(v, defs) for k, v in node["properties"].items()}
            if node.get("required"):
                out["required"] = list(node["required"])
        elif isinstance(node.get("additionalProperties"), dict):
            out["additionalProperties"] = _structural(node["additionalProperties"], defs)
        elif len(node.get("patternProperties", {})) == 1:
            # A map whose keys have a pattern: structural schemas check keys only through CEL.
            ((pattern, values),) = node["patternProperties"].items()
            out["additionalProperties"] = _structural(values, defs)
            longest = node.get("propertyNames", {}).get("maxLength", 253)
            rules = [
                *rules,
                {
                    "rule": f"self.all(k, size(k) <= {longest} && k.matches(r'{pattern}'))",
                    "message": f"every key has at most {longest} characters and matches {pattern}",
                },
            ]
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
    if rules:
        out["x-kubernetes-validations"] = rules
    return out


def structural(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a model, as a CRD's ``openAPIV3Schema`` node."""
    raw = model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    defs = dict(raw.get("$defs", {}))
    defs[model.__name__] = raw
    return _structural({"$ref": f"#/$defs/{model.__name__}"}, defs)


def _crd(
    *,
    kind: str,
    plural: str,
    short: list[str],
    spec: type[BaseModel],
    status: type[BaseModel] | None,
    columns: list[dict[str, Any]],
    rules: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": structural(spec),
    }
    if status is not None:
        properties["status"] = structural(status)
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "required": ["spec"],
                "properties": properties,
                **({"x-kubernetes-validations": rules} if rules else {}),
            }
        },
        "additionalPrinterColumns": columns,
    }
    if status is not None:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short,
                "categories": ["canary"],
            },
            "versions": [version],
        },
    }


def _column(name: str, path: str, kind: str = "string", priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": kind, "jsonPath": path}
    if priority:
        column["priority"] = priority
    return column


def crds() -> dict[str, dict[str, Any]]:
    """Every CRD of canary by file name."""
    rollouts = _crd(
        kind="Rollout",
        plural="rollouts",
        short=["ro"],
        spec=RolloutSpec,
        status=RolloutStatus,
        rules=[{"rule": "size(self.metadata.name) <= 63", "message": ROLLOUT_NAME_MESSAGE}],
        columns=[
            _column("Target", ".spec.targetRef.name"),
            _column("Phase", ".status.phase"),
            _column("Weight", ".status.canaryWeight", "integer"),
            _column("Step", ".status.currentStepIndex", "integer"),
            _column("Age", ".metadata.creationTimestamp", "date"),
            _column("Message", ".status.message", priority=1),
        ],
    )
    policies = _crd(
        kind="RolloutPolicy",
        plural="rolloutpolicies",
        short=["rop"],
        spec=RolloutPolicySpec,
        status=None,
        columns=[
            _column("Service", ".spec.service.name"),
            _column("Router", ".spec.traffic.router"),
            _column("Age", ".metadata.creationTimestamp", "date"),
        ],
    )
    return {f"rollouts.{GROUP}.yaml": rollouts, f"rolloutpolicies.{GROUP}.yaml": policies}
