"""Stop signals. The rule (pure): copies of a signal and SIGTERMs before the grace
deadline count as one stop; a second SIGINT, a SIGQUIT, or a SIGTERM after the deadline
forces. Then `ocr-pool start` as real processes: SIGTERM lets in-flight jobs finish and
exits 0, also under `uv run` with the SIGTERM sent to the whole process group (uv
forwards a copy); a later SIGTERM does not cut the finish short, a second SIGINT or a
SIGQUIT gives the jobs back at once; after a SIGKILL, the surviving pool recovers the
dead one's jobs and finishes them all, and no row is completed twice."""

from __future__ import annotations

import importlib.util
import shutil
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar, cast

import anyio
import asyncpg
import pytest

from domain import Status
from gemini_simulator import SimulatorConfig, run_simulator
from pool.cli.signals import REPEAT_WINDOW_SECONDS, Action, SignalState, on_signal
from tests.support.pool_process import PoolProcess, pool_env, wait_for
from tests.support.queue_fill import enqueue_all, fetch, make_documents
from tests.support.sql import Q

TERM, INT, QUIT = signal.SIGTERM, signal.SIGINT, signal.SIGQUIT
GRACE = 600.0
F = TypeVar("F", bound=Callable[..., Coroutine[Any, Any, None]])


def process_test(test: F) -> F:
    """A test with real pool processes (slow)."""
    return cast(F, pytest.mark.slow(pytest.mark.anyio(test)))


# -- the rule ------------------------------------------------------------------------------
def run_signals(*received: tuple[float, signal.Signals], grace: float = GRACE) -> list[Action]:
    state, actions = SignalState(), []
    for at, signum in received:
        action, state = on_signal(state, signum, at, grace)
        actions.append(action)
    return actions


def test_the_first_sigterm_or_sigint_stops_gracefully() -> None:
    assert run_signals((10.0, TERM)) == [Action.STOP]
    assert run_signals((10.0, INT)) == [Action.STOP]


def test_copies_within_the_window_are_the_same_stop() -> None:
    # uv run / a control-group kill: the group's SIGTERM and uv's copy at once; ^C and
    # uv's SIGINT copy 200 ms later.
    assert run_signals((10.0, TERM), (10.001, TERM)) == [Action.STOP, Action.SAME]
    assert run_signals((10.0, INT), (10.2, INT)) == [Action.STOP, Action.SAME]
    # Even with no grace at all, a copy is not a second request.
    assert run_signals((10.0, TERM), (10.001, TERM), grace=0) == [Action.STOP, Action.SAME]


def test_sigterm_again_waits_for_the_grace_deadline_then_forces() -> None:
    assert run_signals((10.0, TERM), (40.0, TERM), (10.0 + GRACE - 1, TERM)) == [
        Action.STOP,
        Action.ALREADY_STOPPING,
        Action.ALREADY_STOPPING,
    ]
    assert run_signals((10.0, TERM), (10.0 + GRACE, TERM)) == [Action.STOP, Action.FORCE]
    assert run_signals((10.0, INT), (10.0 + GRACE + 5, TERM)) == [Action.STOP, Action.FORCE]


def test_a_second_sigint_forces() -> None:
    later = 10.0 + REPEAT_WINDOW_SECONDS
    assert run_signals((10.0, INT), (later, INT)) == [Action.STOP, Action.FORCE]
    assert run_signals((10.0, TERM), (10.3, INT)) == [Action.STOP, Action.FORCE]
    assert run_signals((10.0, INT), (10.2, INT), (13.0, INT), (13.2, INT)) == [
        Action.STOP,
        Action.SAME,
        Action.FORCE,
        Action.SAME,
    ]


def test_sigquit_forces_at_any_time() -> None:
    assert run_signals((10.0, QUIT)) == [Action.FORCE]
    assert run_signals((10.0, TERM), (12.0, QUIT)) == [Action.STOP, Action.FORCE]
    assert run_signals((10.0, QUIT), (10.0, QUIT)) == [Action.FORCE, Action.FORCE]


def test_the_grace_deadline_runs_from_the_first_stop_signal() -> None:
    _, state = on_signal(SignalState(), TERM, 10.0, GRACE)
    assert state.stop_since == 10.0
    _, state = on_signal(state, TERM, 50.0, GRACE)
    assert state.stop_since == 10.0
    assert state.last_seen == {TERM: 50.0}


# -- real processes --------------------------------------------------------------------------


@pytest.fixture
async def queue(migrated_url: str, tmp_path: Path) -> tuple[str, Path]:
    paths = make_documents(tmp_path / "docs", 10)
    await enqueue_all(migrated_url, paths)
    return migrated_url, tmp_path


