"""The import contracts in pyproject.toml really enforce what they say: each forbidden import,
added to a scratch copy of the package, makes ``lint-imports`` fail on the contract that names
it, while the unchanged copy passes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

PROBES = {
    "apscheduler outside the scheduler": (
        "canary/runtime/controller.py",
        "import apscheduler",
        "apscheduler only in canary.runtime.scheduler",
    ),
    "prometheus_api_client outside the metrics adapter": (
        "canary/console.py",
        "import prometheus_api_client",
        "prometheus_api_client only in canary.adapters.metrics",
    ),
    "kubernetes outside the kube adapter": (
        "canary/runtime/controller.py",
        "import kubernetes",
        "kubernetes only in canary.adapters.kube",
    ),
    "os in the core": (
        "canary/core/judge.py",
        "import os",
        "The pure core and the models do no I/O",
    ),
    "pathlib in the core": (
        "canary/core/machine.py",
        "import pathlib",
        "The pure core and the models do no I/O",
    ),
    "canary.crdgen below the model it reads (it is in a layer)": (
        "canary/model/status.py",
        "import canary.crdgen",
        "Layers:",
    ),
    "the CLI importing the emulator": ("canary/cli.py", "import canary.emulator", "Layers:"),
    "prometheus_client outside the API": (
        "canary/runtime/controller.py",
        "import prometheus_client",
        "The HTTP stack and the metrics registry only in canary.api",
    ),
    "uvicorn outside the API": (
        "canary/cli.py",
        "import uvicorn",
        "The HTTP stack and the metrics registry only in canary.api",
    ),
    "the Grafana SDK in the CLI": (
        "canary/cli.py",
        "import grafana_foundation_sdk",
        "grafana_foundation_sdk only in canary.grafana",
    ),
    "the CLI importing the dashboard generator": (
        "canary/cli.py",
        "import canary.grafana",
        "Layers:",
    ),
}


def _scratch(tmp: Path) -> Path:
    shutil.copytree(ROOT / "canary", tmp / "canary", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp / "pyproject.toml")
    return tmp


def _lint_imports(where: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(where)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_unchanged_copy_keeps_every_contract(tmp_path: Path) -> None:
    """The scratch copy as it is passes, so a probe's failure is the probe's doing."""
    result = _lint_imports(_scratch(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "contract"), PROBES.values(), ids=PROBES.keys())
def test_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    """Adding ``line`` to ``module`` breaks the contract named ``contract``."""
    where = _scratch(tmp_path)
    path = where / module
    path.write_text(path.read_text() + f"\n{line}  # probe\n")
    result = _lint_imports(where)
    assert result.returncode != 0, result.stdout
    broken = [row for row in result.stdout.splitlines() if row.endswith(" BROKEN")]
    assert any(row.startswith(contract) for row in broken), result.stdout
