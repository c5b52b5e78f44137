"""The database side of ocr-pool: numbered migrations and named SQL queries.

Every statement the project sends lives in a `.sql` file in this package or next
to the code that uses it, read by name with `store.sql.load_queries`.

Migration files
===============

``NNNN_name.sql`` files are applied once each, in version order, by
``ocr-pool migrate`` (`store/migrations/runner.py`), and recorded in
``ocr_pool_migrations`` with the sha256 of their text. They run against tables
that other programs write to every second, hence these rules.

Steps
    A file may be divided into steps by lines of the form::

        -- step: <free text>

    (a line comment at the start of a line, outside strings and function
    bodies; the text names the step in messages). Text before the first marker
    is a step of its own, so a file without markers is one step. A step that
    holds no statement (only comments) is skipped.

One transaction per step, a short lock timeout, retries
    Each step runs in its own transaction with ``SET LOCAL lock_timeout``
    (default 200 ms: ``apply_migrations(lock_timeout_ms=…)``,
    ``ocr-pool migrate --lock-timeout-ms``). A step that cannot get a lock in
    time (SQLSTATE 55P03, ``lock_not_available``) is rolled back and retried
    after a jittered back-off, for a bounded total time (default 10 minutes,
    ``retry_for_seconds``); then the run stops with one line naming the
    migration and the step.

Steps are idempotent
    A step may run more than once: after a lock timeout, and after an
    interrupted run (the ledger row is written only once every step of the file
    has succeeded, so the next run starts the file again from its first step).
    Write each step so that running it again changes nothing: ``IF NOT
    EXISTS``, ``CREATE OR REPLACE``, ``ON CONFLICT DO NOTHING``, DO blocks that
    check before they act.

Short locks
    A lock that blocks writers (``ALTER TABLE`` takes ACCESS EXCLUSIVE) is held
    until its step commits: give such a statement a step of its own, with
    nothing slow after it. Adding a column with a constant default (or none) is
    instant; a volatile default (``now()``), a type change or a ``NOT NULL``
    check on an existing column reads or rewrites the whole table: not on a
    shared table.

CONCURRENTLY
    A step whose SQL contains the keyword ``CONCURRENTLY`` (outside comments and
    strings) runs outside any transaction, with the same lock timeout (set for
    the session, put back afterwards) and the same retries. Such a step holds
    exactly one statement: a file that mixes it with other statements in one
    step is refused before anything runs. Indexes on a pre-existing table are
    built this way, written ``CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS
    <name> ON …`` (a name, and IF NOT EXISTS, are required): an INVALID index of
    that name, left by an interrupted earlier run, is dropped (``DROP INDEX
    CONCURRENTLY``) and built again.

Lockdown
    A step that creates or replaces a table, view or function ends with
    ``SELECT * FROM ocr_lockdown();`` in that same step (see 0006), so that
    nothing is exposed between two transactions.

Never edit an applied migration
    A recorded checksum that differs from the file stops the run. The one
    exception is `superseded.txt`: texts an earlier release applied and this
    release rewrote; such a migration is reported as kept and its ledger row is
    left alone.

The SQL editor
    `combined_sql()` (``ocr-pool migrate --print-sql``) lays the same steps out
    for the Supabase SQL editor, which runs what it is given as one
    transaction: see its docstring.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from store.migrations.steps import Step, split_steps

DEFAULT_LOCK_TIMEOUT_MS = 200
"""The longest a migration step (or lockdown, cleanup) waits for a table lock before it
gives up and retries (store.migrations.runner); commands take it as their option's default."""
_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_SUPERSEDED_LINE = re.compile(r"^(\d{1,4})\s+([0-9a-f]{64})(?:\s.*)?$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


def discover() -> list[Migration]:
    """The migrations shipped with the package, in version order."""
    found: list[Migration] = []
    for entry in resources.files(__name__).iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migration files share a version number: {versions}")
    return found


def parse_superseded(text: str) -> dict[int, frozenset[str]]:
    """`superseded.txt`: lines ``<version> <sha256> [what]``; ``#`` starts a comment."""
    found: dict[int, set[str]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _SUPERSEDED_LINE.match(line)
        if match is None:
            raise ValueError(f"superseded.txt line {number}: expected '<version> <sha256>'")
        found.setdefault(int(match.group(1)), set()).add(match.group(2))
    return {version: frozenset(sums) for version, sums in found.items()}


def superseded_checksums() -> dict[int, frozenset[str]]:
    """Checksums of texts an earlier release applied, per version (see the docstring)."""
    return parse_superseded(resources.files(__name__).joinpath("superseded.txt").read_text("utf-8"))


# --- The SQL-editor script -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EditorRun:
    """What a person runs at once in the SQL editor: transactional steps in a row,
    or one CONCURRENTLY statement alone."""

    concurrent: bool
    steps: list[tuple[Migration, Step]]

    @property
    def title(self) -> str:
        first, last = self.steps[0], self.steps[-1]
        if self.concurrent:
            return f"{first[0].label} {first[1].label}"
        if first[0] is last[0]:
            span = (
                first[1].label
                if first[1] is last[1]
                else f"steps {first[1].number}-{last[1].number}"
            )
            return f"{first[0].label} {span}"
        return f"{first[0].label} {first[1].label} to {last[0].label} {last[1].label}"


def editor_runs(migrations: list[Migration] | None = None) -> list[EditorRun]:
    """The migrations' steps grouped as the SQL editor must run them (in order)."""
    runs: list[EditorRun] = []
    for migration in discover() if migrations is None else migrations:
        for step in split_steps(migration.sql):
            if not step.concurrent and runs and not runs[-1].concurrent:
                runs[-1].steps.append((migration, step))
            else:
                runs.append(EditorRun(step.concurrent, [(migration, step)]))
    return runs


_EDITOR_HEADER = """\
-- ocr-pool migrations {first}..{last} for the Supabase SQL editor
-- (`ocr-pool migrate --print-sql`; `ocr-pool migrate` over a direct connection
-- does all of this by itself, with retries).
--
-- The editor runs what it is given as ONE transaction, and an index built
-- CONCURRENTLY (the only way to build one without blocking the writes of other
-- programs to a live table) cannot run inside a transaction. So this script
-- comes in {count} RUNS, marked "-- ===== run N of {count}". Run them in order,
-- each on its own (select the run, or paste it alone, then Run):
--
--   * steps: each step is its own short transaction (BEGIN ... COMMIT) with
--     lock_timeout = '{timeout}'. A run that stops on "canceling statement due to
--     lock timeout" met a busy table: run the same run again (its steps are
--     idempotent; those before the failed one are already committed).
--   * ALONE: one CREATE INDEX CONCURRENTLY; the table stays writable while it
--     builds. If it fails it leaves an INVALID index that IF NOT EXISTS would
--     skip: drop it first (DROP INDEX CONCURRENTLY IF EXISTS <name>; on its own),
--     then run it again. Invalid indexes:
--     SELECT indexrelid::regclass FROM pg_index WHERE NOT indisvalid;
--
-- psql runs the whole file in order: psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f FILE
-- The ledger ocr_pool_migrations is written only by `ocr-pool migrate`.
"""


def combined_sql(lock_timeout_ms: int = 200) -> str:
    """All migrations as one script for the Supabase SQL editor, in runs.

    The editor runs a script as one transaction, where CONCURRENTLY is refused.
    So the script is cut at every CONCURRENTLY step: each such statement is a run
    of its own (printed as it is, to be run alone), and the steps between them
    are runs of explicit short transactions (``BEGIN; SET LOCAL search_path …;
    SET LOCAL lock_timeout …; <step>; COMMIT;``), the same transactions as
    ``ocr-pool migrate`` uses. The header says how to run them; ``psql -f``
    runs the whole file as it is.
    """
    migrations = discover()
    runs = editor_runs(migrations)
    timeout = f"{lock_timeout_ms}ms"
    parts = [
        _EDITOR_HEADER.format(
            first=migrations[0].label[:4],
            last=migrations[-1].label[:4],
            count=len(runs),
            timeout=timeout,
        )
    ]
    for number, run in enumerate(runs, start=1):
        kind = "ALONE (CONCURRENTLY, no transaction)" if run.concurrent else "steps"
        parts.append(f"\n-- ===== run {number} of {len(runs)}: {kind}: {run.title} =====\n")
        for migration, step in run.steps:
            if run.concurrent:
                parts.append(f"-- {migration.label} {step.label}\n{step.sql.strip()}\n")
                continue
            # Functions take `SET search_path FROM CURRENT`: pin it as
            # `ocr-pool migrate` does, whatever the editor's session has.
            parts.append(
                f"\n-- {migration.label} {step.label}\n"
                "BEGIN;\n"
                "SET LOCAL search_path = public, pg_temp;\n"
                f"SET LOCAL lock_timeout = '{timeout}';\n"
                f"{step.sql.strip()}\n"
                "COMMIT;\n"
            )
    return "".join(parts)
