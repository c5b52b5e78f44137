"""workers.pdf on PDFs generated here: good, empty, random, corrupt, truncated,
encrypted, over the page cap, page-less, and one with a 200 x 200 inch page."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pymupdf
import pytest

from pool.cli.samples import index_lines
from workers.errors import DocumentError
from workers.pdf import (
    PdfLimits,
    expected_pixmap_size,
    inspect_pdf,
    render_page_png,
    render_scale,
    text_layer,
    write_pages,
)

pytestmark = pytest.mark.anyio

LIMITS = PdfLimits(max_pages=300, dpi=200, max_page_pixels=25_000_000)
ROOT = Path(__file__).resolve().parents[2]


def _write(path: Path, pages: list[list[str]], size: tuple[float, float] = (612, 792)) -> Path:
    doc = pymupdf.open()
    for lines in pages:
        page = doc.new_page(width=size[0], height=size[1])
        y = 72.0
        for line in lines:
            page.insert_text((54, y), line, fontsize=9)
            y += 14
    doc.save(path)
    doc.close()
    return path


@pytest.fixture
def good_pdf(tmp_path: Path) -> Path:
    """Three US-letter pages of French index lines, as pool.cli.samples writes them."""
    return _write(tmp_path / "index.pdf", [index_lines(page, 30) for page in range(3)])


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


async def test_good_pdf_is_described(good_pdf: Path) -> None:
    info = await inspect_pdf(good_pdf, LIMITS)
    assert info.page_count == 3
    assert info.has_text_layer
    assert not info.encrypted
    assert not info.repaired
    assert info.page_sizes == ((612.0, 792.0),) * 3


async def test_text_layer_is_the_french_text(good_pdf: Path) -> None:
    pages = await text_layer(good_pdf)
    assert len(pages) == 3
    for number, text in enumerate(pages):
        # The first line of each page, accents included, comes back.
        assert index_lines(number, 30)[0] in text


async def test_scan_without_text_has_no_text_layer(tmp_path: Path) -> None:
    path = _write(tmp_path / "blank.pdf", [[], []])
    info = await inspect_pdf(path, LIMITS)
    assert (info.page_count, info.has_text_layer) == (2, False)


@pytest.mark.parametrize("dpi", [200, 144, 72])
async def test_render_is_grayscale_png_at_the_requested_dpi(good_pdf: Path, dpi: int) -> None:
    page = await render_page_png(good_pdf, 1, PdfLimits(dpi=dpi))
    assert (page.page_index, page.dpi) == (1, dpi)
    assert (page.width, page.height) == (round(612 * dpi / 72), round(792 * dpi / 72))
    assert _png_size(page.png) == (page.width, page.height)
    pix = pymupdf.Pixmap(page.png)
    assert (pix.n, pix.alpha) == (1, 0)  # one gray channel, no alpha


async def test_render_matches_the_documented_call(good_pdf: Path) -> None:
    """What a simulator re-rendering the page the documented way gets, byte for byte."""
    page = await render_page_png(good_pdf, 0, LIMITS)
    with pymupdf.open(good_pdf) as doc:
        s = 200 / 72
        pix = doc[0].get_pixmap(matrix=pymupdf.Matrix(s, s), colorspace=pymupdf.csGRAY, alpha=False)
        assert page.png == pix.tobytes("png")


async def test_fractional_page_sizes_round_outwards(tmp_path: Path) -> None:
    """MuPDF's pixmap is the transformed page box rounded outwards (not round())."""
    path = _write(tmp_path / "odd.pdf", [["x"]], size=(612.1, 595.28))
    page = await render_page_png(path, 0, LIMITS)
    assert (page.width, page.height) == (1701, 1654)  # 1700.28 → 1701, 1653.56 → 1654
    with pymupdf.open(path) as doc:
        assert expected_pixmap_size(doc[0].rect, 200 / 72) == (1701, 1654)


async def test_page_index_out_of_range(good_pdf: Path) -> None:
    with pytest.raises(IndexError, match="has 3 pages"):
        await render_page_png(good_pdf, 3, LIMITS)


async def test_write_pages_subset(good_pdf: Path, tmp_path: Path) -> None:
    out = tmp_path / "subset.pdf"
    await write_pages(good_pdf, out, [2, 0])
    texts = await text_layer(out)
    assert len(texts) == 2
    assert index_lines(2, 30)[0] in texts[0]
    assert index_lines(0, 30)[0] in texts[1]


# --- bad documents -------------------------------------------------------------


async def _rejected(path: Path, limits: PdfLimits = LIMITS) -> str:
    with pytest.raises(DocumentError) as inspected:
        await inspect_pdf(path, limits, label="index/2024/doc.pdf")
    message = inspected.value.message
    assert "\n" not in message
    assert "index/2024/doc.pdf" in message
    assert str(path) not in message  # the label, not the temporary file
    assert inspected.value.permanent
    return message


