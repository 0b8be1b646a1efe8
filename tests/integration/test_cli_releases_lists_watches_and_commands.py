"""`canary` against a real API server: release creates an accepted Rollout, get lists it,
the commands write their annotations (or refuse), and watch exits with the phase's code."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from canary import cli
from canary.adapters.kube import client as kube_client
from canary.core import commands

pytestmark = pytest.mark.integration

GROUP, VERSION, PLURAL = "canary.dev", "v1alpha1", "rollouts"
IMAGE = "podinfo=ghcr.io/stefanprodan/podinfo:6.1.0"


class Canary:
    """Runs `canary` with the test cluster's kubeconfig in the test's namespace."""

    def __init__(self, kubeconfig: str, namespace: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.kubeconfig, self.namespace, self.capsys = kubeconfig, namespace, capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = cli.main(["--kubeconfig", self.kubeconfig, "-n", self.namespace, *args])
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def canary(cluster: Any, namespace: str, capsys: pytest.CaptureFixture[str]) -> Canary:
    return Canary(str(cluster.kubeconfig), namespace, capsys)


def _get(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = client.CustomObjectsApi(kube).get_namespaced_custom_object(  # type: ignore[assignment]
        GROUP, VERSION, namespace, PLURAL, name
    )
    return found


def _set_status(kube: client.ApiClient, namespace: str, name: str, status: dict[str, Any]) -> None:
    """Write the status through the status subresource, as the controller would."""
    body = _get(kube, namespace, name)
    body["status"] = status
    client.CustomObjectsApi(kube).replace_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, name, body
    )


def _released(canary: Canary, name: str = "web-2") -> None:
    code, _, err = canary("release", "deploy/podinfo", "--image", IMAGE, "--name", name)
    assert code == 0, err


def test_release_creates_a_rollout_the_api_server_accepts(
    canary: Canary, kube: client.ApiClient, namespace: str
) -> None:
    """release prints the created name, and the stored Rollout carries the release."""
    code, out, _ = canary(
        "release", "deploy/podinfo", "--image", IMAGE, "--set-env", "podinfo:LOG=debug"
    )
    assert (code, out) == (0, "rollout.canary.dev/podinfo-6-1-0 created\n")
    spec = _get(kube, namespace, "podinfo-6-1-0")["spec"]
    assert spec["targetRef"] == {"kind": "Deployment", "name": "podinfo"}
    assert spec["release"]["images"] == {"podinfo": "ghcr.io/stefanprodan/podinfo:6.1.0"}
    assert spec["policyRef"] == {"name": "podinfo"}
    code, _, err = canary("release", "deploy/podinfo", "--image", IMAGE)
    assert code == 1
    assert err.startswith('Error from server (AlreadyExists): rollouts.canary.dev "podinfo-6-1-0"')


def test_get_lists_rollouts_in_a_table_and_prints_one_as_yaml_or_json(
    canary: Canary, kube: client.ApiClient, namespace: str
) -> None:
    """get shows the printer columns; -A adds NAMESPACE; -o json/yaml print the object."""
    assert canary("get")[2] == f"No resources found in {namespace} namespace.\n"
    _released(canary)
    _set_status(
        kube, namespace, "web-2", {"phase": "Progressing", "canaryWeight": 20, "message": "ok"}
    )
    code, out, _ = canary("get")
    header, row = out.splitlines()
    assert header.split() == ["NAME", "TARGET", "PHASE", "WEIGHT", "STEP", "AGE"]
    assert row.split()[:4] == ["web-2", "Deployment/podinfo", "Progressing", "20%"]
    code, out, _ = canary("get", "-A", "-o", "wide")
    assert f"{namespace}   web-2" in out
    assert out.splitlines()[0].endswith("MESSAGE")
    code, out, _ = canary("get", "web-2", "-o", "json")
    assert json.loads(out)["status"]["canaryWeight"] == 20
    code, out, _ = canary("get", "web-2", "-o", "yaml")
    assert "kind: Rollout" in out
    code, _, err = canary("get", "nope")
    assert (code, err) == (
        1,
        'Error from server (NotFound): rollouts.canary.dev "nope" not found\n',
    )


def test_approve_writes_the_command_annotation(
    canary: Canary, kube: client.ApiClient, namespace: str
) -> None:
    """approve on a waiting rollout writes canary.dev/approve with actor, comment and time."""
    _released(canary)
    _set_status(kube, namespace, "web-2", {"phase": "WaitingApproval"})
    before = datetime.now(UTC)
    code, out, _ = canary("approve", "web-2", "--comment", "looks good", "--as-actor", "alice")
    assert (code, out) == (0, "rollout.canary.dev/web-2 approved\n")
    annotations = _get(kube, namespace, "web-2")["metadata"]["annotations"]
    (command,) = commands.decode(annotations)
    assert (command.kind, command.actor, command.comment) == ("approve", "alice", "looks good")
    assert command.at >= before


def test_commands_that_make_no_sense_are_refused(
    canary: Canary, kube: client.ApiClient, namespace: str
) -> None:
    """approve while Progressing, retry while Progressing, abort once finished: exit 1, nothing
    written; a missing rollout is NotFound."""
    _released(canary)
    _set_status(kube, namespace, "web-2", {"phase": "Progressing"})
    for kind in ("approve", "retry"):
        code, _, err = canary(kind, "web-2")
        assert code == 1
        assert err.startswith(f"error: cannot {kind} rollout.canary.dev/web-2: it is Progressing")
    _set_status(kube, namespace, "web-2", {"phase": "Succeeded"})
    assert canary("abort", "web-2")[0] == 1
    assert "annotations" not in _get(kube, namespace, "web-2")["metadata"]
    assert canary("promote", "nope")[2].startswith("Error from server (NotFound)")


@pytest.mark.parametrize(
    ("phase", "code"), [("Succeeded", 0), ("RolledBack", 1), ("Aborted", 1), ("Superseded", 1)]
)
def test_watch_exits_with_the_code_of_the_final_phase(
    canary: Canary, kube: client.ApiClient, namespace: str, phase: str, code: int
) -> None:
    """watch prints a line per state without a terminal and exits 0 or 1 by the final phase."""
    _released(canary)
    _set_status(kube, namespace, "web-2", {"phase": phase, "message": "done"})
    exit_code, out, _ = canary("watch", "web-2", "--timeout", "10s")
    assert exit_code == code
    (line,) = out.splitlines()
    assert phase in line
    assert line.endswith("done")


def test_watch_times_out_with_exit_2(canary: Canary, namespace: str) -> None:
    """A rollout that does not finish within --timeout ends the watch with exit code 2."""
    _released(canary)
    code, out, err = canary("watch", "web-2", "--timeout", "0.5")
    assert code == 2
    assert "Pending" in out
    assert "timed out after 0.5s" in err


@pytest.fixture
def kubeconfig_in_namespace(cluster: Any, namespace: str, tmp_path: Path) -> Path:
    """The cluster's kubeconfig with the test namespace set on every context."""
    document = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    for context in document["contexts"]:
        context["context"]["namespace"] = namespace
    config_file = tmp_path / "kubeconfig"
    config_file.write_text(yaml.safe_dump(document))
    return config_file


