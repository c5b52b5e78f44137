"""Batch ingestion for `ocr-pool enqueue`: find PDFs, give them a priority, queue them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from workers.store import DocumentSource, EnqueueResult, QueueStore

T = TypeVar("T")
_MB = 1024 * 1024
# (upper bound in bytes, priority): small files first, as the queue being
# replaced did; a big acte costs minutes, a small one seconds.
_PRIORITY_BY_SIZE: tuple[tuple[float, int], ...] = (
    (1 * _MB, 10),
    (5 * _MB, 8),
    (10 * _MB, 6),
    (50 * _MB, 4),
    (float("inf"), 2),
)


def priority_for_size(size_bytes: int) -> int:
    """Claim priority of a document from its size (higher is claimed first)."""
    if size_bytes < 0:
        raise ValueError("size cannot be negative")
    for bound, priority in _PRIORITY_BY_SIZE:
        if size_bytes <= bound:
            return priority
    raise AssertionError("unreachable: the last bound is infinite")


@dataclass(frozen=True, slots=True)
class Candidate:
    path: Path
    size: int

    @property
    def uri(self) -> str:
        return self.path.as_uri()


@dataclass(slots=True)
class Scan:
    files: list[Candidate] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def scan(paths: Iterable[str]) -> Scan:
    """Expand files and directories (recursively, `*.pdf` any case) into candidates.
    Files named explicitly are taken whatever their extension."""
    result = Scan()
    seen: set[Path] = set()
    skipped: list[Path] = []

    def add(path: Path) -> None:
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            result.files.append(Candidate(resolved, resolved.stat().st_size))

    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file():
                    if child.suffix.lower() == ".pdf":
                        add(child)
                    else:
                        skipped.append(child)
        elif path.is_file():
            add(path)
        else:
            result.missing.append(raw)
    # A non-PDF seen in a directory but also named explicitly was taken, not skipped.
    result.skipped = [str(p) for p in skipped if p.resolve() not in seen]
    return result


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    if size < 1:
        raise ValueError("batch size must be at least 1")
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def enqueue_batch(
    store: QueueStore,
    source: DocumentSource,
    batch: Sequence[Candidate],
    max_attempts: int,
    priority: int | None = None,
) -> list[EnqueueResult]:
    return await store.enqueue(
        source,
        [c.uri for c in batch],
        [priority_for_size(c.size) if priority is None else priority for c in batch],
        max_attempts,
    )