@process_test
async def test_sigterm_finishes_jobs_in_hand_and_exits_0(
    queue: tuple[str, Path], redis_prefix: str
) -> None:
    url, tmp_path = queue
    # Slow answers: jobs are surely in flight when the signal comes.
    config = SimulatorConfig(port=0, latency_ms=800, latency_sigma=0, corpus=(tmp_path,))
    async with run_simulator(config) as sim:
        env = pool_env(url, redis_prefix, sim.url, "term-a", OCR_WORKER_POOL_SIZE=4)
        pool = PoolProcess(env, tmp_path / "pool.log")
        try:

            async def some_in_flight() -> bool:
                rows = await fetch(url, "in_progress_rows")
                return len(rows) >= 2

            await wait_for(some_in_flight, within=60)
            in_flight = {r["id"] for r in await fetch(url, "in_progress_rows")}
            pool.signal(signal.SIGTERM)
            code = await pool.wait(within=60)
        finally:
            pool.stop()
        output = pool.output()
    assert code == 0, output[-3000:]
    rows = {r["id"]: r for r in await fetch(url, "all_rows")}
    assert not [r for r in rows.values() if r["status_id"] == Status.OCR_IN_PROGRESS]
    for job in in_flight:  # what was in hand at SIGTERM was finished, not abandoned
        assert rows[job]["status_id"] == Status.OCR_COMPLETE, rows[job]
    left = [r for r in rows.values() if r["status_id"] == Status.READY_FOR_OCR]
    assert left, "the pool stopped claiming: some documents are still waiting"
    assert "SIGTERM" in output


@process_test
async def test_sigkill_of_one_pool_the_other_finishes_everything(
    queue: tuple[str, Path], redis_prefix: str
) -> None:
    url, tmp_path = queue
    conn = await asyncpg.connect(url)
    await conn.execute(Q["watch_completions"])
    await conn.close()
    config = SimulatorConfig(port=0, latency_ms=400, latency_sigma=0, corpus=(tmp_path,))
    lease = {"OCR_LEASE_SECONDS": 4, "OCR_HEARTBEAT_SECONDS": 1, "OCR_WORKER_POOL_SIZE": 3}
    async with run_simulator(config) as sim:
        victim = PoolProcess(
            pool_env(url, redis_prefix, sim.url, "kill-a", **lease), tmp_path / "a.log"
        )
        survivor = None
        try:

            async def victim_busy() -> bool:
                rows = await fetch(url, "in_progress_rows")
                return any(r["ocr_worker_id"].startswith("kill-a-") for r in rows)

            await wait_for(victim_busy, within=60)
            survivor = PoolProcess(
                pool_env(url, redis_prefix, sim.url, "kill-b", **lease),
                tmp_path / "b.log",
                "--until-empty",
            )
            held = {
                r["id"]
                for r in await fetch(url, "in_progress_rows")
                if r["ocr_worker_id"].startswith("kill-a-")
            }
            victim.signal(signal.SIGKILL)
            assert await victim.wait(within=10) == -signal.SIGKILL
            code = await survivor.wait(within=120)
            output = survivor.output()
        finally:
            victim.stop()
            if survivor is not None:
                survivor.stop()
        completions = [r for r in sim.records() if r.endpoint == "generateContent"]
    assert code == 0, output[-3000:]
    rows = {r["id"]: r for r in await fetch(url, "all_rows")}
    assert all(r["status_id"] == Status.OCR_COMPLETE for r in rows.values()), [
        (r["supabase_path"], r["status_id"], r["ocr_error"]) for r in rows.values()
    ]
    assert held
    for job in held:  # the dead pool's jobs were recovered and finished by the survivor
        assert rows[job]["ocr_worker_id"].startswith("kill-b-"), rows[job]
        assert rows[job]["ocr_attempts"] >= 1  # the lost attempt is counted
    assert "recovered" in output
    # Each row reached status 5 exactly once (a trigger logged every transition).
    counts = {r["id"]: r["n"] for r in await fetch(url, "completion_counts")}
    conn = await asyncpg.connect(url)
    await conn.execute(Q["unwatch_completions"])
    await conn.close()
    assert sorted(counts) == sorted(str(job) for job in rows)
    assert set(counts.values()) == {1}
    assert len(completions) >= 30  # 10 index x 2 pages + 10 acte x 2 calls


def uv_launcher() -> tuple[str, ...]:
    """`uv run ocr-pool`, as README's "By hand" and a service unit run it. `--no-sync`:
    the test runs the environment as it is (bootstrap.sh synced it from the lock) and
    must not change a shared working tree's `.venv`."""
    uv = shutil.which("uv")
    if uv is not None:
        return (uv, "run", "--no-sync", "ocr-pool")
    if importlib.util.find_spec("uv") is not None:
        return (sys.executable, "-m", "uv", "run", "--no-sync", "ocr-pool")
    pytest.fail("uv is not installed (scripts/bootstrap.sh installs it)")


