"""The controller's C heap: fewer glibc malloc arenas, and free pages given back to the kernel.

``canary run`` calls ``limit_arenas`` before it starts a thread, and ``trim`` every minute.
Why: Python's small objects live in its own arenas, but every block over 512 bytes (JSON
bodies, lists and dicts of a thousand Rollouts, ssl buffers) comes from glibc's malloc, which
gives each new thread an arena of its own, up to eight a core. At N = 1000 the controller's
15 threads held 39–51 MB in those arenas, mostly free pages between live blocks, which glibc
only returns from the top of a heap; ``malloc_trim(0)`` gave back 15 MB of 51 (run G,
docs/benchmarks.md).

Only glibc has these calls: elsewhere (musl, macOS) both are no-ops that say so. Nothing here
allocates on behalf of anyone or changes what the controller computes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter for the most arenas it will create (malloc.h)."""


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None  # not glibc: no mallopt or malloc_trim
    return libc


def limit_arenas(most: int) -> bool:
    """Let glibc create at most ``most`` malloc arenas (the main one counts); True when set.

    Call it before any thread starts: a thread keeps the arena it was given.
    """
    libc = _libc()
    return libc is not None and libc.mallopt(M_ARENA_MAX, most) == 1


def trim() -> bool:
    """Give free pages of every arena back to the kernel; True when some were."""
    libc = _libc()
    return libc is not None and libc.malloc_trim(0) == 1


def resident_bytes() -> int:
    """This process's resident memory now (``/proc/self/statm``), 0 where there is none."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
    except OSError:
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")
