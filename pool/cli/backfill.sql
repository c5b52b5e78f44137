-- `ocr-pool backfill`: completed rows that lack what this release writes, in id
-- order, a batch at a time; each row updated alone, only if it is still the row that
-- was read (status 5, same text), and never over a value already there.

-- name: session
SELECT set_config('lock_timeout', '2s', false), set_config('statement_timeout', '60s', false);

-- name: first_batch
SELECT q.id, q.document_source::text AS source, q.file_content, q.boosted_file_content,
       md5(q.file_content) AS digest
FROM extraction_queue AS q
WHERE q.status_id = 5
  AND q.document_source IN ('index', 'acte')
  AND ($1::text IS NULL OR q.document_source = $1)
  AND q.file_content IS NOT NULL
  AND (q.file_content_json IS NULL
       OR (q.document_source = 'index' AND q.boosted_file_content IS NULL))
ORDER BY q.id
LIMIT $2;

-- name: next_batch
SELECT q.id, q.document_source::text AS source, q.file_content, q.boosted_file_content,
       md5(q.file_content) AS digest
FROM extraction_queue AS q
WHERE q.status_id = 5
  AND q.document_source IN ('index', 'acte')
  AND ($1::text IS NULL OR q.document_source = $1)
  AND q.file_content IS NOT NULL
  AND (q.file_content_json IS NULL
       OR (q.document_source = 'index' AND q.boosted_file_content IS NULL))
  AND q.id > $3
ORDER BY q.id
LIMIT $2;

-- name: update_row
UPDATE extraction_queue AS q
SET file_content_json    = coalesce(q.file_content_json, $2::jsonb),
    boosted_file_content = coalesce(q.boosted_file_content, $3),
    file_content         = coalesce($4, q.file_content)
WHERE q.id = $1
  AND q.status_id = 5
  AND md5(q.file_content) = $5
RETURNING q.id;
