-- 0009: leases that survive an outage of the queue database.
--
-- When the database cannot be reached, nobody can heartbeat: every lease runs out,
-- although every holder is alive and working. Before this file, the reaper then
-- charged each of those documents an attempt (three outages: a good document at 4)
-- and the fenced writes of 0002/0007 refused the results finished during the
-- outage, paid for with Gemini calls. Here:
--
-- Outages are reported by the pools that lived through them. A pool's store notes
-- when its calls start failing for lack of a database (connection refused, reset,
-- timeout, server shutting down) and, before its first call once the database
-- answers again, records the stretch in `ocr_queue_outages` with
-- `ocr_note_outage(p_seconds)`: [now() - p_seconds, now()] on the database's clock,
-- from its last successful call to now. This is positive evidence: a pool that
-- died reports nothing, so a holder that died while the database was fine is still
-- charged an attempt, as before.
--
-- The reaper, `ocr_lease_reap`, does not charge an attempt for a lease that ran out
-- during a reported outage (its expiry lies inside one), and leaves such a row alone
-- until its holder has had one whole lease after the outage ended: a live holder
-- takes its lease back with its next heartbeat. A holder that does not come back by
-- then is recovered without an attempt counted. Every recovery, charged or not,
-- counts in `ocr_lease_expiries`: at `p_max_expiries` (default 5) the row goes to 4
-- with an ocr_error that says so, so a document that keeps killing its worker
-- through outages still ends (the poison-pill cap).
--
-- Late writers are fenced by the lease token, not by the expiry. The reaper keeps
-- the holder's worker id and token on the row it recovers (status 3 or 4); only a
-- new claim replaces them. So the holder's renewal, result, failure or release is
-- taken as long as the row still carries its token: at 6 even expired (nobody
-- recovered it yet), at 3 or 4 after a recovery nobody followed with a claim. Once
-- another worker has claimed the row, every late write of the old holder is refused.
--
--   ocr_lease_renew     the heartbeat; takes an expired or recovered lease back
--   ocr_lease_complete  0007's ocr_complete_structured, with this fence
--   ocr_lease_fail      0002's ocr_fail, with this fence; a late failure of a
--                       recovered row is counted once, and never un-fails a row at 4
--   ocr_lease_release   0002's ocr_release, with this fence
--   ocr_lease_reap      0002's ocr_recover_expired, outage-aware, with the cap
--   ocr_note_outage     a pool's report of an outage it saw
--
-- New names, as in 0007: 0002's and 0007's functions stay as they are for pools of
-- an earlier release still running during an upgrade (their reapers still charge
-- every expiry and clear the token), and re-running any earlier file cannot create
-- an ambiguous overload. `ocr_requeue_failed` keeps its signature and now also
-- resets the expiry count, so a requeued document gets fresh expiries with its fresh
-- attempts.
--
-- Live-table discipline (store/migrations/__init__.py): the first step touches
-- `extraction_queue` for a moment (a column with a constant default rewrites
-- nothing); the rest creates a small table of ocr-pool's own and functions.

-- step: the poison-pill counter on the queue
ALTER TABLE extraction_queue
    ADD COLUMN IF NOT EXISTS ocr_lease_expiries integer NOT NULL DEFAULT 0;

