"""Bounds a pool process sets on itself, whatever its environment says: how many threads
render PDFs at once, and how many allocator arenas glibc may create.

Every pymupdf call (and the few file copies) runs in anyio's worker threads. By default
anyio allows 40 of them; 32 workers rendering pages at once then hold up to 40 threads,
and glibc gives each thread that allocates its own malloc arena (up to 8 per core), whose
freed memory is rarely handed back: a 32-worker pool peaked at 204–268 MB where the same
run with two arenas held 164 MB. Rendering is CPU work, so threads beyond the cores only
queue inside MuPDF; both bounds cost no throughput.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

import anyio.to_thread

log = logging.getLogger("pool")

M_ARENA_MAX = -8
"""mallopt()'s parameter number for the arena limit (glibc malloc.h)."""
ARENAS = 2


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


def limit_malloc_arenas(environ: dict[str, str] | None = None) -> bool:
    """Let glibc create at most ARENAS malloc arenas from now on (call before the
    threads start: arenas made earlier stay). Skipped when MALLOC_ARENA_MAX is set (glibc
    read it at start-up: the operator chose) or the C library is not glibc. True if set."""
    env = os.environ if environ is None else environ
    if "MALLOC_ARENA_MAX" in env or not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl (Alpine) has no mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if mallopt(M_ARENA_MAX, ARENAS) != 1:
        log.debug("mallopt(M_ARENA_MAX, %d) refused", ARENAS)
        return False
    return True
