"""Each pool's temporary directory and the start-up sweep, with real processes and
signals: a live owner's directory is never touched, a SIGKILLed owner's is removed with
everything in it, a clean close removes its own; files of an earlier release and
half-made directories are swept, a shared base that is not ours is refused; downloads
and acte page ranges land in the pool's directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pool.cli.samples import acte_paragraphs, write_pdf
from workers import tempdirs
from workers.documents import FetchConfig, fetch_document
from workers.pdf import PdfLimits, inspect_pdf
from workers.pipelines.acte import _page_range
from workers.tempdirs import LEGACY_AGE_SECONDS, PoolTempDir, TempDirError, scratch_dir, sweep

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]

OWNER = """
import sys, time
from pathlib import Path
from workers.tempdirs import PoolTempDir
base, name = Path(sys.argv[1]), sys.argv[2]
held = PoolTempDir.claim(name, {"pool": name, "server": "srv", "prefix": "p:", "workers": ["w"]},
                         base)
for n in range(3):
    (held.path / f"ocr-pool-{n}.pdf").write_bytes(b"%PDF-1.7 land registry")
print("ready", flush=True)
time.sleep(600)
"""


@pytest.fixture
def base(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "tmp").mkdir()  # the system's temporary directory of these tests
    yield tmp_path / "tmp" / "ocr-pool"
    for held in list(tempdirs._claimed):  # what a failed test left claimed in this process
        held.close()


def spawn_owner(base: Path, name: str) -> subprocess.Popen[bytes]:
    child = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(base), name], cwd=ROOT, stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    assert child.stdout.readline().startswith(b"ready")
    return child


def test_a_live_owners_directory_stays_and_a_killed_ones_goes(base: Path) -> None:
    live = spawn_owner(base, "live01")
    dead = spawn_owner(base, "dead01")
    try:
        dead.send_signal(signal.SIGKILL)
        assert dead.wait(10) == -signal.SIGKILL
        assert len(list((base / "dead01").glob("ocr-pool-*.pdf"))) == 3  # what a SIGKILL leaves
        report = sweep(base)
        assert [s.name for s in report.swept] == ["dead01"]
        assert report.swept[0].files == 3
        assert report.swept[0].owner == {
            "pool": "dead01",
            "server": "srv",
            "prefix": "p:",
            "workers": ["w"],
        }
        assert not (base / "dead01").exists()
        assert len(list((base / "live01").glob("ocr-pool-*.pdf"))) == 3  # untouched
        assert sweep(base).swept == ()  # the live one, again
    finally:
        live.kill()
        live.wait(10)
    assert [s.name for s in sweep(base).swept] == ["live01"]
    assert sorted(os.listdir(base)) == []


def test_close_removes_the_directory_and_what_is_left_in_it(base: Path) -> None:
    assert scratch_dir() is None  # no pool here: the system's temporary directory
    held = PoolTempDir.claim("p1", {"pool": "p1"}, base)
    assert scratch_dir() == held.path == base / "p1"
    assert os.stat(base).st_mode & 0o777 == 0o700
    assert os.stat(held.path).st_mode & 0o777 == 0o700
    assert json.loads((held.path / "owner.json").read_text()) == {"pool": "p1"}
    (held.path / "ocr-pool-x.pdf").write_bytes(b"x")
    assert sweep(base).swept == ()  # held by this process: not swept by a second opener
    with pytest.raises(TempDirError, match="in use"):
        PoolTempDir.claim("p1", {}, base)
    assert held.close() == 1
    assert not held.path.exists()
    assert held.close() == 0  # idempotent
    assert scratch_dir() is None


def test_a_directory_removed_by_a_cleaner_is_made_again_and_locked(base: Path) -> None:
    held = PoolTempDir.claim("p2", {"pool": "p2"}, base)
    try:
        for path in held.path.iterdir():
            path.unlink()
        held.path.rmdir()  # e.g. a tmp cleaner
        assert scratch_dir() == held.path
        assert (held.path / "owner.json").exists()
        assert sweep(base).swept == ()  # locked again
    finally:
        held.close()
    assert not held.path.exists()


def test_half_made_and_earlier_release_leftovers_are_swept(base: Path) -> None:
    base.mkdir(mode=0o700)
    system_tmp = base.parent
    fresh_staging = base / ".p3.123.new"
    old_staging = base / ".p4.456.new"
    for staging in (fresh_staging, old_staging):
        staging.mkdir()
        (staging / "owner.json").write_text("{}")
    hour_ago = time.time() - LEGACY_AGE_SECONDS - 60
    os.utime(old_staging, (hour_ago, hour_ago))
    old = [system_tmp / "ocr-pool-abc.pdf", system_tmp / "ocr-pool-range-def.pdf"]
    young = system_tmp / "ocr-pool-young.pdf"
    other = system_tmp / "not-ours.pdf"
    for path in [*old, young, other]:
        path.write_bytes(b"%PDF")
    for path in [*old, other]:
        os.utime(path, (hour_ago, hour_ago))
    report = sweep(base)
    assert [s.name for s in report.swept] == [".p4.456.new"]
    assert report.legacy_files == 2
    assert report.files == 2
    assert fresh_staging.exists()  # a pool may be starting: left alone for a minute
    assert not old_staging.exists()
    assert [p.exists() for p in old] == [False, False]
    assert young.exists()  # an earlier release's pool may still be using it
    assert other.exists()


def test_a_base_that_is_not_a_private_directory_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "ocr-pool"
    link.symlink_to(target)
    with pytest.raises(TempDirError, match="not a directory"):
        PoolTempDir.claim("p5", {}, link)
    open_base = tmp_path / "open" / "ocr-pool"
    open_base.mkdir(parents=True)
    open_base.chmod(0o777)
    held = PoolTempDir.claim("p5", {}, open_base)
    try:
        assert os.stat(open_base).st_mode & 0o777 == 0o700
    finally:
        held.close()
    with pytest.raises(ValueError, match="not a plain name"):
        PoolTempDir.claim("../x", {}, open_base)


async def test_downloads_and_acte_page_ranges_go_to_the_pools_directory(
    base: Path, tmp_path: Path
) -> None:
    source = tmp_path / "acte.pdf"
    write_pdf(source, [acte_paragraphs(p, 3) for p in range(3)])
    held = PoolTempDir.claim("p6", {}, base)
    try:
        async with fetch_document(str(source), "acte", FetchConfig()) as document:
            assert document.path.parent == held.path
            assert document.path.stat().st_mode & 0o777 == 0o600
            info = await inspect_pdf(document.path, PdfLimits())
            async with _page_range(document.path, 2, 3, info.page_count) as part:
                assert part.parent == held.path
                assert part.name.startswith("ocr-pool-range-")
                assert part.stat().st_mode & 0o777 == 0o600
                assert len(list(held.path.glob("ocr-pool-*.pdf"))) == 2
            assert not part.exists()
        assert not document.path.exists()
        assert sorted(p.name for p in held.path.iterdir()) == ["owner.json"]
    finally:
        held.close()
