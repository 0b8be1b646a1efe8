"""Offline validation of Rollout and RolloutPolicy documents, for ``canary lint``.

``read`` turns a file's bytes into documents within fixed bounds (size, nesting, the expanded
size of aliases) so that no input makes it crash, hang or exhaust memory. Checks each document
three ways: the schema (the pydantic models, from which the CRDs are
generated), the model's cross-field rules, and the semantic checks of ``plan.build`` — with the
referenced policy merged in when it is among the documents. Pure: documents in, findings out;
the CLI reads the files and prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from canary.core import outbound, plan
from canary.errors import InvalidSpec, Problem
from canary.model.rollout import API_VERSION, GROUP, Rollout, RolloutPolicy
from canary.model.template import ALLOWED_FIELDS

_HINTS = {
    "missing": "add this field",
    "extra_forbidden": "check the spelling; `kubectl explain rollouts.spec` lists the fields",
    "string_pattern_mismatch": "use lower-case letters, digits and '-'",
    "int_parsing": "write a whole number",
    "int_type": "write a whole number",
    "float_parsing": "write a number",
    "bool_parsing": "write true or false",
    "dict_type": "write a mapping (key: value)",
    "list_type": "write a list (- item)",
    "too_short": "add at least one item",
}


MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 100_000


class Unreadable(ValueError):
    """A file that is not a YAML stream ``canary lint`` can check; the message says why."""


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, refusing documents nested deeper than MAX_DEPTH while composing them
    (PyYAML's composer recurses once per level)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise Unreadable(f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _expanded_size(root: yaml.Node) -> int:
    """How many nodes the document has once every alias is expanded (an alias bomb's is
    exponential in its text); counted without expanding, and refusing self-references."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise Unreadable("an alias refers to the node that contains it")
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        open_nodes.discard(key)
        sizes[key] = min(total, MAX_NODES + 1)
        return sizes[key]

    return size(root)


