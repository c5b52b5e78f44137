-- Rows for tests/integration/test_backfill.py: documents completed before this release.

-- name: done_row
INSERT INTO extraction_queue (document_source, document_number, status_id, supabase_path,
                              file_content, boosted_file_content)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id;

-- name: row_by_number
SELECT status_id, file_content, boosted_file_content, file_content_json::text AS structured,
       updated_at
FROM extraction_queue WHERE document_number = $1;
