-- Set-up and inspection for the operator's kit tests (tests/integration/test_cleanup.py,
-- tests/integration/test_cli.py).

-- name: truncate_own_tables
TRUNCATE extraction_queue, ocr_pool_allocations, ocr_result_cache, ocr_queue_outages,
         ocr_gemini_day_usage;

-- $1: how long ago it was decided.
-- name: seed_allocation
INSERT INTO ocr_pool_allocations (decided_at, pool_id, server_id, pool_size, index_workers,
                                  acte_workers)
VALUES (now() - $1::interval, 'test-pool', 'test-server', 2, 1, 1);

-- $1 sha256, $2 stored how long ago, $3 last hit how long ago (NULL: never reused).
-- name: seed_cache
INSERT INTO ocr_result_cache (sha256, pipeline, file_content, created_at, last_hit_at)
VALUES ($1, 'test:v1', 'text', now() - $2::interval, now() - $3::interval);

-- $1: how long ago it ended.
-- name: seed_outage
INSERT INTO ocr_queue_outages (started_at, ended_at, reporter)
VALUES (now() - $1::interval - interval '1 minute', now() - $1::interval, 'test');

-- $1 model, $2 quota day as days before today (UTC), $3 last updated how long ago.
-- name: seed_day_usage
INSERT INTO ocr_gemini_day_usage (model, quota_day, requests, updated_at)
VALUES ($1, (now() AT TIME ZONE 'UTC')::date - $2::integer, 7, now() - $3::interval);

-- A queue row of every status, a year old.
-- name: seed_old_queue
INSERT INTO extraction_queue (document_source, status_id, supabase_path, created_at,
                              ocr_completed_at, ocr_last_error_at)
SELECT 'index', s, format('old-%s.pdf', s), now() - interval '400 days',
       now() - interval '400 days', now() - interval '400 days'
FROM generate_series(1, 6) AS s;

-- name: own_table_counts
SELECT (SELECT count(*) FROM ocr_pool_allocations) AS allocations,
       (SELECT count(*) FROM ocr_result_cache) AS cache,
       (SELECT count(*) FROM ocr_queue_outages) AS outages,
       (SELECT count(*) FROM ocr_gemini_day_usage) AS day_usage,
       (SELECT count(*) FROM extraction_queue) AS queue;

-- name: cache_keys
SELECT sha256 FROM ocr_result_cache ORDER BY sha256;

-- name: lock_cache_row
SELECT 1 FROM ocr_result_cache WHERE sha256 = $1 FOR UPDATE;

-- name: lock_allocations
LOCK TABLE ocr_pool_allocations IN ACCESS EXCLUSIVE MODE;

-- A queued file that failed in OCR (status 4 with an OCR error).
-- name: fail_path
UPDATE extraction_queue
SET status_id = 4, ocr_attempts = 3, ocr_error = 'test failure', ocr_last_error_at = now()
WHERE supabase_path = $1;

-- name: create_role_without_createdb
DO $$
BEGIN
    CREATE ROLE ocr_test_no_createdb LOGIN NOCREATEDB;
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;

-- name: drop_role_without_createdb
DROP ROLE IF EXISTS ocr_test_no_createdb;

-- name: drop_database_statement
SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', $1::text);