def read(data: bytes) -> list[Any]:
    """The non-empty YAML documents in ``data``. Raises Unreadable, with a message for people,
    for anything else: too large, not UTF-8, not YAML, unknown tags, nesting deeper than
    MAX_DEPTH, more than MAX_NODES nodes once aliases are expanded."""
    if len(data) > MAX_BYTES:
        raise Unreadable(f"larger than {MAX_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        where = f"byte {data[error.start]:#04x} at offset {error.start}"
        raise Unreadable(f"not UTF-8 text ({where})") from None
    documents: list[Any] = []
    try:
        loader = _BoundedLoader(text)
        try:
            loader.check_node()  # drops STREAM-START; get_node() is None at STREAM-END
            while (node := loader.get_node()) is not None:
                if _expanded_size(node) > MAX_NODES:
                    raise Unreadable(f"more than {MAX_NODES} values once its aliases are expanded")
                document = loader.construct_document(node)
                if document is not None:
                    documents.append(document)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise Unreadable(f"not valid YAML: {error.problem}{where}") from None
    except Unreadable:
        raise
    except (
        yaml.YAMLError,
        ValueError,
        TypeError,
        ArithmeticError,
        LookupError,
        AttributeError,
        RecursionError,
    ) as error:
        # PyYAML's constructors raise more than YAMLError on bad scalars ("!!int" alone is an
        # IndexError): whatever they raise, the file is not YAML lint can read.
        first_line = str(error).strip().split("\n", 1)[0][:200]
        raise Unreadable(f"not valid YAML: {first_line or type(error).__name__}") from None
    return documents


@dataclass(frozen=True)
class Finding:
    """A problem in one document of a file."""

    document: int
    kind: str
    name: str
    problem: Problem


def field_path(loc: Sequence[int | str]) -> str:
    """pydantic's error location as a field path: ('spec', 'steps', 0, 'x') → spec.steps[0].x."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path


def problems_of(error: ValidationError) -> list[Problem]:
    """Each pydantic error as a Problem with a field path and a hint."""
    problems = []
    for detail in error.errors():
        message = str(detail["msg"]).removeprefix("Value error, ")
        hint = _HINTS.get(detail["type"], "")
        if detail["type"] == "extra_forbidden":
            message = "unknown field"
            if "templatePatch" in detail["loc"]:
                message = "a release may not change this field"
                hint = f"templatePatch may set only {ALLOWED_FIELDS}"
        problems.append(Problem(field_path(detail["loc"]), message, hint))
    return problems


def _identity(doc: Mapping[str, Any]) -> tuple[str, str]:
    metadata = doc.get("metadata")
    name = metadata.get("name", "") if isinstance(metadata, Mapping) else ""
    return str(doc.get("kind", "")), str(name)


def check(documents: Sequence[Any]) -> list[Finding]:
    """Findings for every canary document among ``documents`` (other kinds are skipped)."""
    findings: list[Finding] = []
    policies: dict[tuple[str, str], RolloutPolicy] = {}
    rollouts: list[tuple[int, Rollout]] = []
    for index, doc in enumerate(documents):
        if not isinstance(doc, Mapping):
            problem = Problem("", "not a Kubernetes object", "each YAML document is a mapping")
            findings.append(Finding(index, "", "", problem))
            continue
        kind, name = _identity(doc)
        api_version = str(doc.get("apiVersion", ""))
        if not api_version.startswith(f"{GROUP}/"):
            continue
        if api_version != API_VERSION:
            problem = Problem("apiVersion", f"{api_version} is not served", f"use {API_VERSION}")
            findings.append(Finding(index, kind, name, problem))
            continue
        if kind not in ("Rollout", "RolloutPolicy"):
            problem = Problem(
                "kind", f"{kind!r} is not a canary kind", "use Rollout or RolloutPolicy"
            )
            findings.append(Finding(index, kind, name, problem))
            continue
        try:
            parsed: Rollout | RolloutPolicy = (
                Rollout.model_validate(doc)
                if kind == "Rollout"
                else RolloutPolicy.model_validate(doc)
            )
        except ValidationError as error:
            findings.extend(Finding(index, kind, name, p) for p in problems_of(error))
            continue
        findings.extend(Finding(index, kind, name, p) for p in _hook_urls(parsed))
        if isinstance(parsed, RolloutPolicy):
            policies[(parsed.metadata.namespace, parsed.metadata.name)] = parsed
        else:
            rollouts.append((index, parsed))
    for index, rollout in rollouts:
        findings.extend(_semantic(index, rollout, policies))
    return sorted(findings, key=lambda f: f.document)


def _hook_urls(parsed: Rollout | RolloutPolicy) -> list[Problem]:
    """Hooks the controller would refuse to call under its default URL policy: anything but a
    Service of the document's own namespace."""
    namespace = parsed.metadata.namespace
    problems = []
    for index, hook in enumerate(parsed.spec.hooks or []):
        try:
            outbound.check_hook(outbound.Policy(), hook.url, namespace)
        except outbound.Refused as refused:
            problems.append(
                Problem(
                    f"spec.hooks[{index}].url",
                    str(refused),
                    f"call a Service of this namespace (http://<service>.{namespace}.svc:<port>/"
                    "…), or ask the platform team to allow the host (--outbound-allow)",
                )
            )
    return problems


def _semantic(
    index: int, rollout: Rollout, policies: Mapping[tuple[str, str], RolloutPolicy]
) -> list[Finding]:
    ref = rollout.spec.policy_ref
    policy = policies.get((rollout.metadata.namespace, ref.name)) if ref else None
    try:
        plan.build(rollout, policy)
    except InvalidSpec as error:
        problems = [
            p
            for p in error.problems
            # Without the referenced policy at hand, its fields cannot be judged missing.
            if not (ref is not None and policy is None and p.path == "spec.service")
        ]
        return [Finding(index, "Rollout", rollout.metadata.name, p) for p in problems]
    return []
