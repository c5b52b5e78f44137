"""Bounds a pool process sets on itself, whatever its environment says: how many threads
render PDFs at once, how many allocator arenas glibc may create, and from what size it
gives memory straight back to the system.

Every pymupdf call (and the few file copies) runs in anyio's worker threads. By default
anyio allows 40 of them; 32 workers rendering pages at once then hold up to 40 threads,
and glibc gives each thread that allocates its own malloc arena (up to 8 per core), whose
freed memory is rarely handed back: a 32-worker pool peaked at 204–268 MB where the same
run with two arenas held 164 MB. Rendering is CPU work, so threads beyond the cores only
queue inside MuPDF; both bounds cost no throughput.

glibc also serves a block of 128 kB or more with its own mmap, returned to the system
when freed, but raises that threshold (up to 32 MB) each time such a block is freed: after
the first rendered pages, pixmaps, PNGs and request bodies come from the heap, where
freed space is kept. A fixed threshold of 256 kB keeps them out of it: 156 MB instead of
162 MB at the same load (`benchmarks/pool_startup.py`, 32 workers, 3 runs each).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from collections.abc import Mapping

import anyio.to_thread

log = logging.getLogger("pool")

M_ARENA_MAX = -8
M_MMAP_THRESHOLD = -3
"""mallopt()'s parameter numbers (glibc malloc.h)."""
MALLOC_BOUNDS: dict[str, tuple[int, int]] = {
    "MALLOC_ARENA_MAX": (M_ARENA_MAX, 2),
    "MALLOC_MMAP_THRESHOLD_": (M_MMAP_THRESHOLD, 256 * 1024),
}
"""environment variable (the operator's override) -> (mallopt parameter, value)"""


def thread_budget(cores: int | None) -> int:
    """Worker threads for blocking calls: the cores, at least 4 (a file copy or an
    inspection waits behind a render otherwise)."""
    return max(4, cores or 1)


def limit_threads() -> int:
    """Cap this event loop's default thread limiter (anyio's, used by every
    `to_thread.run_sync` without its own limiter). Call inside the running loop; returns
    the cap."""
    budget = thread_budget(os.cpu_count())
    anyio.to_thread.current_default_thread_limiter().total_tokens = budget
    return budget


def bound_malloc(environ: Mapping[str, str] | None = None) -> list[str]:
    """Set glibc's malloc bounds (`MALLOC_BOUNDS`) for this process; call before the
    threads start (arenas made earlier stay). A bound whose environment variable is set is
    skipped: glibc read it at start-up, the operator chose. Nothing on a C library
    without mallopt (musl). Returns the names of the bounds set."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return []
    name = ctypes.util.find_library("c")
    if name is None:
        return []
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # musl (Alpine) has no mallopt
        return []
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done: list[str] = []
    for variable, (param, value) in MALLOC_BOUNDS.items():
        if variable in env:
            continue
        if mallopt(param, value) == 1:
            done.append(variable)
        else:
            log.debug("mallopt(%d, %d) refused", param, value)
    return done