@process_test
async def test_uv_run_pool_finishes_its_jobs_on_a_process_group_sigterm(
    queue: tuple[str, Path], redis_prefix: str
) -> None:
    """`systemctl stop` of `uv run ocr-pool start` (KillMode=control-group): SIGTERM to
    every process of the group, and uv forwards its own copy to the pool. One stop: the
    jobs in hand finish, none is given back, exit 0."""
    url, tmp_path = queue
    config = SimulatorConfig(port=0, latency_ms=800, latency_sigma=0, corpus=(tmp_path,))
    async with run_simulator(config) as sim:
        env = pool_env(url, redis_prefix, sim.url, "uv-term", OCR_WORKER_POOL_SIZE=4)
        pool = PoolProcess(env, tmp_path / "pool.log", launcher=uv_launcher(), new_session=True)
        try:

            async def some_in_flight() -> bool:
                return len(await fetch(url, "in_progress_rows")) >= 2

            await wait_for(some_in_flight, within=120)
            in_flight = {r["id"] for r in await fetch(url, "in_progress_rows")}
            pool.signal_group(signal.SIGTERM)
            code = await pool.wait(within=120)
        finally:
            pool.stop()
        output = pool.output()
    assert code == 0, output[-3000:]
    rows = {r["id"]: r for r in await fetch(url, "all_rows")}
    assert not [r for r in rows.values() if r["status_id"] == Status.OCR_IN_PROGRESS]
    for job in in_flight:
        assert rows[job]["status_id"] == Status.OCR_COMPLETE, rows[job]
    # None given back: a row back at 3 keeps the worker that held it.
    given_back = [
        r for r in rows.values() if r["status_id"] == Status.READY_FOR_OCR and r["ocr_worker_id"]
    ]
    assert not given_back, given_back
    assert all((r["ocr_attempts"] or 0) == 0 for r in rows.values())
    assert [r for r in rows.values() if r["status_id"] == Status.READY_FOR_OCR], "stopped claiming"
    # The group's SIGTERM and uv's copy: one stop. (When both land before the pool
    # runs, the kernel merges them and the pool sees one.)
    sigterms = [line for line in output.splitlines() if "pool: SIGTERM" in line]
    assert "SIGTERM: finishing the jobs in hand" in sigterms[0], sigterms
    assert all("SIGTERM again at once: the same stop request" in x for x in sigterms[1:])
    assert "giving back" not in output


@pytest.mark.parametrize(
    ("first", "force"),
    [(signal.SIGINT, signal.SIGINT), (signal.SIGTERM, signal.SIGINT), (signal.SIGTERM, QUIT)],
    ids=["int-int", "term-int", "term-quit"],
)
@process_test
async def test_sigterm_again_finishes_but_a_second_sigint_or_a_sigquit_forces(
    queue: tuple[str, Path], redis_prefix: str, first: signal.Signals, force: signal.Signals
) -> None:
    url, tmp_path = queue
    # Answers far slower than the test: the jobs in hand cannot finish by themselves.
    config = SimulatorConfig(port=0, latency_ms=20_000, latency_sigma=0, corpus=(tmp_path,))
    async with run_simulator(config) as sim:
        env = pool_env(url, redis_prefix, sim.url, "force-a", OCR_WORKER_POOL_SIZE=3)
        pool = PoolProcess(env, tmp_path / "pool.log")
        try:

            async def some_in_flight() -> bool:
                return len(await fetch(url, "in_progress_rows")) >= 2

            async def logged(text: str) -> bool:
                return text in pool.output()

            await wait_for(some_in_flight, within=60)
            pool.signal(first)
            await wait_for(lambda: logged(f"{first.name}: finishing the jobs in hand"), within=30)
            held = {r["id"] for r in await fetch(url, "in_progress_rows")}
            # A SIGTERM later than a copy would come: the graceful finish goes on.
            await anyio.sleep(REPEAT_WINDOW_SECONDS + 0.5)
            pool.signal(signal.SIGTERM)
            await wait_for(lambda: logged("SIGTERM again: still finishing the jobs"), within=30)
            assert pool.proc.poll() is None
            pool.signal(force)
            code = await pool.wait(within=60)
        finally:
            pool.stop()
        output = pool.output()
    assert code == 0, output[-3000:]
    assert f"{force.name}: giving back the jobs in hand now" in output
    rows = {r["id"]: r for r in await fetch(url, "all_rows")}
    assert held
    assert not [r for r in rows.values() if r["status_id"] == Status.OCR_IN_PROGRESS]
    for job in held:  # given back untouched: claimable again, no attempt counted
        assert rows[job]["status_id"] == Status.READY_FOR_OCR, rows[job]
        assert (rows[job]["ocr_attempts"] or 0) == 0, rows[job]
    assert not [r for r in rows.values() if r["status_id"] == Status.OCR_COMPLETE]
