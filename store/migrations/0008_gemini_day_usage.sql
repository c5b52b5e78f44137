-- 0008: the day's Gemini requests per model, kept where a Redis restart cannot lose them.
--
-- The limiter counts the requests of each quota day per model in Redis (the
-- `day_count` that GEMINI_RPD_LIMIT and the per-model daily limits are checked
-- against). Redis may run without persistence: a restart forgets that count and
-- the fleet would spend the day's quota a second time. Every pool therefore merges
-- Redis's counts into this table every few seconds through
-- `ocr_gemini_day_usage_merge` (the greatest count wins: pools and environments
-- never lower one) and puts the greatest count back into Redis when Redis holds
-- less (pool/day_usage.py). A pool serving several environments merges into each
-- (the quota belongs to the API key, not to a database) and takes the greatest.
--
-- `quota_day` is the date in GEMINI_QUOTA_TIMEZONE (Google: Pacific time), the
-- day the daily quota resets on; the rows are also a history of requests per day.
--
-- Idempotent: re-running this file keeps the table and its rows.

-- step: the table and its merge function
CREATE TABLE IF NOT EXISTS ocr_gemini_day_usage (
    model      text        NOT NULL,
    quota_day  date        NOT NULL,
    -- Requests the fleet's limiter granted that day (refunded ones excluded), as the
    -- greatest count any pool saw.
    requests   bigint      NOT NULL DEFAULT 0,
    -- When the count last grew.
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ocr_gemini_day_usage_pkey PRIMARY KEY (model, quota_day),
    CONSTRAINT ocr_gemini_day_usage_model_check CHECK (char_length(model) BETWEEN 1 AND 200),
    CONSTRAINT ocr_gemini_day_usage_requests_check CHECK (requests >= 0)
);

COMMENT ON TABLE ocr_gemini_day_usage IS
    'Gemini requests per model and quota day (GEMINI_QUOTA_TIMEZONE), the durable copy of '
    'the limiter''s daily count in Redis; written by ocr-pool pools through '
    'ocr_gemini_day_usage_merge (greatest wins).';

-- Reached only through the service role (which bypasses RLS) or the table's owner.
ALTER TABLE ocr_gemini_day_usage ENABLE ROW LEVEL SECURITY;

-- Merge counts of one quota day (parallel arrays: model, requests): each stored count
-- becomes the greater of itself and the one given (a count never goes down). Returns
-- the stored count of every model of that day, the ones not given included (empty
-- arrays: just read the day). Rows are written in model order, so pools merging the
-- same models at once cannot deadlock; a count that does not grow writes nothing.
CREATE OR REPLACE FUNCTION ocr_gemini_day_usage_merge(
    p_quota_day date,
    p_models    text[] DEFAULT '{}',
    p_requests  bigint[] DEFAULT '{}'
)
RETURNS TABLE (model text, requests bigint)
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
BEGIN
    IF p_quota_day IS NULL THEN
        RAISE EXCEPTION 'quota day must not be null'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(cardinality(p_models), 0) <> coalesce(cardinality(p_requests), 0) THEN
        RAISE EXCEPTION 'models and requests must be arrays of the same length (% and %)',
                        coalesce(cardinality(p_models), 0), coalesce(cardinality(p_requests), 0)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(p_models, p_requests) AS i(m, r)
               WHERE m IS NULL OR btrim(m) = '' OR char_length(m) > 200
                  OR r IS NULL OR r < 0) THEN
        RAISE EXCEPTION 'each model must be a non-blank name of at most 200 characters '
                        'with a count of at least 0'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO ocr_gemini_day_usage AS u (model, quota_day, requests)
    SELECT i.m, p_quota_day, max(i.r)
    FROM unnest(p_models, p_requests) AS i(m, r)
    GROUP BY i.m
    ORDER BY i.m
    ON CONFLICT (model, quota_day) DO UPDATE
    SET requests   = excluded.requests,
        updated_at = now()
    WHERE excluded.requests > u.requests;
    RETURN QUERY
    SELECT u.model, u.requests
    FROM ocr_gemini_day_usage AS u
    WHERE u.quota_day = p_quota_day
    ORDER BY u.model;
END
$$;

COMMENT ON FUNCTION ocr_gemini_day_usage_merge(date, text[], bigint[]) IS
    'Merges Gemini request counts of one quota day (greatest wins) and returns the day''s '
    'stored counts per model.';

SELECT * FROM ocr_lockdown();
