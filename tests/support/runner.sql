-- Statements for the runner tests in tests/integration/test_migrations.py.

-- name: ledger
SELECT version, name, checksum FROM ocr_pool_migrations ORDER BY version;

-- name: ledger_has
SELECT EXISTS (SELECT 1 FROM ocr_pool_migrations WHERE version = $1);

-- name: ledger_exists
SELECT to_regclass('public.ocr_pool_migrations') IS NOT NULL;

-- name: seed_rows
INSERT INTO extraction_queue (document_source, status_id, supabase_path)
SELECT 'index', 3, 'runner/' || g || '.pdf' FROM generate_series(1, 50) AS g;

-- Another program's write, in a transaction left open: ROW EXCLUSIVE on the queue.
-- name: touch_one_row
UPDATE extraction_queue SET supabase_path = supabase_path
WHERE id = (SELECT id FROM extraction_queue ORDER BY id LIMIT 1);

-- name: add_column
ALTER TABLE extraction_queue ADD COLUMN IF NOT EXISTS ocr_test_note text;

-- name: has_test_column
SELECT EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = 'public' AND table_name = 'extraction_queue'
                 AND column_name = 'ocr_test_note');

-- name: test_table_exists
SELECT to_regclass('public.ocr_test_live') IS NOT NULL;

-- name: lock_timeout
SELECT current_setting('lock_timeout');

-- name: short_session_lock_timeout
SET lock_timeout = '50ms';

-- name: reset_session_lock_timeout
RESET lock_timeout;

-- name: build_index
CREATE INDEX CONCURRENTLY IF NOT EXISTS ocr_test_live_idx
    ON extraction_queue (supabase_path, created_at);

-- name: test_index
SELECT i.indexrelid::oid AS oid, i.indisvalid AS valid
FROM pg_index AS i WHERE i.indexrelid = to_regclass('public.ocr_test_live_idx');

-- name: valid_ocr_indexes
SELECT count(*)::int
FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
WHERE i.indisvalid
  AND c.relname IN ('extraction_queue_ocr_claim_idx', 'extraction_queue_ocr_leased_idx',
                    'extraction_queue_ocr_completed_idx', 'extraction_queue_supabase_path_idx');

-- An application's grant on the shared queue, then the lockdown that later files call.
-- name: grant_queue_to_public
GRANT SELECT ON TABLE extraction_queue TO PUBLIC;

-- name: run_lockdown
SELECT count(*) FROM ocr_lockdown();

-- name: public_reads_queue
SELECT has_table_privilege('public', 'extraction_queue', 'SELECT');
