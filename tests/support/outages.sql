-- Test-only statements of the outage tests (tests/*/test_outages_*.py).

-- name: note_outage
SELECT ocr_note_outage(p_seconds => $1, p_reporter => 'test');

-- name: forget_outages
TRUNCATE ocr_queue_outages;

-- name: outages
SELECT started_at, ended_at, reporter,
       extract(epoch FROM ended_at - started_at)::float8 AS seconds
FROM ocr_queue_outages ORDER BY id;

-- name: lease_row
SELECT status_id, ocr_worker_id, ocr_lease_token, ocr_attempts, ocr_max_attempts,
       ocr_lease_expiries, ocr_error, ocr_last_error_at, ocr_available_at,
       file_content, ocr_lease_expires_at
FROM extraction_queue WHERE id = $1;

-- name: insert_ready
INSERT INTO extraction_queue (document_source, status_id, supabase_path, ocr_max_attempts)
VALUES ($1, 3, $2, $3)
RETURNING id;

-- name: in_progress
SELECT count(*)::int FROM extraction_queue WHERE status_id = 6;

-- name: completed_count
SELECT count(*)::int FROM extraction_queue WHERE status_id = 5;

-- name: outcome_rows
SELECT supabase_path, status_id, ocr_attempts, ocr_lease_expiries, ocr_error,
       file_content, boosted_file_content, file_content_json::text AS file_content_json
FROM extraction_queue ORDER BY supabase_path;
