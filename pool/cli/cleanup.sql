-- Statements of `ocr-pool cleanup` (pool/cli/cleanup_rules.py): old rows of ocr-pool's own
-- tables, deleted in small batches while pools write to them.
--
-- Each `*_delete` takes ($1 how old, as an interval; $2 rows per batch; then the last
-- key of the previous batch) and returns the number deleted and the last key seen,
-- NULL once nothing is left. The batch walks the table's primary key from that key
-- (keyset), so every batch starts where the previous one stopped instead of
-- scanning again past the rows it just deleted. Rows another transaction holds are
-- skipped (SKIP LOCKED), never waited for: a later run takes them. Each batch is one
-- short transaction under a lock timeout (`set_lock_timeout`).
--
-- The queue (extraction_queue, extraction_status) and the bookkeeping tables
-- (ocr_pool_migrations, ocr_pool_created_tables) are never touched.

-- name: set_lock_timeout
SELECT set_config('lock_timeout', $1::text, true);

-- Allocation decisions of pool managers (0005), by the time they were made.
-- name: allocations_count
SELECT count(*) FROM ocr_pool_allocations AS a WHERE a.decided_at < now() - $1::interval;

-- name: allocations_delete
WITH doomed AS MATERIALIZED (
    SELECT a.id
    FROM ocr_pool_allocations AS a
    WHERE a.id > $3::bigint
      AND a.decided_at < now() - $1::interval
    ORDER BY a.id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM ocr_pool_allocations AS a USING doomed WHERE a.id = doomed.id RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS deleted,
       (SELECT max(doomed.id) FROM doomed) AS last_id;

-- The result cache (0004, 0007), by last use: the last hit, else when it was stored.
-- name: cache_count
SELECT count(*)
FROM ocr_result_cache AS c
WHERE coalesce(c.last_hit_at, c.created_at) < now() - $1::interval;

-- name: cache_delete
WITH doomed AS MATERIALIZED (
    SELECT c.sha256, c.pipeline
    FROM ocr_result_cache AS c
    WHERE (c.sha256, c.pipeline) > ($3::text, $4::text)
      AND coalesce(c.last_hit_at, c.created_at) < now() - $1::interval
    ORDER BY c.sha256, c.pipeline
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM ocr_result_cache AS c
    USING doomed
    WHERE c.sha256 = doomed.sha256 AND c.pipeline = doomed.pipeline
    RETURNING 1
), last AS (
    SELECT doomed.sha256, doomed.pipeline
    FROM doomed
    ORDER BY doomed.sha256 DESC, doomed.pipeline DESC
    LIMIT 1
)
SELECT (SELECT count(*) FROM gone) AS deleted,
       (SELECT last.sha256 FROM last) AS last_sha256,
       (SELECT last.pipeline FROM last) AS last_pipeline;

-- Outages of the queue database reported by pools (0009), by their end.
-- name: outages_count
SELECT count(*) FROM ocr_queue_outages AS o WHERE o.ended_at < now() - $1::interval;

-- name: outages_delete
WITH doomed AS MATERIALIZED (
    SELECT o.id
    FROM ocr_queue_outages AS o
    WHERE o.id > $3::bigint
      AND o.ended_at < now() - $1::interval
    ORDER BY o.id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM ocr_queue_outages AS o USING doomed WHERE o.id = doomed.id RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS deleted,
       (SELECT max(doomed.id) FROM doomed) AS last_id;

-- Daily Gemini request counts (0008), by their last update; never a count of the last
-- two UTC days, whatever the period (the limiter's day may still be running, in any
-- GEMINI_QUOTA_TIMEZONE).
-- name: day_usage_count
SELECT count(*)
FROM ocr_gemini_day_usage AS u
WHERE u.updated_at < now() - $1::interval
  AND u.quota_day < (now() AT TIME ZONE 'UTC')::date - 2;

-- name: day_usage_delete
WITH doomed AS MATERIALIZED (
    SELECT u.model, u.quota_day
    FROM ocr_gemini_day_usage AS u
    WHERE (u.model, u.quota_day) > ($3::text, $4::date)
      AND u.updated_at < now() - $1::interval
      AND u.quota_day < (now() AT TIME ZONE 'UTC')::date - 2
    ORDER BY u.model, u.quota_day
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM ocr_gemini_day_usage AS u
    USING doomed
    WHERE u.model = doomed.model AND u.quota_day = doomed.quota_day
    RETURNING 1
), last AS (
    SELECT doomed.model, doomed.quota_day
    FROM doomed
    ORDER BY doomed.model DESC, doomed.quota_day DESC
    LIMIT 1
)
SELECT (SELECT count(*) FROM gone) AS deleted,
       (SELECT last.model FROM last) AS last_model,
       (SELECT last.quota_day FROM last) AS last_quota_day;

-- Every ocr_* table, to check that cleanup has a decision for each (tests).
-- name: ocr_tables
SELECT c.relname::text
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname = current_schema()
  AND c.relname LIKE 'ocr\_%'
ORDER BY c.relname;