async def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pdf"
    path.write_bytes(b"")
    assert await _rejected(path) == "document index/2024/doc.pdf is an empty file (0 bytes)"


async def test_random_bytes_are_not_a_pdf(tmp_path: Path) -> None:
    path = tmp_path / "random.pdf"
    path.write_bytes(random.Random(7).randbytes(4096).replace(b"%PDF-", b"xxxxx"))
    message = await _rejected(path)
    assert message == (
        "document index/2024/doc.pdf is not a PDF (no %PDF- header in its first 1024 bytes)"
    )


async def test_other_format_with_pdf_name(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    pymupdf.Pixmap(pymupdf.csGRAY, pymupdf.IRect(0, 0, 10, 10), 0).save(path, output="png")
    assert "is not a PDF" in await _rejected(path)


async def test_pdf_header_over_garbage_is_corrupt(tmp_path: Path) -> None:
    """'Corrupt' = pymupdf cannot open the file at all: a PDF header, then no
    readable object structure, so even MuPDF's repair pass finds nothing."""
    path = tmp_path / "corrupt.pdf"
    path.write_bytes(b"%PDF-1.7\n" + random.Random(3).randbytes(8192))
    message = await _rejected(path)
    assert message.startswith("document index/2024/doc.pdf is a corrupt PDF (pymupdf cannot open")


async def test_valid_pdf_with_its_middle_destroyed_is_corrupt(tmp_path: Path) -> None:
    data = bytearray(_write(tmp_path / "ten.pdf", _ten_pages()).read_bytes())
    # Zero everything between the header and the last 10%: objects, streams, xref.
    data[16 : int(len(data) * 0.9)] = bytes(int(len(data) * 0.9) - 16)
    path = tmp_path / "zeroed.pdf"
    path.write_bytes(bytes(data))
    assert "is a corrupt PDF" in await _rejected(path)


def _ten_pages() -> list[list[str]]:
    return [index_lines(page, 40) for page in range(10)]


async def test_truncated_pdf_is_rejected_though_pymupdf_repairs_it(tmp_path: Path) -> None:
    """A download cut short: pymupdf rebuilds the xref and still lists every page,
    but the pages past the cut are empty. The missing %%EOF gives it away."""
    data = _write(tmp_path / "ten.pdf", _ten_pages()).read_bytes()
    path = tmp_path / "truncated.pdf"
    path.write_bytes(data[: int(len(data) * 0.3)])
    with pymupdf.open(path) as doc:  # what pymupdf alone would say
        assert doc.is_repaired
        assert doc.page_count == 10
    message = await _rejected(path)
    assert message.startswith("document index/2024/doc.pdf is a truncated PDF")


async def test_repaired_but_complete_pdf_is_accepted(good_pdf: Path, tmp_path: Path) -> None:
    """A wrong xref offset (common with scanners) is repaired; the file is complete."""
    data = await anyio.Path(good_pdf).read_bytes()
    startxref = data.rindex(b"startxref")
    path = tmp_path / "bad-xref.pdf"
    path.write_bytes(data[:startxref] + b"startxref\n12\n%%EOF\n")
    info = await inspect_pdf(path, LIMITS)
    assert info.repaired
    assert info.page_count == 3
    assert index_lines(0, 30)[0] in (await text_layer(path))[0]


async def test_encrypted_pdf(good_pdf: Path, tmp_path: Path) -> None:
    path = tmp_path / "locked.pdf"
    with pymupdf.open(good_pdf) as doc:
        doc.save(path, encryption=pymupdf.mupdf.PDF_ENCRYPT_AES_256, user_pw="x", owner_pw="y")
    message = await _rejected(path)
    assert message == (
        "document index/2024/doc.pdf is an encrypted PDF (it needs a password to open)"
    )
    with pytest.raises(DocumentError, match="encrypted"):
        await render_page_png(path, 0, LIMITS)


async def test_owner_password_only_is_accepted(good_pdf: Path, tmp_path: Path) -> None:
    """Permissions-only encryption opens without a password: nothing stops OCR."""
    path = tmp_path / "restricted.pdf"
    with pymupdf.open(good_pdf) as doc:
        doc.save(
            path,
            encryption=pymupdf.mupdf.PDF_ENCRYPT_AES_256,
            owner_pw="y",
            permissions=pymupdf.mupdf.PDF_PERM_ACCESSIBILITY,
        )
    info = await inspect_pdf(path, LIMITS)
    assert (info.page_count, info.encrypted) == (3, True)
    assert (await render_page_png(path, 0, LIMITS)).width == 1700


async def test_too_many_pages(tmp_path: Path) -> None:
    path = _write(tmp_path / "long.pdf", [[]] * 6)
    message = await _rejected(path, PdfLimits(max_pages=5))
    assert message == "document index/2024/doc.pdf has 6 pages, over the 5-page cap"
    assert (await inspect_pdf(path, PdfLimits(max_pages=6))).page_count == 6


async def test_zero_pages(tmp_path: Path) -> None:
    """pymupdf refuses to save a page-less PDF ("cannot save with zero pages"): the
    file is written by hand, with a correct xref so nothing needs repairing."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [] /Count 0 >>",
    ]
    body = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n%s\nendobj\n" % (number, obj)
    xref = len(body)
    body += b"xref\n0 3\n0000000000 65535 f \n"
    body += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    body += b"trailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    path = tmp_path / "zero-pages.pdf"
    path.write_bytes(bytes(body))
    with pymupdf.open(path) as doc:
        assert (doc.page_count, doc.is_repaired) == (0, False)
    assert await _rejected(path) == "document index/2024/doc.pdf is a PDF with no pages"


async def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="does not exist"):
        await inspect_pdf(tmp_path / "nope.pdf", LIMITS)
    with pytest.raises(DocumentError, match="is a directory"):
        await inspect_pdf(tmp_path, LIMITS)


# --- pixel budget --------------------------------------------------------------

HUGE = 200 * 72  # 200 inches in points: 14 400, the largest page PDF allows


def test_render_scale_keeps_dpi_when_the_page_fits() -> None:
    assert render_scale(pymupdf.Rect(0, 0, 612, 792), 200, 25_000_000) == 200 / 72


@pytest.mark.parametrize(
    ("width", "height", "budget"),
    [
        (HUGE, HUGE, 25_000_000),
        (HUGE, HUGE, 1_000_003),
        (HUGE, 72, 50_000),
        (612.1, 792.3, 1_000_000),
        (HUGE, HUGE, 1),
        (HUGE, 1, 1),
    ],
)
def test_render_scale_fits_the_budget(width: float, height: float, budget: int) -> None:
    rect = pymupdf.Rect(0, 0, width, height)
    scale = render_scale(rect, 200, budget)
    w, h = expected_pixmap_size(rect, scale)
    assert w * h <= budget
    assert w >= 1
    assert h >= 1
    if budget >= 1000:  # and it is not needlessly small: within 1% of the budget's side
        assert w * h >= budget * 0.98


async def test_huge_media_box_renders_within_the_budget(tmp_path: Path) -> None:
    path = tmp_path / "huge.pdf"
    doc = pymupdf.open()
    page = doc.new_page(width=HUGE, height=HUGE)
    page.insert_text((720, 2000), "Plan cadastral", fontsize=600)
    doc.save(path)
    doc.close()
    info = await inspect_pdf(path, LIMITS)
    assert info.page_sizes == ((HUGE, HUGE),)
    rendered = await render_page_png(path, 0, LIMITS)
    # 200 DPI would be 40 000 x 40 000 = 1.6 Gpx; the budget gives 25 DPI.
    assert rendered.width * rendered.height <= LIMITS.max_page_pixels
    assert (rendered.width, rendered.height) == (5000, 5000)
    assert rendered.dpi == pytest.approx(25, rel=1e-3)
    assert _png_size(rendered.png) == (5000, 5000)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_huge_page_peak_memory(tmp_path: Path) -> None:
    """Peak RSS (VmHWM) of a fresh interpreter rendering the 200 x 200 inch page, over
    its peak once pymupdf is imported and the document inspected. A 25 Mpx gray
    pixmap is 25 MB; rendering at 200 DPI would need 1.6 GB. (VmHWM rather than
    getrusage: ru_maxrss survives exec, so a child of a big pytest starts high.)"""
    path = tmp_path / "huge.pdf"
    doc = pymupdf.open()
    doc.new_page(width=HUGE, height=HUGE).insert_text((720, 2000), "Plan", fontsize=600)
    doc.save(path)
    doc.close()
    script = textwrap.dedent(
        f"""
        import json, re, anyio
        from workers.pdf import PdfLimits, render_page_png, inspect_pdf
        def peak_kb():
            status = open("/proc/self/status").read()
            return int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))
        limits = PdfLimits()
        anyio.run(inspect_pdf, {str(path)!r}, limits)
        before = peak_kb()
        page = anyio.run(render_page_png, {str(path)!r}, 0, limits)
        after = peak_kb()
        print(json.dumps({{"before_kb": before, "after_kb": after,
                          "pixels": page.width * page.height, "png": len(page.png)}}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    growth_mb = (figures["after_kb"] - figures["before_kb"]) / 1024
    print(f"huge page: {figures}, peak RSS growth {growth_mb:.1f} MB")
    assert figures["pixels"] <= 25_000_000
    assert 20 < growth_mb < 150  # the 25 MB pixmap shows; a 1.6 GB one could not hide
