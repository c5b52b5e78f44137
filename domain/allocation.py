"""One allocation decision of a pool manager, as recorded in `ocr_pool_allocations`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AllocationRecord:
    """One allocation decision of a pool manager (table `ocr_pool_allocations`)."""

    pool_id: str
    server_id: str
    pool_size: int
    index_workers: int
    acte_workers: int
    index_waiting: int = 0
    acte_waiting: int = 0
    index_seconds: float | None = None
    acte_seconds: float | None = None
    reason: str = ""
