-- 0010: the enqueue duplicate check counts per document type.
--
-- 0002's `ocr_enqueue` reported a path as already queued whatever the type of the
-- row holding it, so a file queued as an index could not be queued as an acte (the
-- same scan may be read both ways). Here a path is a duplicate only when a row of
-- the *same* source holds it and is not OCR-complete. Same signature and result as
-- 0002 (CREATE OR REPLACE): callers and the PostgREST rpc see no difference.
--
-- Paths are still locked by path alone (a transaction-scoped advisory lock, in
-- sorted order): concurrent batches cannot deadlock, and two batches of different
-- types queuing the same path merely wait for each other.

-- step: ocr_enqueue, duplicates per source
CREATE OR REPLACE FUNCTION ocr_enqueue(
    p_source       text,
    p_paths        text[],
    p_priorities   integer[] DEFAULT NULL,
    p_max_attempts integer DEFAULT 3
)
RETURNS TABLE (supabase_path text, id extraction_queue.id%TYPE, created boolean, status_id integer)
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
    v_path     text;
    v_priority integer;
    v_id       extraction_queue.id%TYPE;
    v_status   integer;
BEGIN
    PERFORM ocr_check_source(p_source);
    IF p_max_attempts IS NULL OR p_max_attempts < 1 THEN
        RAISE EXCEPTION 'max attempts must be at least 1 (got %)', p_max_attempts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR v_path, v_priority IN
        SELECT u.path, coalesce(p_priorities[u.n], 0)
        FROM unnest(p_paths) WITH ORDINALITY AS u(path, n)
        ORDER BY u.path, u.n
    LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended('ocr_enqueue:' || v_path, 0));
        SELECT q.id, q.status_id INTO v_id, v_status
        FROM extraction_queue AS q
        WHERE q.supabase_path = v_path
          AND q.document_source = p_source
          AND q.status_id <> 5
        ORDER BY q.created_at DESC
        LIMIT 1;
        IF FOUND THEN
            RETURN QUERY SELECT v_path, v_id, false, v_status;
        ELSE
            INSERT INTO extraction_queue AS q
                (document_source, status_id, supabase_path, ocr_priority, ocr_max_attempts)
            VALUES (p_source, 3, v_path, v_priority, p_max_attempts)
            RETURNING q.id INTO v_id;
            RETURN QUERY SELECT v_path, v_id, true, 3;
        END IF;
    END LOOP;
END
$$;

SELECT * FROM ocr_lockdown();
