"""Background processes of the dev environment: start one in its own process group, tell
whether it still runs, stop its whole group.

Called by `cluster`. A started process outlives the Python process that started it (it is a
session leader with its output in a log file), so everything needed to find it again is in a
`Process` record that `cluster` keeps in `state.json`. A record is trusted only while the pid
still runs the same executable, so a recycled pid is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# The Popen objects of the processes this Python process started. Kept so that an exit code can
# be read (and a zombie reaped) and so that Python does not warn that a child it was asked to
# leave running is "still running" when the object would otherwise be collected.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class Process:
    """A started component: its pid (also its process-group id), command line and log."""

    name: str
    pid: int
    argv: tuple[str, ...]
    log: Path

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "pid": self.pid, "argv": list(self.argv), "log": str(self.log)}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Process:
        argv = data["argv"]
        pid = data["pid"]
        if not isinstance(argv, list) or not isinstance(pid, int):
            raise ValueError(f"malformed process record: {data}")
        return cls(str(data["name"]), pid, tuple(str(a) for a in argv), Path(str(data["log"])))


def spawn(name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> Process:
    """Starts `argv` in a new session (so a new process group), output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    _children[proc.pid] = proc
    return Process(name, proc.pid, tuple(argv), log)


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, process-group id) of `pid`, or None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[2])


def is_running(process: Process) -> bool:
    """True while the pid is alive (not a zombie) and still runs the recorded executable."""
    child = _children.get(process.pid)
    if child is not None:
        # Our own child: ask it, since between fork and exec its command line is still ours.
        return child.poll() is None
    stat = _stat(process.pid)
    if stat is None or stat[0] in ("Z", "X"):
        return False
    return _executable(process.pid) == process.argv[0]


def exit_code(process: Process) -> int | None:
    """The exit code if this Python process started `process` and it has ended, else None."""
    child = _children.get(process.pid)
    return child.poll() if child is not None else None


def _reap(pid: int) -> None:
    child = _children.pop(pid, None)
    if child is not None and child.poll() is None:
        _children[pid] = child


def _executable(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return None


def _group_members(pgid: int, executable: str | None = None) -> list[int]:
    """Live (non-zombie) processes in process group `pgid` (running `executable`, if given)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        stat = _stat(pid)
        if stat is None or stat[1] != pgid or stat[0] in ("Z", "X"):
            continue
        if executable is None or _executable(pid) == executable:
            members.append(pid)
    return members


def stop(process: Process, grace: float = 15.0) -> bool:
    """Stops the process group of `process`: SIGTERM, then SIGKILL after `grace` seconds.

    Returns False if the record was stale (the process had already gone).
    """
    if not is_running(process):
        # The leader is gone; the pid may even belong to someone else's group by now, so only
        # processes still running the recorded executable are ours.
        _signal_all(_group_members(process.pid, process.argv[0]), signal.SIGKILL)
        _reap(process.pid)
        return False
    _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _group_members(process.pid) and time.monotonic() < deadline:
        _reap(process.pid)
        time.sleep(0.05)
    leftovers = _group_members(process.pid)
    if leftovers:
        _signal_all(leftovers, signal.SIGKILL)
        while _group_members(process.pid):
            time.sleep(0.05)
    _reap(process.pid)
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
