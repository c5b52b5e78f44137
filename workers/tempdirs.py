"""Each pool's private temporary directory, and the start-up sweep of dead pools' ones.

Every temporary file a pool makes (downloaded documents, `workers/documents.py`; acte
page ranges, `workers/pipelines/acte.py`) goes into one directory of its own:

    <tmp>/ocr-pool/               0700, this user's (`<tmp>`: $TMPDIR, else /tmp)
        <pool-id>/                0700, one per running pool
            owner.json            pid, pool id, server id, Redis prefix, worker names
            ocr-pool-*.pdf        downloads (0600), removed when their job ends
            ocr-pool-range-*.pdf  acte page ranges (0600), removed after their request

The pool holds an exclusive `flock` on its directory for as long as it runs; the kernel
drops it when the process ends, however it ends. A pool that stops cleanly removes its
directory; one that was SIGKILLed (or lost its machine's power) leaves it, and the next
pool to start on the machine removes it: `sweep()` takes the lock of every directory it
finds and removes those whose lock it gets (their owner is gone). A live pool's
directory is never touched (its lock is held). Files an earlier release left directly in
`<tmp>` (`ocr-pool-*.pdf`, not modified for an hour) are removed by the sweep too.

A directory is made under a staging name (`.<pool-id>.<pid>.new`), locked, then renamed,
so a sweep never sees an unlocked directory of a pool that is starting; a staging
directory more than a minute old whose lock is free is a leftover, and is swept.
`systemd-tmpfiles` leaves locked directories alone, and a directory a cleaner removed
anyway is made again (and locked) before the next file goes into it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("workers.tempdirs")

BASE_NAME = "ocr-pool"
OWNER_FILE = "owner.json"
STAGING_GRACE_SECONDS = 60.0
"""A staging directory younger than this belongs to a pool that is starting."""
LEGACY_PATTERN = "ocr-pool-*.pdf"
"""What earlier releases left in the system's temporary directory (downloads and ranges)."""
LEGACY_AGE_SECONDS = 3600.0
"""Such a file not modified for this long is left over (a pool of an earlier release may
still be running during an upgrade: its files in use are younger)."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class TempDirError(RuntimeError):
    """The temporary directory cannot be used (one line, says what to do)."""


@dataclass(frozen=True, slots=True)
class Swept:
    """A dead pool's directory, removed."""

    name: str
    owner: Mapping[str, Any] | None
    """Its `owner.json` (None if missing or unreadable)."""
    files: int


@dataclass(frozen=True, slots=True)
class SweepReport:
    swept: tuple[Swept, ...] = ()
    legacy_files: int = 0
    """Files of earlier releases removed from the system's temporary directory."""
    failures: tuple[str, ...] = field(default=())

    @property
    def files(self) -> int:
        return self.legacy_files + sum(s.files for s in self.swept)


def default_base() -> Path:
    """`<tmp>/ocr-pool` (`<tmp>`: `tempfile.gettempdir()`, which follows $TMPDIR)."""
    return Path(tempfile.gettempdir()) / BASE_NAME


def private_base(base: Path | None = None) -> Path:
    """The base directory, made 0700 if missing; refused unless it is a real directory
    of this user that nobody else can write to (the temporary directory is shared)."""
    base = base or default_base()
    with contextlib.suppress(FileExistsError):
        os.mkdir(base, 0o700)
    try:
        info = os.lstat(base)
    except OSError as exc:
        raise TempDirError(f"temporary directory {base}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise TempDirError(
            f"temporary directory {base} is not a directory (a symlink or a file is there); "
            "remove it or set TMPDIR elsewhere"
        )
    if info.st_uid != os.geteuid():
        raise TempDirError(
            f"temporary directory {base} belongs to another user (uid {info.st_uid}); "
            "set TMPDIR to a directory of this user"
        )
    if info.st_mode & 0o077:
        os.chmod(base, 0o700)
    return base


def _open_dir(path: Path | str) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _count_files(path: Path) -> int:
    count = 0
    for _root, _dirs, names in os.walk(path):
        count += sum(1 for name in names if name != OWNER_FILE)
    return count


