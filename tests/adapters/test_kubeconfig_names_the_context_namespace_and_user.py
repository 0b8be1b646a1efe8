"""The CLI's defaults from a kubeconfig file: the context's namespace and user."""

from __future__ import annotations

from pathlib import Path

import yaml

from canary.adapters.kube import kubeconfig


def _write(tmp_path: Path) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "alice", "user": {}}, {"name": "ci", "user": {}}],
                "contexts": [
                    {
                        "name": "dev",
                        "context": {"cluster": "c", "user": "alice", "namespace": "team"},
                    },
                    {"name": "ci", "context": {"cluster": "c", "user": "ci"}},
                ],
                "current-context": "dev",
            }
        )
    )
    return str(path)


def test_the_current_context_gives_namespace_and_user(tmp_path: Path) -> None:
    """Without --context, the current context's namespace and user are used."""
    path = _write(tmp_path)
    assert kubeconfig.namespace(path) == "team"
    assert kubeconfig.user(path) == "alice"


def test_another_context_without_a_namespace_means_default(tmp_path: Path) -> None:
    """--context picks that context; one without a namespace (outside a pod) is 'default'."""
    path = _write(tmp_path)
    assert kubeconfig.namespace(path, "ci") == "default"
    assert kubeconfig.user(path, "ci") == "ci"
    assert kubeconfig.namespace(path, "nope") == "default"
    assert kubeconfig.user(path, "nope") is None


def test_a_missing_kubeconfig_says_nothing(tmp_path: Path) -> None:
    """An unreadable kubeconfig never raises: namespace 'default', no user."""
    missing = str(tmp_path / "missing")
    assert kubeconfig.namespace(missing) == "default"
    assert kubeconfig.user(missing) is None
