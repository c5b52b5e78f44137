"""Ingestion policy (pure) and file scanning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import DocumentSource
from pool.cli.ingest import (
    Scan,
    batches,
    duplicate_line,
    looks_like_pdf,
    priority_for_size,
    scan,
    summary_line,
)

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
    (tmp_path / "a.pdf").write_bytes(b"%PDF-a")
    (tmp_path / "sub" / "B.PDF").write_bytes(b"%PDF-b")
    (tmp_path / "notes.txt").write_text("x")
    explicit = tmp_path / "scan.bin"
    explicit.write_bytes(b"%PDF-")
    result = scan(
        [str(tmp_path), str(tmp_path / "a.pdf"), str(explicit), str(tmp_path / "gone.pdf")]
    )
    names = sorted(c.path.name for c in result.files)
    assert names == ["B.PDF", "a.pdf", "scan.bin"]  # a.pdf once, though named twice
    assert result.missing == [str(tmp_path / "gone.pdf")]
    assert result.skipped == [str(tmp_path / "notes.txt")]
    by_name = {c.path.name: c for c in result.files}
    assert by_name["B.PDF"].size == 6
    assert by_name["a.pdf"].uri == (tmp_path / "a.pdf").resolve().as_uri()


def test_batches() -> None:
    assert [list(b) for b in batches([1, 2, 3, 4, 5], 2)] == [[1, 2], [3, 4], [5]]
    with pytest.raises(ValueError, match="at least 1"):
        list(batches([], 0))


@pytest.mark.parametrize(
    ("head", "pdf"),
    [
        (b"%PDF-1.7\n", True),
        (b"\xef\xbb\xbf" + b"junk" * 200 + b"%PDF-1.4", True),  # within the first 1 KB
        (b"x" * 1019 + b"%PDF-", True),
        (b"x" * 1020 + b"%PDF-", False),  # the header ends past 1 KB
        (b"%PDF", False),
        (b"<html>%PDF-</html>"[:6], False),
        (b"", False),
    ],
)
def test_looks_like_pdf(head: bytes, pdf: bool) -> None:
    assert looks_like_pdf(head) is pdf


def test_scan_refuses_what_is_not_a_pdf(tmp_path: Path) -> None:
    named = tmp_path / "notes.txt"
    named.write_text("plain text")
    fake = tmp_path / "dir" / "fake.pdf"
    fake.parent.mkdir()
    fake.write_bytes(b"<html>404</html>")
    (tmp_path / "dir" / "real.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "empty").mkdir()
    (tmp_path / "nopdf").mkdir()
    (tmp_path / "nopdf" / "a.tif").write_bytes(b"II*")
    found = scan(
        [str(named), str(tmp_path / "dir"), str(tmp_path / "empty"), str(tmp_path / "nopdf")]
    )
    assert [c.path.name for c in found.files] == ["real.pdf"]
    assert found.not_pdf == [str(named), str(fake)]
    assert found.empty_dirs == [str(tmp_path / "empty"), str(tmp_path / "nopdf")]
    assert found.skipped == [str(tmp_path / "nopdf" / "a.tif")]
    assert found.refused == 4
    assert found.problems() == [
        f"not a PDF (no %PDF- header in its first 1 KB), not queued: {named}",
        f"not a PDF (no %PDF- header in its first 1 KB), not queued: {fake}",
        f"no PDF in {tmp_path / 'empty'} (searched for *.pdf at any depth)",
        f"no PDF in {tmp_path / 'nopdf'} (searched for *.pdf at any depth)",
    ]


def test_scan_reports_an_unreadable_file(tmp_path: Path) -> None:
    locked = tmp_path / "locked.pdf"
    locked.write_bytes(b"%PDF-1.4")
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as a user who reads anything (root)")
        found = scan([str(locked)])
    finally:
        locked.chmod(0o600)
    assert found.unreadable == [(str(locked), "Permission denied")]
    assert found.problems() == [f"cannot read {locked}: Permission denied"]


def test_duplicate_lines() -> None:
    acte = DocumentSource.ACTE
    assert duplicate_line("file:///a.pdf", 3, acte) == "already queued (status 3): file:///a.pdf"
    assert duplicate_line("file:///a.pdf", 6, acte) == "already queued (status 6): file:///a.pdf"
    assert duplicate_line("file:///a.pdf", 4, acte) == (
        "failed earlier (status 4), not queued again: file:///a.pdf; "
        "`ocr-pool requeue-failed --source acte` gives failed documents fresh attempts"
    )
    assert duplicate_line("file:///a.pdf", 4, DocumentSource.INDEX, "prod").endswith(
        "`ocr-pool requeue-failed --source index --env prod` gives failed documents fresh attempts"
    )


def test_summary_line_counts_only_what_happened() -> None:
    index = DocumentSource.INDEX
    assert summary_line(3, 1, index, "default", Scan()) == (
        "queued 3 index document(s) in 'default'; 1 already queued; 0 not found"
    )
    found = Scan(
        missing=["a"], not_pdf=["b", "c"], unreadable=[("d", "Permission denied")], empty_dirs=["e"]
    )
    assert summary_line(0, 0, index, "dev", found) == (
        "queued 0 index document(s) in 'dev'; 0 already queued; 1 not found; 2 not a PDF; "
        "1 unreadable; 1 directory without a PDF"
    )
