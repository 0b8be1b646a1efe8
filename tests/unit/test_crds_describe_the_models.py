"""The CRDs in crds/ and the pydantic models describe exactly the same fields."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from canary import crdgen
from canary.model import schema
from canary.model.policy import RolloutPolicySpec
from canary.model.rollout import RolloutSpec
from canary.model.status import RolloutStatus

CRDS = Path(__file__).parents[2] / "crds"


def _model_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Field paths of a model, walked through its type annotations (not its JSON Schema)."""
    paths: set[str] = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}.{info.alias or name}"
        paths.add(path)
        paths |= _type_paths(info.annotation, path)
    return paths


def _type_paths(annotation: Any, path: str) -> set[str]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_paths(typing.get_args(annotation)[0], path)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_type_paths(a, path) for a in typing.get_args(annotation)))
    if origin is list:
        return _type_paths(typing.get_args(annotation)[0], path + "[]")
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _model_paths(annotation, path)
    return set()


def _schema_paths(node: dict[str, Any], prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for name, child in node.get("properties", {}).items():
        paths.add(f"{prefix}.{name}")
        paths |= _schema_paths(child, f"{prefix}.{name}")
    if "items" in node:
        paths |= _schema_paths(node["items"], prefix + "[]")
    return paths


def _version(file: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / file).read_text())
    version: dict[str, Any] = crd["spec"]["versions"][0]
    return version


@pytest.mark.parametrize(
    ("file", "part", "model"),
    [
        ("rollouts.canary.dev.yaml", "spec", RolloutSpec),
        ("rollouts.canary.dev.yaml", "status", RolloutStatus),
        ("rolloutpolicies.canary.dev.yaml", "spec", RolloutPolicySpec),
    ],
)
def test_crd_fields_equal_model_fields(file: str, part: str, model: type[BaseModel]) -> None:
    """Every field path in the committed CRD exists in the model, and the other way round."""
    root = _version(file)["schema"]["openAPIV3Schema"]["properties"][part]
    assert _schema_paths(root) == _model_paths(model)


def test_committed_crds_are_what_the_models_generate() -> None:
    """crds/ is byte-for-byte what `make crds` writes, so nobody edits it by hand."""
    assert crdgen.main(["--check", str(CRDS)]) == 0


def test_check_reports_stale_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The check fails, naming the file, when a CRD differs from the models or is missing."""
    assert crdgen.main(["--write", str(tmp_path)]) == 0
    (tmp_path / "rollouts.canary.dev.yaml").write_text("# edited\n")
    assert crdgen.main(["--check", str(tmp_path)]) == 1
    assert "rollouts.canary.dev.yaml" in capsys.readouterr().err


def test_printer_columns_and_names() -> None:
    """`kubectl get ro` shows Target, Phase, Weight, Step and Age; status is a subresource."""
    version = _version("rollouts.canary.dev.yaml")
    columns = [c["name"] for c in version["additionalPrinterColumns"] if "priority" not in c]
    assert columns == ["Target", "Phase", "Weight", "Step", "Age"]
    assert version["subresources"] == {"status": {}}
    crd = yaml.safe_load((CRDS / "rollouts.canary.dev.yaml").read_text())
    assert crd["spec"]["names"]["shortNames"] == ["ro"]


def test_unions_that_are_not_optional_are_refused() -> None:
    """A model shape with no structural equivalent fails generation loudly."""

    class Either(BaseModel):
        value: int | str

    with pytest.raises(schema.SchemaError, match="structural"):
        schema.structural(Either)


class _FreeForm(BaseModel):
    labels: dict[str, Any]


def test_a_free_form_mapping_keeps_unknown_fields() -> None:
    """A mapping with no declared properties or value schema keeps unknown fields in the CRD."""
    labels = schema.structural(_FreeForm)["properties"]["labels"]
    assert labels == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
