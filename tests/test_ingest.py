"""Ingestion policy (pure) and file scanning."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pool.ingest import batches, priority_for_size, scan

MB = 1024 * 1024


@pytest.mark.parametrize(
    ("size", "priority"),
    [(0, 10), (MB, 10), (MB + 1, 8), (5 * MB, 8), (10 * MB, 6), (50 * MB, 4), (50 * MB + 1, 2)],
)
def test_priority_by_size(size: int, priority: int) -> None:
    assert priority_for_size(size) == priority


@given(st.integers(0, 10**11), st.integers(0, 10**11))
def test_smaller_files_never_rank_lower(a: int, b: int) -> None:
    small, big = sorted((a, b))
    assert priority_for_size(small) >= priority_for_size(big)


def test_negative_size_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        priority_for_size(-1)


def test_scan_expands_directories_and_reports_the_rest(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.pdf").write_bytes(b"%PDF a")
    (tmp_path / "sub" / "B.PDF").write_bytes(b"%PDF bb")
    (tmp_path / "notes.txt").write_text("x")
    explicit = tmp_path / "scan.bin"
    explicit.write_bytes(b"data")
    result = scan(
        [str(tmp_path), str(tmp_path / "a.pdf"), str(explicit), str(tmp_path / "gone.pdf")]
    )
    names = sorted(c.path.name for c in result.files)
    assert names == ["B.PDF", "a.pdf", "scan.bin"]  # a.pdf once, though named twice
    assert result.missing == [str(tmp_path / "gone.pdf")]
    assert result.skipped == [str(tmp_path / "notes.txt")]
    by_name = {c.path.name: c for c in result.files}
    assert by_name["B.PDF"].size == 7
    assert by_name["a.pdf"].uri == (tmp_path / "a.pdf").resolve().as_uri()


def test_batches() -> None:
    assert [list(b) for b in batches([1, 2, 3, 4, 5], 2)] == [[1, 2], [3, 4], [5]]
    with pytest.raises(ValueError, match="at least 1"):
        list(batches([], 0))
