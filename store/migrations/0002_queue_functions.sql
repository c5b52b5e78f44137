-- 0002: the queue contract as SQL functions.
--
-- Both store adapters call exactly these functions: the direct-Postgres adapter
-- with SELECT, the Supabase adapter through PostgREST's /rest/v1/rpc/<name>.
--
-- A lease is held while the row is at status 6 with the caller's worker id and
-- lease token and its expiry lies in the future. Every write after the claim is
-- fenced on all three, so a worker that lost its lease (expired, recovered and
-- re-claimed by someone else) can never overwrite the new holder's work.
--
-- Parameter and id types follow the table (`%TYPE`), so the same functions fit
-- a production table whose id is bigint as well as the uuid created by 0001.

CREATE OR REPLACE FUNCTION ocr_check_source(p_source text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF p_source IS NULL OR p_source NOT IN ('index', 'acte') THEN
        RAISE EXCEPTION 'document_source must be ''index'' or ''acte'' (got %)', quote_nullable(p_source)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION ocr_check_lease(p_lease_seconds double precision)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF p_lease_seconds IS NULL OR p_lease_seconds <= 0 OR p_lease_seconds > 86400 THEN
        RAISE EXCEPTION 'lease must be between 0 and 86400 seconds (got %)', p_lease_seconds
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- Lock one row by primary key and tell whether the caller holds its lease
-- (status 6, same worker, same token, and, unless p_even_expired, not expired).
-- The row is found by id alone: a fenced write must never let the planner
-- trade the primary key for the status-6 partial index, whose statistics are
-- always stale in a busy queue (seen: 1.3 ms scans of every leased row).
CREATE OR REPLACE FUNCTION ocr_lock_lease(
    p_id            extraction_queue.id%TYPE,
    p_worker        text,
    p_lease_token   uuid,
    p_even_expired  boolean DEFAULT false
)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_status  integer;
    v_worker  text;
    v_token   uuid;
    v_expires timestamptz;
BEGIN
    SELECT q.status_id, q.ocr_worker_id, q.ocr_lease_token, q.ocr_lease_expires_at
    INTO v_status, v_worker, v_token, v_expires
    FROM extraction_queue AS q
    WHERE q.id = p_id
    FOR UPDATE;
    RETURN FOUND
       AND v_status = 6
       AND v_worker IS NOT DISTINCT FROM p_worker
       AND v_token IS NOT DISTINCT FROM p_lease_token
       AND (p_even_expired OR coalesce(v_expires > now(), false));
END
$$;

-- Claim the next claimable row of one source: status 3, attempts left, not in
-- retry back-off; highest priority first, then oldest. Returns zero or one row.
--
-- The claim commits asynchronously (no WAL flush wait; about half the cost of a
-- job here). Durability is not needed: if the server crashes before the WAL
-- reaches disk the row is simply back at 3, and the claimant's heartbeat and
-- complete are refused by the lease fence. Results (complete, fail) stay
-- synchronous.
CREATE OR REPLACE FUNCTION ocr_claim(
    p_worker        text,
    p_source        text,
    p_lease_seconds double precision DEFAULT 120
)
RETURNS TABLE (
    id               extraction_queue.id%TYPE,
    document_source  text,
    supabase_path    text,
    attempt          integer,
    max_attempts     integer,
    lease_token      uuid,
    lease_expires_at timestamptz,
    created_at       timestamptz
)
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
BEGIN
    PERFORM ocr_check_source(p_source);
    PERFORM ocr_check_lease(p_lease_seconds);
    PERFORM set_config('synchronous_commit', 'off', true);
    RETURN QUERY
    WITH next AS (
        SELECT c.id
        FROM extraction_queue AS c
        WHERE c.status_id = 3
          AND c.document_source = p_source
          AND coalesce(c.ocr_attempts, 0) < coalesce(c.ocr_max_attempts, 3)
          AND (c.ocr_available_at IS NULL OR c.ocr_available_at <= now())
        ORDER BY c.ocr_priority DESC, c.created_at, c.id
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    )
    UPDATE extraction_queue AS q
    SET status_id            = 6,
        ocr_worker_id        = p_worker,
        ocr_started_at       = now(),
        ocr_completed_at     = NULL,
        ocr_lease_token      = gen_random_uuid(),
        ocr_lease_expires_at = now() + make_interval(secs => p_lease_seconds),
        ocr_heartbeat_at     = now()
    FROM next
    WHERE q.id = next.id
    RETURNING q.id, q.document_source::text, q.supabase_path::text,
              coalesce(q.ocr_attempts, 0) + 1, coalesce(q.ocr_max_attempts, 3),
              q.ocr_lease_token, q.ocr_lease_expires_at, q.created_at;
END
$$;

-- Extend a lease. False means the lease is lost: stop working on the row.
-- Asynchronous commit, as for the claim: a heartbeat lost in a server crash
-- only shortens the lease.
CREATE OR REPLACE FUNCTION ocr_heartbeat(
    p_id            extraction_queue.id%TYPE,
    p_worker        text,
    p_lease_token   uuid,
    p_lease_seconds double precision DEFAULT 120
)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM ocr_check_lease(p_lease_seconds);
    PERFORM set_config('synchronous_commit', 'off', true);
    IF NOT ocr_lock_lease(p_id, p_worker, p_lease_token) THEN
        RETURN false;
    END IF;
    UPDATE extraction_queue AS q
    SET ocr_lease_expires_at = now() + make_interval(secs => p_lease_seconds),
        ocr_heartbeat_at     = now()
    WHERE q.id = p_id;
    RETURN true;
END
$$;

-- Write the result and mark the row OCR-complete (5), only while the caller
-- holds the lease. False means refused: the result is discarded.
CREATE OR REPLACE FUNCTION ocr_complete(
    p_id                   extraction_queue.id%TYPE,
    p_worker               text,
    p_lease_token          uuid,
    p_file_content         extraction_queue.file_content%TYPE,
    p_boosted_file_content extraction_queue.boosted_file_content%TYPE DEFAULT NULL
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
        ocr_completed_at     = now(),
        ocr_error            = NULL,
        ocr_lease_token      = NULL,
        ocr_lease_expires_at = NULL,
        ocr_available_at     = NULL
    WHERE q.id = p_id;
    RETURN true;
END
$$;

-- Record a failed attempt. Retryable errors go back to 3 (claimable again
-- after p_retry_delay_seconds) while attempts remain; permanent errors and the
-- last attempt go to 4. Returns 'requeued', 'failed', or 'lost' when the
-- caller no longer held the lease (nothing written).
CREATE OR REPLACE FUNCTION ocr_fail(
    p_id                  extraction_queue.id%TYPE,
    p_worker              text,
    p_lease_token         uuid,
    p_error               text,
    p_retryable           boolean DEFAULT true,
    p_retry_delay_seconds double precision DEFAULT 0
)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_status integer;
BEGIN
    IF NOT ocr_lock_lease(p_id, p_worker, p_lease_token) THEN
        RETURN 'lost';
    END IF;
    UPDATE extraction_queue AS q
    SET ocr_attempts         = coalesce(q.ocr_attempts, 0) + 1,
        status_id            = CASE
                                   WHEN p_retryable
                                    AND coalesce(q.ocr_attempts, 0) + 1 < coalesce(q.ocr_max_attempts, 3)
                                   THEN 3 ELSE 4
                               END,
        ocr_error            = left(coalesce(p_error, 'unknown error'), 4000),
        ocr_last_error_at    = now(),
        ocr_lease_token      = NULL,
        ocr_lease_expires_at = NULL,
        ocr_available_at     = now() + make_interval(secs => greatest(coalesce(p_retry_delay_seconds, 0), 0))
    WHERE q.id = p_id
    RETURNING q.status_id INTO v_status;
    RETURN CASE WHEN v_status = 3 THEN 'requeued' ELSE 'failed' END;
END
$$;

-- Give a claimed row back untouched (no attempt counted): used when a worker
-- stops before it could work on the row. Returns false if the lease was lost.
CREATE OR REPLACE FUNCTION ocr_release(
    p_id          extraction_queue.id%TYPE,
    p_worker      text,
    p_lease_token uuid
)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF NOT ocr_lock_lease(p_id, p_worker, p_lease_token, p_even_expired => true) THEN
        RETURN false;
    END IF;
    UPDATE extraction_queue AS q
    SET status_id            = 3,
        ocr_lease_token      = NULL,
        ocr_lease_expires_at = NULL
    WHERE q.id = p_id;
    RETURN true;
END
$$;

-- Return rows whose holder stopped heart-beating. Each expiry counts as an
-- attempt, so a document that kills its worker every time ends in 4 instead of
-- looping forever. Rows at 6 without a lease (left by an older system) are
-- recovered once they started more than p_orphan_after_seconds ago.
CREATE OR REPLACE FUNCTION ocr_recover_expired(
    p_limit                integer DEFAULT 1000,
    p_orphan_after_seconds double precision DEFAULT 3600
)
RETURNS TABLE (id extraction_queue.id%TYPE, document_source text, status_id integer, worker_id text)
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH expired AS (
        SELECT e.id, e.ocr_worker_id
        FROM extraction_queue AS e
        WHERE e.status_id = 6
          AND coalesce(e.ocr_lease_expires_at,
                       e.ocr_started_at + make_interval(secs => p_orphan_after_seconds),
                       '-infinity'::timestamptz) < now()
        LIMIT greatest(p_limit, 1)
        FOR UPDATE SKIP LOCKED
    )
    UPDATE extraction_queue AS q
    SET ocr_attempts         = coalesce(q.ocr_attempts, 0) + 1,
        status_id            = CASE
                                   WHEN coalesce(q.ocr_attempts, 0) + 1 < coalesce(q.ocr_max_attempts, 3)
                                   THEN 3 ELSE 4
                               END,
        ocr_error            = format('lease expired: worker %s stopped heart-beating',
                                      coalesce(expired.ocr_worker_id, '(unknown)')),
        ocr_last_error_at    = now(),
        ocr_lease_token      = NULL,
        ocr_lease_expires_at = NULL,
        ocr_available_at     = NULL
    FROM expired
    WHERE q.id = expired.id
    RETURNING q.id, q.document_source::text, q.status_id, expired.ocr_worker_id;
END
$$;

-- Put rows that failed in OCR (status 4 with an OCR error) back to 3 with
-- fresh attempts. Rows at 4 for other reasons (extraction errors) are left.
CREATE OR REPLACE FUNCTION ocr_requeue_failed(p_source text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_count integer;
BEGIN
    IF p_source IS NOT NULL THEN
        PERFORM ocr_check_source(p_source);
    END IF;
    UPDATE extraction_queue AS q
    SET status_id        = 3,
        ocr_attempts     = 0,
        ocr_available_at = NULL
    WHERE q.status_id = 4
      AND q.ocr_last_error_at IS NOT NULL
      AND q.document_source IN ('index', 'acte')
      AND (p_source IS NULL OR q.document_source = p_source);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;

-- What is waiting, per source: claimable now, in retry back-off, in progress.
CREATE OR REPLACE FUNCTION ocr_queue_composition()
RETURNS TABLE (document_source text, claimable bigint, delayed bigint, in_progress bigint)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT s.source,
           count(*) FILTER (WHERE q.status_id = 3
                              AND (q.ocr_available_at IS NULL OR q.ocr_available_at <= now())),
           count(*) FILTER (WHERE q.status_id = 3 AND q.ocr_available_at > now()),
           count(*) FILTER (WHERE q.status_id = 6)
    FROM unnest(ARRAY['index', 'acte']) AS s(source)
    LEFT JOIN extraction_queue AS q
           ON q.document_source = s.source
          AND q.status_id IN (3, 6)
          AND coalesce(q.ocr_attempts, 0) < coalesce(q.ocr_max_attempts, 3)
    GROUP BY s.source
    ORDER BY s.source;
$$;

-- Batch ingestion. A path already in the queue and not OCR-complete is
-- reported (created = false, with its row and status), not queued twice.
-- Paths are locked in sorted order so concurrent batches cannot deadlock.
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
        WHERE q.supabase_path = v_path AND q.status_id <> 5
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
