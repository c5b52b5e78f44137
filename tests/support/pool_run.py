"""Run a pool's workers in-process until the queue has nothing left (tests, benchmarks)."""

from __future__ import annotations

from collections.abc import Sequence

import anyio

from domain import DocumentSource
from pool.wiring.runtime import Runtime
from workers.worker import JobReport, QueueTarget


async def queue_idle(targets: Sequence[QueueTarget]) -> bool:
    """Nothing claimable, waiting out a retry delay, or in progress, in any environment."""
    for target in targets:
        for part in (await target.store.composition()).values():
            if part.claimable or part.delayed or part.in_progress:
                return False
    return True


async def run_until_idle(
    runtime: Runtime,
    modes: dict[DocumentSource, int],
    *,
    within: float,
    poll: float = 0.2,
) -> list[JobReport]:
    """Start `modes[source]` workers of each mode, wait until the queue is idle twice in a
    row, ask every worker to stop and wait for them; return every job report."""
    reports: list[JobReport] = []
    workers = [
        runtime.worker(f"w-{source.value}-{n}", source, reports.append)
        for source, count in modes.items()
        for n in range(count)
    ]
    async with anyio.create_task_group() as tg:
        for worker in workers:
            tg.start_soon(worker.run)
        idle_polls = 0
        with anyio.fail_after(within):
            while idle_polls < 2:
                await anyio.sleep(poll)
                idle_polls = idle_polls + 1 if await queue_idle(runtime.targets) else 0
        for worker in workers:
            worker.stop()
    return reports
