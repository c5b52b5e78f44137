-- Test-only statements: seeding and inspecting the queue behind the store's back.

-- name: row
SELECT id, status_id, document_source, ocr_attempts, ocr_max_attempts, ocr_error,
       ocr_worker_id, file_content, boosted_file_content, ocr_available_at,
       ocr_lease_expires_at, ocr_completed_at, ocr_last_error_at
FROM extraction_queue WHERE id = $1;

-- name: insert
INSERT INTO extraction_queue (document_source, status_id, supabase_path, created_at,
                              ocr_priority, ocr_attempts, ocr_max_attempts, ocr_last_error_at)
VALUES ($1, $2, $3, coalesce($4, now()), coalesce($5, 0), coalesce($6, 0), coalesce($7, 3), $8)
RETURNING id;

-- name: seed
INSERT INTO extraction_queue (document_source, status_id, supabase_path, created_at)
SELECT $1, 3, 'seed/' || $1 || '/' || g, now() - make_interval(secs => $2 - g)
FROM generate_series(1, $2) AS g;

-- name: status_counts
SELECT status_id, count(*)::int AS n FROM extraction_queue GROUP BY status_id ORDER BY status_id;

-- name: schema_snapshot
SELECT
    (SELECT json_agg(c ORDER BY c.table_name, c.ordinal_position)::text
     FROM (SELECT table_name, column_name, ordinal_position, data_type, is_nullable, column_default
           FROM information_schema.columns
           WHERE table_schema = 'public') AS c) AS columns,
    (SELECT json_agg(i ORDER BY i.indexname)::text
     FROM (SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public') AS i) AS indexes,
    (SELECT json_agg(f ORDER BY f.sig)::text
     FROM (SELECT p.oid::regprocedure::text AS sig, md5(pg_get_functiondef(p.oid)) AS body
           FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
           WHERE n.nspname = 'public') AS f) AS functions,
    (SELECT json_agg(v ORDER BY v.viewname)::text
     FROM (SELECT viewname, md5(definition) AS body FROM pg_views
           WHERE schemaname = 'public') AS v) AS views;

-- name: rows_as_json
SELECT id, to_jsonb(q) AS doc FROM extraction_queue AS q ORDER BY id;

-- name: ledger
SELECT version, name FROM ocr_pool_migrations ORDER BY version;

-- name: statuses
SELECT * FROM extraction_status ORDER BY id;

-- name: completed_rows
SELECT id, file_content FROM extraction_queue WHERE status_id = 5;

-- name: truncate_queue
TRUNCATE extraction_queue;

-- name: vacuum_queue
VACUUM ANALYZE extraction_queue;

-- name: cache_row
SELECT sha256, pipeline, file_content, boosted_file_content, created_at, hits, last_hit_at
FROM ocr_result_cache WHERE sha256 = $1 AND pipeline = $2;

-- name: cache_put
SELECT ocr_cache_put($1, $2, $3, $4);

-- name: cache_rls
SELECT relrowsecurity FROM pg_class WHERE oid = 'ocr_result_cache'::regclass;

-- name: cache_get
SELECT * FROM ocr_cache_get($1, $2);

-- A role with the grants Supabase gives `anon` by default on tables and functions
-- in `public` (which 0006 takes back from anon: this probe re-grants them, to show
-- RLS still holds underneath). Only inside a transaction that is rolled back:
-- CREATE ROLE and GRANT are transactional.
-- name: rls_probe_role
CREATE ROLE ocr_test_rls_probe NOLOGIN;

-- name: rls_probe_grant
GRANT ALL ON ocr_result_cache TO ocr_test_rls_probe;
GRANT EXECUTE ON FUNCTION ocr_cache_check_key(text, text), ocr_cache_get(text, text),
                          ocr_cache_put(text, text, text, text)
    TO ocr_test_rls_probe;

-- name: rls_probe_become
SET LOCAL ROLE ocr_test_rls_probe;

-- name: outcome_rows
SELECT supabase_path, document_source, status_id, ocr_attempts, ocr_error,
       file_content, boosted_file_content, file_content_json::text AS file_content_json
FROM extraction_queue ORDER BY supabase_path;

-- name: truncate_queue_and_cache
TRUNCATE extraction_queue, ocr_result_cache;

-- name: allocation_rows
SELECT pool_id, server_id, pool_size, index_workers, acte_workers, index_waiting,
       acte_waiting, index_seconds, acte_seconds, reason
FROM ocr_allocation_recent ORDER BY decided_at;

-- name: truncate_allocations
TRUNCATE ocr_pool_allocations;

-- name: enqueue_one
SELECT * FROM ocr_enqueue(p_source => $1, p_paths => ARRAY[$2::text], p_priorities => ARRAY[0],
                          p_max_attempts => 3);

-- name: in_progress_rows
SELECT id, ocr_worker_id FROM extraction_queue WHERE status_id = 6;

-- name: all_rows
SELECT id, supabase_path, status_id, ocr_worker_id, ocr_attempts, ocr_error
FROM extraction_queue;

-- name: watch_completions
-- Test-only: log every transition to status 5, to prove none happens twice.
CREATE TABLE IF NOT EXISTS test_completions (id text NOT NULL, at timestamptz DEFAULT now());
TRUNCATE test_completions;
CREATE OR REPLACE FUNCTION test_log_completion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO test_completions (id) VALUES (NEW.id::text);
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS test_log_completion ON extraction_queue;
CREATE TRIGGER test_log_completion AFTER UPDATE OF status_id ON extraction_queue
FOR EACH ROW WHEN (NEW.status_id = 5 AND OLD.status_id IS DISTINCT FROM 5)
EXECUTE FUNCTION test_log_completion();

-- name: completion_counts
SELECT id, count(*)::int AS n FROM test_completions GROUP BY id;

-- name: unwatch_completions
DROP TRIGGER IF EXISTS test_log_completion ON extraction_queue;

-- name: add_full_text_indexes
-- The registre extractor's French full-text indexes on both content columns.
CREATE INDEX test_fc_fts ON extraction_queue USING gin (to_tsvector('french', file_content))
    WHERE file_content IS NOT NULL;
CREATE INDEX test_bfc_fts ON extraction_queue USING gin (to_tsvector('french', boosted_file_content))
    WHERE boosted_file_content IS NOT NULL;

-- name: drop_full_text_indexes
DROP INDEX IF EXISTS test_fc_fts;
DROP INDEX IF EXISTS test_bfc_fts;