-- step: the outage record and the outage-aware lease functions
CREATE TABLE IF NOT EXISTS ocr_queue_outages (
    id          bigint      GENERATED ALWAYS AS IDENTITY,
    -- From the reporter's last successful call to its first one after the outage,
    -- on the database's clock.
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz NOT NULL,
    -- Who saw it (a pool's server and id, for people reading the table).
    reporter    text,
    CONSTRAINT ocr_queue_outages_pkey PRIMARY KEY (id),
    CONSTRAINT ocr_queue_outages_order_check CHECK (started_at <= ended_at)
);

COMMENT ON TABLE ocr_queue_outages IS
    'Stretches in which a pool could not reach this database, reported by the pool '
    'once it could again (ocr_note_outage); the reaper charges no attempt for a lease '
    'that ran out inside one. Kept 7 days.';

ALTER TABLE ocr_queue_outages ENABLE ROW LEVEL SECURITY;

-- A pool could not reach the database for the last p_seconds (its last successful
-- call was that long ago): record the stretch. Reports older than 7 days are
-- dropped on the way (the longest lease is a day).
CREATE OR REPLACE FUNCTION ocr_note_outage(
    p_seconds  double precision,
    p_reporter text DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF p_seconds IS NULL OR p_seconds <= 0 OR p_seconds > 7 * 86400 THEN
        RAISE EXCEPTION 'an outage lasts between 0 and 7 days (got % s)', p_seconds
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM ocr_queue_outages AS o WHERE o.ended_at < now() - interval '7 days';
    INSERT INTO ocr_queue_outages (started_at, ended_at, reporter)
    VALUES (now() - make_interval(secs => p_seconds), now(), left(p_reporter, 200));
END
$$;

-- Lock one row by primary key and return its status if it still carries this lease
-- (the caller's worker id and token): at 6, expired or not; at 3 or 4 after the
-- reaper recovered it and nobody claimed it since (a claim replaces the token,
-- every end of a lease clears it). NULL: someone else has the row, or it is done.
CREATE OR REPLACE FUNCTION ocr_lease_lock(
    p_id          extraction_queue.id%TYPE,
    p_worker      text,
    p_lease_token uuid
)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_status integer;
    v_worker text;
    v_token  uuid;
BEGIN
    SELECT q.status_id, q.ocr_worker_id, q.ocr_lease_token
    INTO v_status, v_worker, v_token
    FROM extraction_queue AS q
    WHERE q.id = p_id
    FOR UPDATE;
    IF NOT FOUND
       OR p_lease_token IS NULL
       OR v_status NOT IN (3, 4, 6)
       OR v_worker IS DISTINCT FROM p_worker
       OR v_token IS DISTINCT FROM p_lease_token THEN
        RETURN NULL;
    END IF;
    RETURN v_status;
END
$$;

-- The heartbeat. Extends the lease while the row carries it, taking it back when it
-- ran out or was recovered without a new claim (an outage kept the holder from
-- renewing). False: another worker has the row, or it is finished; stop working.
-- Asynchronous commit, as 0002's ocr_heartbeat.
CREATE OR REPLACE FUNCTION ocr_lease_renew(
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
    IF ocr_lease_lock(p_id, p_worker, p_lease_token) IS NULL THEN
        RETURN false;
    END IF;
    UPDATE extraction_queue AS q
    SET status_id            = 6,
        ocr_lease_expires_at = now() + make_interval(secs => p_lease_seconds),
        ocr_heartbeat_at     = now(),
        ocr_available_at     = NULL
    WHERE q.id = p_id;
    RETURN true;
END
$$;

-- Write the result and mark the row OCR-complete (5) while it carries the caller's
-- lease, expired or recovered included. False: another worker claimed it since (or
-- it is finished); the result is discarded. A text the table's indexes refuse
-- raises program_limit_exceeded (54000), as with ocr_complete_structured.
CREATE OR REPLACE FUNCTION ocr_lease_complete(
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
    IF ocr_lease_lock(p_id, p_worker, p_lease_token) IS NULL THEN
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

-- Record a failed attempt while the row carries the caller's lease. Retryable errors
-- go back to 3 (claimable after p_retry_delay_seconds) while attempts remain;
-- permanent errors and the last attempt go to 4. p_attempt is the attempt number the
-- claim gave: a row the reaper recovered already counts it when the recovery was
-- charged, so the attempt is counted once either way (ocr_attempts becomes at least
-- p_attempt); a row the reaper put at 4 stays at 4. Returns 'requeued', 'failed',
-- or 'lost' when another worker has the row (nothing written).
CREATE OR REPLACE FUNCTION ocr_lease_fail(
    p_id                  extraction_queue.id%TYPE,
    p_worker              text,
    p_lease_token         uuid,
    p_error               text,
    p_retryable           boolean DEFAULT true,
    p_retry_delay_seconds double precision DEFAULT 0,
    p_attempt             integer DEFAULT NULL
)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_held     integer;
    v_attempts integer;
    v_status   integer;
BEGIN
    v_held := ocr_lease_lock(p_id, p_worker, p_lease_token);
    IF v_held IS NULL THEN
        RETURN 'lost';
    END IF;
    SELECT CASE
               WHEN v_held = 6 OR p_attempt IS NULL THEN coalesce(q.ocr_attempts, 0) + 1
               ELSE greatest(coalesce(q.ocr_attempts, 0), p_attempt)
           END
    INTO v_attempts
    FROM extraction_queue AS q
    WHERE q.id = p_id;
    UPDATE extraction_queue AS q
    SET ocr_attempts         = v_attempts,
        status_id            = CASE
                                   WHEN v_held <> 4
                                    AND p_retryable
                                    AND v_attempts < coalesce(q.ocr_max_attempts, 3)
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

-- Give a row back untouched (no attempt counted) while it carries the caller's
-- lease: at 6 it goes back to 3; a row the reaper already recovered keeps its
-- status and only loses the token. False: another worker has the row.
CREATE OR REPLACE FUNCTION ocr_lease_release(
    p_id          extraction_queue.id%TYPE,
    p_worker      text,
    p_lease_token uuid
)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF ocr_lease_lock(p_id, p_worker, p_lease_token) IS NULL THEN
        RETURN false;
    END IF;
    UPDATE extraction_queue AS q
    SET status_id            = CASE WHEN q.status_id = 6 THEN 3 ELSE q.status_id END,
        ocr_lease_token      = NULL,
        ocr_lease_expires_at = NULL
    WHERE q.id = p_id;
    RETURN true;
END
$$;

-- The reaper. Rows whose lease ran out go back to 3:
--   * charged an attempt (4 once attempts are used up) when the database was not
--     reported unreachable at the expiry: the holder stopped heart-beating;
--   * not charged when the lease ran out inside a reported outage, and only once the
--     holder has had a whole lease (its own length) after the outage ended to take
--     it back; until then the row is left as it is.
-- Every recovery adds 1 to ocr_lease_expiries; at p_max_expiries the row goes to 4
-- (the poison-pill cap). The holder's worker id and token stay on the row, so its
-- late result is still taken until someone claims the row (ocr_lease_lock). Rows at
-- 6 without a lease (left by an older system) are recovered, charged, once they
-- started more than p_orphan_after_seconds ago.
CREATE OR REPLACE FUNCTION ocr_lease_reap(
    p_limit                integer DEFAULT 1000,
    p_orphan_after_seconds double precision DEFAULT 3600,
    p_max_expiries         integer DEFAULT 5
)
RETURNS TABLE (
    id              extraction_queue.id%TYPE,
    document_source text,
    status_id       integer,
    worker_id       text,
    attempt_counted boolean
)
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
BEGIN
    IF p_max_expiries IS NULL OR p_max_expiries < 1 THEN
        RAISE EXCEPTION 'the expiry cap must be at least 1 (got %)', p_max_expiries
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH expired AS (
        SELECT e.id, e.ocr_worker_id, (outage.ended_at IS NOT NULL) AS outage,
               coalesce(e.ocr_attempts, 0) AS attempts,
               coalesce(e.ocr_max_attempts, 3) AS max_attempts,
               coalesce(e.ocr_lease_expiries, 0) AS expiries
        FROM extraction_queue AS e
        LEFT JOIN LATERAL (
            SELECT max(o.ended_at) AS ended_at
            FROM ocr_queue_outages AS o
            WHERE e.ocr_lease_expires_at IS NOT NULL
              AND o.started_at <= e.ocr_lease_expires_at
              AND o.ended_at >= e.ocr_lease_expires_at
        ) AS outage ON true
        WHERE e.status_id = 6
          AND coalesce(e.ocr_lease_expires_at,
                       e.ocr_started_at + make_interval(secs => p_orphan_after_seconds),
                       '-infinity'::timestamptz) < now()
          AND (outage.ended_at IS NULL
               OR outage.ended_at
                  + coalesce(e.ocr_lease_expires_at - e.ocr_heartbeat_at, interval '0')
                  <= now())
        LIMIT greatest(p_limit, 1)
        FOR UPDATE OF e SKIP LOCKED
    ),
    decided AS (
        SELECT x.id, x.ocr_worker_id, x.outage, x.max_attempts,
               x.attempts + CASE WHEN x.outage THEN 0 ELSE 1 END AS attempts,
               x.expiries + 1 AS expiries
        FROM expired AS x
    )
    UPDATE extraction_queue AS q
    SET ocr_attempts         = d.attempts,
        ocr_lease_expiries   = d.expiries,
        status_id            = CASE
                                   WHEN d.attempts >= d.max_attempts
                                     OR d.expiries >= p_max_expiries
                                   THEN 4 ELSE 3
                               END,
        ocr_error            = CASE
            WHEN d.expiries >= p_max_expiries THEN format(
                'lease expired %s times (the last time worker %s%s): given up, the document '
                'may be killing its worker; ocr-pool requeue-failed gives it fresh attempts',
                d.expiries, coalesce(d.ocr_worker_id, '(unknown)'),
                CASE WHEN d.outage
                     THEN ' did not come back after a database outage'
                     ELSE ' stopped heart-beating' END)
            WHEN d.outage THEN format(
                'lease expired during a database outage: worker %s did not come back within a '
                'lease after it (no attempt counted)', coalesce(d.ocr_worker_id, '(unknown)'))
            ELSE format('lease expired: worker %s stopped heart-beating',
                        coalesce(d.ocr_worker_id, '(unknown)'))
        END,
        ocr_last_error_at    = now(),
        ocr_lease_expires_at = NULL,
        ocr_available_at     = NULL
    FROM decided AS d
    WHERE q.id = d.id
    RETURNING q.id, q.document_source::text, q.status_id, d.ocr_worker_id, NOT d.outage;
END
$$;

-- Put rows that failed in OCR (status 4 with an OCR error) back to 3 with fresh
-- attempts and a fresh expiry count. Rows at 4 for other reasons are left.
-- (0002's function, same signature: an operator's command, now resetting the
-- poison-pill counter too.)
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
    SET status_id          = 3,
        ocr_attempts       = 0,
        ocr_lease_expiries = 0,
        ocr_available_at   = NULL
    WHERE q.status_id = 4
      AND q.ocr_last_error_at IS NOT NULL
      AND q.document_source IN ('index', 'acte')
      AND (p_source IS NULL OR q.document_source = p_source);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;

SELECT * FROM ocr_lockdown();