def test_namespace_and_actor_default_from_kubeconfig_and_user(
    kubeconfig_in_namespace: Path,
    kube: client.ApiClient,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without -n the kubeconfig context's namespace is used; the actor is the user the API
    server authenticates (a SelfSubjectReview), not $USER, which anyone can set."""
    config_file = kubeconfig_in_namespace
    monkeypatch.setenv("USER", "alice")
    assert (
        cli.main(
            ["--kubeconfig", str(config_file), "release", "deploy/web", "--image", "web=web:2"]
        )
        == 0
    )
    _set_status(kube, namespace, "web-2", {"phase": "Progressing"})
    assert cli.main(["--kubeconfig", str(config_file), "abort", "web-2"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "rollout.canary.dev/web-2 created",
        "rollout.canary.dev/web-2 aborted",
    ]
    (command,) = commands.decode(_get(kube, namespace, "web-2")["metadata"]["annotations"])
    assert command.actor == kube_client.whoami(kube)
    assert "alice" not in command.actor


def test_invalid_releases_and_missing_rollouts_are_reported(canary: Canary) -> None:
    """A release that changes nothing lists its problems; watching a missing rollout is NotFound."""
    code, _, err = canary("release", "deploy/podinfo")
    assert code == 1
    assert err.splitlines()[0] == 'The Rollout "podinfo" is invalid:'
    assert "* spec.release: a release changes something" in err
    code, _, err = canary("watch", "nope")
    assert (code, err) == (
        1,
        'Error from server (NotFound): rollouts.canary.dev "nope" not found\n',
    )


def test_an_unreachable_cluster_is_an_error_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cluster: Any
) -> None:
    """When the API server cannot be reached, canary prints one error line and exits 1."""
    document = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for entry in document["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{port}"
    config_file = tmp_path / "kubeconfig"
    config_file.write_text(yaml.safe_dump(document))
    assert cli.main(["--kubeconfig", str(config_file), "-n", "x", "get"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: list rollouts: ")
    assert len(err.splitlines()) == 1