def _read_owner(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((path / OWNER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class PoolTempDir:
    """A running pool's directory (locked while this object lives). `claim()` makes it."""

    def __init__(self, base: Path, name: str, owner: Mapping[str, Any], fd: int) -> None:
        self.base = base
        self.name = name
        self.path = base / name
        self.owner = dict(owner)
        self._fd: int | None = fd

    @classmethod
    def claim(cls, name: str, owner: Mapping[str, Any], base: Path | None = None) -> PoolTempDir:
        """Make and lock `<base>/<name>/` with `owner` recorded in it; it becomes where this
        process's temporary files go (`scratch_dir()`) until `close()`."""
        if not _NAME.match(name):
            raise ValueError(f"pool temporary directory name {name!r} is not a plain name")
        base = private_base(base)
        fd = cls._make(base, name, owner)
        made = cls(base, name, owner, fd)
        _claimed.append(made)
        return made

    @staticmethod
    def _make(base: Path, name: str, owner: Mapping[str, Any]) -> int:
        target = base / name
        if target.exists():
            # Same name as a dead pool's leftover? Sweep it; a live one keeps it.
            sweep(base, only=name)
            if target.exists():
                raise TempDirError(f"temporary directory {target} is in use by a running pool")
        staging = base / f".{name}.{os.getpid()}.new"
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
        os.mkdir(staging, 0o700)
        fd = _open_dir(staging)
        try:
            if not _try_lock(fd):
                raise TempDirError(f"temporary directory {staging} is locked by another process")
            record = os.open(
                staging / OWNER_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600
            )
            with os.fdopen(record, "w", encoding="utf-8") as out:
                json.dump(dict(owner), out)
            os.rename(staging, target)
        except BaseException:
            os.close(fd)
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return fd

    @property
    def closed(self) -> bool:
        return self._fd is None

    def ensure(self) -> Path:
        """The directory, made again (and locked) if something removed it meanwhile."""
        if self._fd is None:
            raise TempDirError(f"temporary directory {self.path} was closed")
        try:
            same = os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(self._fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            log.warning("temporary directory %s was removed: making it again", self.path)
            os.close(self._fd)
            self._fd = None
            private_base(self.base)
            self._fd = self._make(self.base, self.name, self.owner)
        return self.path

    def close(self) -> int:
        """Remove the directory and whatever is still in it (a clean stop), then let go
        of the lock. Returns how many files were left in it. Idempotent."""
        if self._fd is None:
            return 0
        left = 0
        try:
            if os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(self._fd).st_ino:
                left = _count_files(self.path)
                shutil.rmtree(self.path, ignore_errors=True)
        except FileNotFoundError:
            pass
        finally:
            os.close(self._fd)
            self._fd = None
            with contextlib.suppress(ValueError):
                _claimed.remove(self)
        return left


_claimed: list[PoolTempDir] = []
"""This process's pool directories, latest last (tests and benchmarks run several pools
in one process; each file goes to the latest one still open)."""


def scratch_dir() -> Path | None:
    """Where this process's temporary files go: its pool's directory (made again if it
    was removed), or None (the system's) when no pool claimed one."""
    if not _claimed:
        return None
    return _claimed[-1].ensure()


def sweep(
    base: Path | None = None,
    *,
    only: str | None = None,
    legacy_age_seconds: float = LEGACY_AGE_SECONDS,
) -> SweepReport:
    """Remove the directories under `base` whose owner is gone (their lock is free), and
    the files an earlier release left in the system's temporary directory. `only`: just
    that directory name (and no legacy files)."""
    base = private_base(base)
    swept: list[Swept] = []
    failures: list[str] = []
    now = time.time()
    for entry in sorted(os.scandir(base), key=lambda e: e.name):
        if only is not None and entry.name != only:
            continue
        if not entry.is_dir(follow_symlinks=False):
            continue
        if entry.name.startswith("."):
            try:
                if now - entry.stat(follow_symlinks=False).st_mtime < STAGING_GRACE_SECONDS:
                    continue  # a pool starting right now
            except FileNotFoundError:
                continue
        try:
            fd = _open_dir(entry.path)
        except OSError:
            continue  # gone meanwhile, or not ours to open
        try:
            if not _try_lock(fd):
                continue  # its pool is running
            path = Path(entry.path)
            owner = _read_owner(path)
            files = _count_files(path)
            shutil.rmtree(path, onerror=lambda _f, p, e: failures.append(f"{p}: {e[1]}"))
            swept.append(Swept(entry.name, owner, files))
        finally:
            os.close(fd)
    legacy = 0
    if only is None:
        legacy, legacy_failures = _sweep_legacy(base.parent, now - legacy_age_seconds)
        failures += legacy_failures
    return SweepReport(tuple(swept), legacy, tuple(failures))


def _sweep_legacy(directory: Path, before: float) -> tuple[int, list[str]]:
    removed, failures = 0, []
    uid = os.geteuid()
    for path in directory.glob(LEGACY_PATTERN):
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(info.st_mode) or info.st_uid != uid or info.st_mtime >= before:
            continue
        try:
            os.unlink(path)
            removed += 1
        except FileNotFoundError:
            continue
        except OSError as exc:
            failures.append(f"{path}: {exc.strerror or exc}")
    return removed, failures
