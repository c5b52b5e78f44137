"""The bounds a pool process sets on itself (pool/process_limits.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import anyio
import anyio.to_thread
import pytest

from pool.process_limits import MALLOC_BOUNDS, bound_malloc, limit_threads, thread_budget


@pytest.mark.parametrize(
    ("cores", "threads"), [(None, 4), (1, 4), (2, 4), (4, 4), (8, 8), (64, 64)]
)
def test_the_thread_budget_is_the_cores_and_at_least_four(cores: int | None, threads: int) -> None:
    assert thread_budget(cores) == threads


def test_the_threads_of_blocking_calls_are_capped_in_the_running_loop() -> None:
    async def main() -> tuple[float, int, int]:
        before = anyio.to_thread.current_default_thread_limiter().total_tokens
        budget = limit_threads()
        return before, budget, int(anyio.to_thread.current_default_thread_limiter().total_tokens)

    before, budget, after = anyio.run(main)
    assert before == 40  # anyio's default
    assert after == budget == thread_budget(os.cpu_count())


def test_an_operators_malloc_settings_are_left_alone() -> None:
    assert bound_malloc({name: "8" for name in MALLOC_BOUNDS}) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_malloc_bounds_are_set_on_glibc() -> None:
    """In a fresh interpreter (the bounds are per process): mallopt accepts each, and one
    the operator set is skipped."""
    code = (
        "from pool.process_limits import bound_malloc; "
        "print(bound_malloc({}), bound_malloc({'MALLOC_ARENA_MAX': '4'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == (
        "['MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_'] ['MALLOC_MMAP_THRESHOLD_']"
    )
