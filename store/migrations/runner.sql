-- Bookkeeping for `ocr-pool migrate`.

-- name: create_ledger
CREATE TABLE IF NOT EXISTS ocr_pool_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- Concurrent runs serialise on this lock. It is polled, never waited for: a
-- session blocked in pg_advisory_lock() holds a snapshot for as long as it waits,
-- and CREATE INDEX CONCURRENTLY in the session holding the lock waits for every
-- older snapshot to end (a deadlock the two would only leave by lock timeout).
-- name: try_lock
SELECT pg_try_advisory_lock(hashtextextended('ocr-pool migrate', 0));

-- name: unlock
SELECT pg_advisory_unlock(hashtextextended('ocr-pool migrate', 0));

-- name: applied
SELECT version, name, checksum FROM ocr_pool_migrations ORDER BY version;

-- name: record
INSERT INTO ocr_pool_migrations (version, name, checksum) VALUES ($1, $2, $3);

-- name: rerecord
-- A file rewritten since an earlier release applied it: its current text now is.
UPDATE ocr_pool_migrations SET name = $2, checksum = $3, applied_at = now() WHERE version = $1;

-- name: set_search_path
SELECT set_config('search_path', $1, false);

-- Inside a step's transaction: its lock timeout ('200ms').
-- name: set_local_lock_timeout
SELECT set_config('lock_timeout', $1, true);

-- Around a CONCURRENTLY step (no transaction): the session's lock timeout, and
-- what it was before, to put back afterwards.
-- name: get_lock_timeout
SELECT current_setting('lock_timeout');

-- name: set_session_lock_timeout
SELECT set_config('lock_timeout', $1, false);

-- An index of this name in the target schema that an interrupted
-- CREATE INDEX CONCURRENTLY left INVALID: the statement that drops it (NULL when
-- there is none). IF NOT EXISTS would otherwise skip it and leave it unusable.
-- name: drop_invalid_index
SELECT format('DROP INDEX CONCURRENTLY IF EXISTS %I.%I', n.nspname, c.relname)
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_index AS i ON i.indexrelid = c.oid
WHERE n.nspname = current_schema() AND c.relname = $1 AND NOT i.indisvalid;
