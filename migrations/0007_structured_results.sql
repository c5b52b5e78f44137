-- 0007: the structured result next to the production text columns.
--
-- `file_content_json` (jsonb) holds what a document became, structured: an index
-- in the registre extractor's page shape ({"pages": [{"pageNumber", "metadata",
-- "inscriptions"}]} plus what ocr-pool adds), an acte's pages and flags. The text
-- columns keep their production meaning (`--- Page N ---` pages, raw and boosted).
--
-- `ocr_complete` and the result cache take and give the new column. Old callers
-- keep working: the new parameter is last and optional.
--
-- Live-table discipline (see migrations/__init__.py): each step is its own short
-- transaction under a lock timeout, retried; only the first one touches
-- `extraction_queue`, for a moment (adding a nullable column without a default
-- rewrites nothing).

-- step: file_content_json on the queue
ALTER TABLE extraction_queue ADD COLUMN IF NOT EXISTS file_content_json jsonb;

-- step: file_content_json in the result cache
ALTER TABLE ocr_result_cache ADD COLUMN IF NOT EXISTS file_content_json jsonb;

-- step: functions taking and giving the structured result
-- The previous signatures are dropped, not overloaded: a call naming only the old
-- parameters must resolve to exactly one function.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT p.oid::regprocedure AS signature
        FROM pg_proc AS p
        WHERE p.pronamespace = current_schema()::regnamespace
          AND ((p.proname = 'ocr_complete' AND p.pronargs = 5)
               OR (p.proname = 'ocr_cache_put' AND p.pronargs = 4)
               OR (p.proname = 'ocr_cache_get'
                   AND NOT EXISTS (SELECT 1 FROM unnest(p.proargnames) AS a(name)
                                   WHERE a.name = 'file_content_json')))
    LOOP
        EXECUTE format('DROP FUNCTION %s', r.signature);
    END LOOP;
END
$$;

-- Write the result and mark the row OCR-complete (5), only while the caller
-- holds the lease. False means refused: the result is discarded. A text the
-- table's indexes refuse (a full-text index's tsvector is limited to 1 MB)
-- raises program_limit_exceeded (54000): the caller fails the document for good,
-- since the same text would be refused again.
CREATE OR REPLACE FUNCTION ocr_complete(
    p_id                   extraction_queue.id%TYPE,
    p_worker               text,
    p_lease_token          uuid,
    p_file_content         extraction_queue.file_content%TYPE,
    p_boosted_file_content extraction_queue.boosted_file_content%TYPE DEFAULT NULL,
    p_file_content_json    jsonb DEFAULT NULL
)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF NOT ocr_lock_lease(p_id, p_worker, p_lease_token) THEN
        RETURN false;
    END IF;
    UPDATE extraction_queue AS q
    SET status_id            = 5,
        file_content         = p_file_content,
        boosted_file_content = p_boosted_file_content,
        file_content_json    = p_file_content_json,
        ocr_completed_at     = now(),
        ocr_error            = NULL,
        ocr_lease_token      = NULL,
        ocr_lease_expires_at = NULL,
        ocr_available_at     = NULL
    WHERE q.id = p_id;
    RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION ocr_cache_get(p_sha256 text, p_pipeline text)
RETURNS TABLE (file_content text, boosted_file_content text, file_content_json jsonb)
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
BEGIN
    PERFORM ocr_cache_check_key(p_sha256, p_pipeline);
    PERFORM set_config('synchronous_commit', 'off', true);
    RETURN QUERY
    UPDATE ocr_result_cache AS c
    SET hits        = c.hits + 1,
        last_hit_at = now()
    WHERE c.sha256 = p_sha256 AND c.pipeline = p_pipeline
    RETURNING c.file_content, c.boosted_file_content, c.file_content_json;
END
$$;

CREATE OR REPLACE FUNCTION ocr_cache_put(
    p_sha256               text,
    p_pipeline             text,
    p_file_content         text,
    p_boosted_file_content text DEFAULT NULL,
    p_file_content_json    jsonb DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM ocr_cache_check_key(p_sha256, p_pipeline);
    IF p_file_content IS NULL THEN
        RAISE EXCEPTION 'file_content must not be null'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO ocr_result_cache AS c
        (sha256, pipeline, file_content, boosted_file_content, file_content_json)
    VALUES (p_sha256, p_pipeline, p_file_content, p_boosted_file_content, p_file_content_json)
    ON CONFLICT (sha256, pipeline) DO UPDATE
    SET file_content         = excluded.file_content,
        boosted_file_content = excluded.boosted_file_content,
        file_content_json    = excluded.file_content_json,
        created_at           = now();
END
$$;

SELECT * FROM ocr_lockdown();
