"""Linkerd's binaries: an environment variable wins, then a directory laid out like
../shared/linkerd; a named file that is not executable is an error, not a silent fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from devenv import linkerd
from devenv.errors import DevEnvError


def _layout(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "crds").mkdir()
    for name in (linkerd.POLICY_CONTROLLER, linkerd.SMI_ADAPTOR):
        binary = root / "bin" / name
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
    return root


def test_a_directory_then_an_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$CANARY_LINKERD_DIR gives both binaries and the CRDs; a per-binary variable overrides."""
    base = _layout(tmp_path / "linkerd")
    monkeypatch.setenv("CANARY_LINKERD_DIR", str(base))
    for variable in linkerd.ENV_VARS.values():
        monkeypatch.delenv(variable, raising=False)
    assert linkerd.find() == linkerd.Linkerd(
        base / "bin" / linkerd.POLICY_CONTROLLER, base / "bin" / linkerd.SMI_ADAPTOR, base / "crds"
    )
    own = tmp_path / "my-policy-controller"
    own.write_text("#!/bin/sh\n")
    own.chmod(0o755)
    monkeypatch.setenv(linkerd.ENV_VARS[linkerd.POLICY_CONTROLLER], str(own))
    found = linkerd.find()
    assert found is not None
    assert found.policy_controller == own


def test_nothing_found_means_build_and_a_bad_variable_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty directory leaves the build to `tools`; a variable naming no executable fails."""
    monkeypatch.setenv("CANARY_LINKERD_DIR", str(tmp_path))
    for variable in linkerd.ENV_VARS.values():
        monkeypatch.delenv(variable, raising=False)
    assert linkerd.find() is None
    monkeypatch.setenv(linkerd.ENV_VARS[linkerd.SMI_ADAPTOR], str(tmp_path / "nothing"))
    with pytest.raises(DevEnvError, match="not an executable file"):
        linkerd.find()
