"""`python -m devenv up` is idempotent, and `down` leaves none of the processes it started."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devenv import layout

pytestmark = pytest.mark.integration


def _devenv(dev_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devenv", f"--dir={dev_dir}", *args],
        cwd=layout.REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _alive(int(entry.name)):
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[2]) == pgid:
                return True
    return False


def test_second_up_is_a_no_op_and_down_stops_every_process_group(tmp_path: Path) -> None:
    """A second `up` says it is already up; after `down` no started process group survives."""
    dev_dir = tmp_path / "dev"
    try:
        first = _devenv(dev_dir, "up")
        assert first.returncode == 0, first.stdout + first.stderr
        state = json.loads((dev_dir / "state.json").read_text())
        pids = [record["pid"] for record in state["processes"].values()]
        assert len(pids) == 8  # 6 Kubernetes/Prometheus processes + 2 of Linkerd
        assert all(_alive(pid) for pid in pids)

        second = _devenv(dev_dir, "up")
        assert second.returncode == 0
        assert "already up" in second.stdout
        assert json.loads((dev_dir / "state.json").read_text()) == state
    finally:
        down = _devenv(dev_dir, "down")
    assert down.returncode == 0
    assert not any(_group_alive(pid) for pid in pids)
    assert not (dev_dir / "env").exists()
    assert _devenv(dev_dir, "status").returncode == 1
