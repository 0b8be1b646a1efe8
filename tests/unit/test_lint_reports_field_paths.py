"""`canary lint`: the examples pass; broken files print the offending field path and exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from canary import cli
from canary.core import lint

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
ROLLOUT = """\
apiVersion: canary.dev/v1alpha1
kind: Rollout
metadata: {name: bad, namespace: test}
spec:
  targetRef: {name: podinfo}
  release: {images: {podinfo: "podinfo:6.1.0"}}
"""


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_passes(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each example in examples/ is accepted as it is, together with the policy it refers to."""
    policy = Path(example).with_name("podinfo-policy.yaml")
    assert cli.main(["lint", str(example), str(policy)]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (
            "  service: {name: podinfo, port: 80}\n  steps: [{setWeight: 150}]\n",
            "Rollout/bad: spec.steps[0].setWeight: Input should be less than or equal to 100",
        ),
        (
            "  service: {name: podinfo, port: 80}\n  analysis: {interval: 5}\n",
            "spec.analysis.interval: 5 is not a duration; write it like 30s, 5m or 1h30m",
        ),
        (
            "  service: {name: podinfo, port: 80}\n  analysis: {succesRate: {min: 99}}\n",
            "spec.analysis.succesRate: unknown field (check the spelling;",
        ),
        (
            "  service: {name: podinfo, port: 80}\n  steps: [{setWeight: 50}, {setWeight: 20}]\n",
            "spec.steps[1].setWeight: 20 is lower than the 50 of an earlier step",
        ),
        ("  steps: [{setWeight: 5}]\n", "spec.service: no apex Service"),
        (
            "  service: {name: Podinfo, port: 80}\n",
            "spec.service.name: String should match pattern",
        ),
    ],
)
def test_broken_files_print_the_field_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tail: str, expected: str
) -> None:
    """A broken Rollout exits 1 and names the field that is wrong, with the file and object."""
    path = tmp_path / "bad.yaml"
    path.write_text(ROLLOUT + tail)
    assert cli.main(["lint", str(path)]) == 1
    out = capsys.readouterr()
    assert f"{path}: " in out.out
    assert expected in out.out
    assert "1 object(s) checked" in out.err


def test_unreadable_and_malformed_files_are_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing file or invalid YAML is reported and fails the run; other files still run."""
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [unclosed\n")
    assert cli.main(["lint", str(tmp_path / "missing.yaml"), str(broken), str(EXAMPLES[0])]) == 1
    err = capsys.readouterr().err
    assert "missing.yaml: cannot read" in err
    assert "broken.yaml: not valid YAML" in err
    assert "2 problems" in err


def test_documents_of_other_kinds() -> None:
    """Other kinds are skipped; unknown canary kinds, versions and non-objects are problems."""
    findings = lint.check(
        [
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}},
            {"apiVersion": "canary.dev/v1beta1", "kind": "Rollout", "metadata": {"name": "a"}},
            {"apiVersion": "canary.dev/v1alpha1", "kind": "Canary", "metadata": "oops"},
            ["not", "an", "object"],
        ]
    )
    assert [(f.document, f.problem.path) for f in findings] == [
        (1, "apiVersion"),
        (2, "kind"),
        (3, ""),
    ]
    assert findings[1].name == ""


def test_field_path_formats_list_indexes() -> None:
    """List indexes print in brackets, names after dots."""
    assert (
        lint.field_path(("spec", "steps", 2, "pause", "duration")) == "spec.steps[2].pause.duration"
    )
    assert lint.field_path((0, "a")) == "[0].a"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`canary version` prints the version."""
    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out.startswith("canary 0.")
