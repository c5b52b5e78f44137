-- 0007: the structured result next to the production text columns.
--
-- `file_content_json` (jsonb) holds what a document became, structured: an index
-- in the registre extractor's page shape ({"pages": [{"pageNumber", "metadata",
-- "inscriptions"}]} plus what ocr-pool adds), an acte's pages and flags. The text
-- columns keep their production meaning (`--- Page N ---` pages, raw and boosted).
--
-- `ocr_complete_structured`, `ocr_cache_fetch` and `ocr_cache_store` are 0002's
-- `ocr_complete` and 0004's `ocr_cache_get` / `ocr_cache_put` with the new column;
-- those keep working unchanged for callers of an earlier release.
--
-- Live-table discipline (see store/migrations/__init__.py): each step is its own short
-- transaction under a lock timeout, retried; only the first one touches
-- `extraction_queue`, for a moment (adding a nullable column without a default
-- rewrites nothing).

-- step: file_content_json on the queue
ALTER TABLE extraction_queue ADD COLUMN IF NOT EXISTS file_content_json jsonb;

-- step: file_content_json in the result cache
ALTER TABLE ocr_result_cache ADD COLUMN IF NOT EXISTS file_content_json jsonb;

-- step: functions taking and giving the structured result
-- New names rather than new signatures of 0002's and 0004's functions: those stay as
-- they are, for pools of an earlier release still running during an upgrade, and so
-- that re-running any earlier file (a re-paste in the SQL editor) can never create a
-- second overload that makes a call ambiguous.
-- Write the result and mark the row OCR-complete (5), only while the caller
-- holds the lease. False means refused: the result is discarded. A text the
-- table's indexes refuse (a full-text index's tsvector is limited to 1 MB)
-- raises program_limit_exceeded (54000): the caller fails the document for good,
-- since the same text would be refused again.
CREATE OR REPLACE FUNCTION ocr_complete_structured(
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

CREATE OR REPLACE FUNCTION ocr_cache_fetch(p_sha256 text, p_pipeline text)
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

CREATE OR REPLACE FUNCTION ocr_cache_store(
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
