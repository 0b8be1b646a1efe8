"""The dev environment's orchestrator explains failures and names the log to read."""

from __future__ import annotations

from pathlib import Path

import pytest

from devenv import processes, tools
from devenv.errors import DevEnvError
from devenv.probes import wait_for


def test_missing_tool_is_named_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Go on PATH, building the tools fails saying which tool and how to get it."""
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(DevEnvError, match=r"required tool `go` is not on PATH: install Go"):
        tools.ensure(lambda _line: None)


def test_component_that_exits_before_ready_names_its_exit_code_and_log(tmp_path: Path) -> None:
    """A component that exits while awaited fails with its exit code and its log file."""
    log = tmp_path / "broken.log"
    process = processes.spawn("broken", ["/bin/sh", "-c", "echo cannot bind; exit 3"], log)
    with pytest.raises(DevEnvError) as failed:
        wait_for("broken", lambda: False, timeout=10, log=log, process=process)
    assert "broken exited with exit code 3 before it became ready" in str(failed.value)
    assert failed.value.log == log
    assert str(log) in str(failed.value)
    assert "cannot bind" in log.read_text()


def test_component_that_never_gets_ready_times_out_and_is_stopped_with_its_group(
    tmp_path: Path,
) -> None:
    """A component that hangs times out naming its log; stop() ends its whole process group."""
    log = tmp_path / "slow.log"
    process = processes.spawn("slow", ["/bin/sh", "-c", "sleep 60 & sleep 60"], log)
    try:
        with pytest.raises(DevEnvError, match="slow did not become ready within 0s"):
            wait_for("slow", lambda: False, timeout=0.3, log=log, process=process)
    finally:
        assert processes.stop(process, grace=5)
    assert not processes.is_running(process)
    assert processes.exit_code(process) is None  # already reaped by stop()
