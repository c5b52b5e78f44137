"""Batch ingestion for `ocr-pool enqueue`: find PDFs, give them a priority, queue them,
and say in one line what became of every path that was not queued."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from domain import DocumentSource, Status
from store import EnqueueResult, QueueStore

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
PDF_MAGIC = b"%PDF-"
HEADER_WINDOW = 1024
"""PDF readers accept the `%PDF-` header anywhere in the first 1 KB (junk may precede it)."""


def priority_for_size(size_bytes: int) -> int:
    """Claim priority of a document from its size (higher is claimed first)."""
    if size_bytes < 0:
        raise ValueError("size cannot be negative")
    for bound, priority in _PRIORITY_BY_SIZE:
        if size_bytes <= bound:
            return priority
    raise AssertionError("unreachable: the last bound is infinite")


def looks_like_pdf(head: bytes) -> bool:
    """Whether the first bytes of a file carry the PDF header within the first 1 KB."""
    return PDF_MAGIC in head[:HEADER_WINDOW]


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
    """Named paths that do not exist."""
    not_pdf: list[str] = field(default_factory=list)
    """Files named, or found as `*.pdf`, without the PDF header: never queued."""
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason) of files that could not be read."""
    empty_dirs: list[str] = field(default_factory=list)
    """Named directories holding no `*.pdf` file at any depth."""
    skipped: list[str] = field(default_factory=list)
    """Files of other extensions met in directories (not named): left alone."""

    @property
    def refused(self) -> int:
        """Named inputs that gave nothing to queue: the command exits 1."""
        return len(self.missing) + len(self.not_pdf) + len(self.unreadable) + len(self.empty_dirs)

    def problems(self) -> list[str]:
        """One line per path that is not queued for a reason of its own (no prefix)."""
        lines = [f"not found: {path}" for path in self.missing]
        lines += [
            f"not a PDF (no %PDF- header in its first 1 KB), not queued: {path}"
            for path in self.not_pdf
        ]
        lines += [f"cannot read {path}: {reason}" for path, reason in self.unreadable]
        lines += [f"no PDF in {path} (searched for *.pdf at any depth)" for path in self.empty_dirs]
        return lines


def _read_head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(HEADER_WINDOW)


def scan(paths: Iterable[str]) -> Scan:
    """Expand files and directories (recursively, `*.pdf` any case) into candidates.
    Files named explicitly are taken whatever their extension; every file taken must
    carry the PDF header (`looks_like_pdf`)."""
    result = Scan()
    seen: set[Path] = set()
    skipped: list[Path] = []

    def add(path: Path) -> None:
        resolved = path.resolve()
        if resolved in seen:
            return
        seen.add(resolved)
        try:
            head = _read_head(resolved)
            size = resolved.stat().st_size
        except OSError as exc:
            result.unreadable.append((str(path), exc.strerror or type(exc).__name__))
            return
        if looks_like_pdf(head):
            result.files.append(Candidate(resolved, size))
        else:
            result.not_pdf.append(str(path))

    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            pdfs = 0
            for child in sorted(path.rglob("*")):
                if child.is_file():
                    if child.suffix.lower() == ".pdf":
                        pdfs += 1
                        add(child)
                    else:
                        skipped.append(child)
            if pdfs == 0:
                result.empty_dirs.append(raw)
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


def duplicate_line(
    path: str, status_id: int, source: DocumentSource, env: str | None = None
) -> str:
    """What `enqueue` says of a path it did not queue because a row of the same type
    holds it and is not OCR-complete; a failed one says how to retry it."""
    if status_id == Status.ERROR:
        target = "" if env is None else f" --env {env}"
        return (
            f"failed earlier (status 4), not queued again: {path}; "
            f"`ocr-pool requeue-failed --source {source.value}{target}` gives failed "
            "documents fresh attempts"
        )
    return f"already queued (status {status_id}): {path}"


def summary_line(
    created: int, duplicates: int, source: DocumentSource, env: str, found: Scan
) -> str:
    """The last line of `enqueue`: what was queued, and counts of the rest."""
    parts = [
        f"queued {created} {source.value} document(s) in '{env}'",
        f"{duplicates} already queued",
        f"{len(found.missing)} not found",
    ]
    if found.not_pdf:
        parts.append(f"{len(found.not_pdf)} not a PDF")
    if found.unreadable:
        parts.append(f"{len(found.unreadable)} unreadable")
    if found.empty_dirs:
        count = len(found.empty_dirs)
        parts.append(f"{count} director{'y' if count == 1 else 'ies'} without a PDF")
    return "; ".join(parts)


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
