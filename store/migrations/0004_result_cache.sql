-- 0004: the result cache. A document whose SHA-256 was already OCR'd by the same
-- pipeline (its version and models, e.g. 'acte:v1:gemini-2.5-flash+gemini-2.5-flash')
-- reuses that result with zero Gemini calls.
--
-- The worker asks `ocr_cache_get` before calling Gemini and stores a success
-- with `ocr_cache_put`. Both store adapters call these functions (directly, and
-- through PostgREST rpc), as for the queue functions of 0002.
--
-- Idempotent: re-running this file keeps the table and its rows.

CREATE TABLE IF NOT EXISTS ocr_result_cache (
    sha256               text        NOT NULL,
    pipeline             text        NOT NULL,
    file_content         text        NOT NULL,
    boosted_file_content text,
    -- When this content was stored (a later put for the same key resets it).
    created_at           timestamptz NOT NULL DEFAULT now(),
    -- Reuses of the key, and the last one (kept across puts).
    hits                 integer     NOT NULL DEFAULT 0,
    last_hit_at          timestamptz,
    CONSTRAINT ocr_result_cache_pkey PRIMARY KEY (sha256, pipeline),
    CONSTRAINT ocr_result_cache_sha256_check CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    CONSTRAINT ocr_result_cache_pipeline_check CHECK (char_length(pipeline) BETWEEN 1 AND 200)
);

COMMENT ON TABLE ocr_result_cache IS
    'OCR results by document SHA-256 and pipeline key (version + models); '
    'written and read by ocr-pool workers through ocr_cache_put / ocr_cache_get.';

-- Reached only through the service role (which bypasses RLS) or the table's
-- owner: with no policy, the anon and authenticated keys of a Supabase project
-- can neither read nor plant results here.
ALTER TABLE ocr_result_cache ENABLE ROW LEVEL SECURITY;

CREATE OR REPLACE FUNCTION ocr_cache_check_key(p_sha256 text, p_pipeline text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF p_sha256 IS NULL OR p_sha256 !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'sha256 must be 64 lowercase hex digits (got %)',
                        quote_nullable(left(p_sha256, 80))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_pipeline IS NULL OR btrim(p_pipeline) = '' OR char_length(p_pipeline) > 200 THEN
        RAISE EXCEPTION 'pipeline must be a non-blank key of at most 200 characters (got %)',
                        quote_nullable(left(p_pipeline, 80))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- The cached result of one document for one pipeline, counting the hit; zero
-- rows on a miss. The hit counter commits asynchronously (no WAL flush wait):
-- losing a few counts in a server crash costs nothing.
CREATE OR REPLACE FUNCTION ocr_cache_get(p_sha256 text, p_pipeline text)
RETURNS TABLE (file_content text, boosted_file_content text)
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
    RETURNING c.file_content, c.boosted_file_content;
END
$$;

-- Store a result (upsert): a later put for the same key replaces the content.
CREATE OR REPLACE FUNCTION ocr_cache_put(
    p_sha256               text,
    p_pipeline             text,
    p_file_content         text,
    p_boosted_file_content text DEFAULT NULL
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
    INSERT INTO ocr_result_cache AS c (sha256, pipeline, file_content, boosted_file_content)
    VALUES (p_sha256, p_pipeline, p_file_content, p_boosted_file_content)
    ON CONFLICT (sha256, pipeline) DO UPDATE
    SET file_content         = excluded.file_content,
        boosted_file_content = excluded.boosted_file_content,
        created_at           = now();
END
$$;
