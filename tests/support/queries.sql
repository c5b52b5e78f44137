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
