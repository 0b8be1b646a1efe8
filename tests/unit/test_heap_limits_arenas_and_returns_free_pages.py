"""`canary.runtime.heap`: glibc's arena cap holds for threads started after it, and a trim gives
pages freed between live blocks back to the kernel. Each case runs in a fresh interpreter:
arenas are per process, and a thread keeps the one it got first."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from canary.cli import main

THREADS = 6

ARENAS = textwrap.dedent(
    """
    import ctypes, json, sys, tempfile, threading
    from canary.runtime import heap

    limited = heap.limit_arenas(int(sys.argv[1])) if sys.argv[1] != "0" else None
    held, go, done = [], threading.Barrier(THREADS + 1), threading.Event()

    def work():
        held.append([bytes(2000) for _ in range(200)])  # from malloc: over pymalloc's 512
        go.wait()
        done.wait()

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    go.wait()  # every thread holds memory from the arena it was given, and lives
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    libc.fclose.argtypes = [ctypes.c_void_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    with tempfile.NamedTemporaryFile(suffix=".xml") as out:
        stream = libc.fopen(out.name.encode(), b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        arenas = open(out.name).read().count("<heap nr=")
    done.set()
    print(json.dumps({"limited": limited, "arenas": arenas}))
    """
).replace("THREADS", str(THREADS))

TRIM = textwrap.dedent(
    """
    import json
    from canary.runtime import heap

    blocks = [bytes(1500) for _ in range(60_000)]  # about 90 MB from malloc
    kept = blocks[::64]  # one live block every 96 KB: free() can return none of the rest
    del blocks
    before = heap.resident_bytes()
    trimmed = heap.trim()
    print(json.dumps({"trimmed": trimmed, "before": before, "after": heap.resident_bytes()}))
    """
)


def _python(script: str, *argv: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", script, *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, int] = json.loads(done.stdout)
    return found


def test_threads_share_the_capped_arenas() -> None:
    """Six live threads get arenas of their own, but only two in all when capped at 2."""
    free = _python(ARENAS, "0")
    capped = _python(ARENAS, "2")
    assert free["arenas"] >= THREADS + 1  # the main arena and one a thread: what the cap saves
    assert capped == {"limited": True, "arenas": 2}


def test_a_trim_returns_pages_freed_between_live_blocks() -> None:
    """About 90 MB freed around a block kept every 96 KB: the trim gives back over 60 MB."""
    found = _python(TRIM)
    assert found["trimmed"] is True
    assert found["before"] - found["after"] > 60 * 2**20, found


def test_a_negative_cap_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """`canary run --malloc-arenas -1` exits 2 naming the flag, before it contacts anything."""
    code = main(["run", "--prometheus-url", "http://127.0.0.1:1", "--malloc-arenas", "-1"])
    assert code == 2
    assert "--malloc-arenas must be 0 or more (got -1)" in capsys.readouterr().err
