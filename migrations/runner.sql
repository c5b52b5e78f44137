-- Bookkeeping for `ocr-pool migrate`.

-- name: create_ledger
CREATE TABLE IF NOT EXISTS ocr_pool_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: lock
SELECT pg_advisory_lock(hashtextextended('ocr-pool migrate', 0));

-- name: unlock
SELECT pg_advisory_unlock(hashtextextended('ocr-pool migrate', 0));

-- name: applied
SELECT version, name, checksum FROM ocr_pool_migrations ORDER BY version;

-- name: record
INSERT INTO ocr_pool_migrations (version, name, checksum) VALUES ($1, $2, $3);

-- name: set_search_path
SELECT set_config('search_path', $1, false);
