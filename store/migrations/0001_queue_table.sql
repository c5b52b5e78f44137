-- 0001: the queue table and its status lookup.
--
-- Production databases already hold `extraction_queue` (written by the registre
-- extractor every second). This file creates what is missing and only ever
-- *adds*: no DROP, no RENAME, no ALTER of an existing column, no rewrite of
-- existing rows. It is cut into steps (see store/migrations/__init__.py): each runs in
-- its own short transaction under a lock timeout and is retried, and the
-- indexes are built CONCURRENTLY, so writers are never held up for more than a
-- moment.
--
-- Which shared tables ocr-pool created is recorded (ocr_pool_created_tables):
-- those are ocr-pool's own and 0006 locks them down; a table that existed before
-- is another program's and is left as it is (`ocr-pool lockdown` changes that,
-- on request).

-- step: the record of the tables ocr-pool created
-- `relid` is a regclass: it follows the table through dump and restore, and a
-- table dropped and created again by someone else is no longer ours.
CREATE TABLE IF NOT EXISTS ocr_pool_created_tables (
    relid      regclass    PRIMARY KEY,
    table_name text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- step: extraction_status, created only when missing
-- Decided atomically: CREATE TABLE (without IF NOT EXISTS) either creates the
-- table, and the record of it commits with it, or fails because the table
-- exists (whoever made it, even a moment ago), and then nothing is recorded.
DO $$
BEGIN
    CREATE TABLE extraction_status (
        id          integer PRIMARY KEY,
        name        text NOT NULL,
        description text
    );
    INSERT INTO ocr_pool_created_tables (relid, table_name)
    VALUES (format('%I.extraction_status', current_schema())::regclass, 'extraction_status')
    ON CONFLICT (relid) DO NOTHING;
EXCEPTION WHEN duplicate_table THEN
    NULL;  -- it was there before: another program's table, left as it is
END
$$;

-- step: the six statuses
-- Filled in only when the table has the shape created above, and only where an id
-- is missing; a production lookup table of another shape is left alone.
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'extraction_status'
          AND column_name = 'name'
    ) THEN
        INSERT INTO extraction_status (id, name)
        VALUES (1, 'EN_ATTENTE'),
               (2, 'EN_TRAITEMENT'),
               (3, 'COMPLETE'),
               (4, 'ERREUR'),
               (5, 'OCR_COMPLETE'),
               (6, 'OCR_EN_TRAITEMENT')
        ON CONFLICT (id) DO NOTHING;
    END IF;
END
$$;

-- step: extraction_queue, created only when missing
DO $$
BEGIN
    CREATE TABLE extraction_queue (
        id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        document_source      text NOT NULL,
        status_id            integer NOT NULL DEFAULT 1 REFERENCES extraction_status (id),
        supabase_path        text,
        created_at           timestamptz NOT NULL DEFAULT now(),
        file_content         text,
        boosted_file_content text
    );
    INSERT INTO ocr_pool_created_tables (relid, table_name)
    VALUES (format('%I.extraction_queue', current_schema())::regclass, 'extraction_queue')
    ON CONFLICT (relid) DO NOTHING;
EXCEPTION WHEN duplicate_table THEN
    NULL;  -- the registre extractor's table: only columns are added below
END
$$;

-- step: the columns the pool relies on
-- One ALTER TABLE: one brief ACCESS EXCLUSIVE lock. Each column is added only
-- when missing. The ocr_* columns have constant defaults or none, so adding them
-- rewrites nothing. (`created_at ... DEFAULT now()` would rewrite a table that
-- lacks it; every production queue has it, so IF NOT EXISTS skips it.)
ALTER TABLE extraction_queue
    ADD COLUMN IF NOT EXISTS document_source      text,
    ADD COLUMN IF NOT EXISTS status_id            integer,
    ADD COLUMN IF NOT EXISTS supabase_path        text,
    ADD COLUMN IF NOT EXISTS created_at           timestamptz DEFAULT now(),
    ADD COLUMN IF NOT EXISTS file_content         text,
    ADD COLUMN IF NOT EXISTS boosted_file_content text,
    ADD COLUMN IF NOT EXISTS ocr_worker_id        text,
    ADD COLUMN IF NOT EXISTS ocr_started_at       timestamptz,
    ADD COLUMN IF NOT EXISTS ocr_completed_at     timestamptz,
    ADD COLUMN IF NOT EXISTS ocr_attempts         integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS ocr_max_attempts     integer NOT NULL DEFAULT 3,
    ADD COLUMN IF NOT EXISTS ocr_error            text,
    ADD COLUMN IF NOT EXISTS ocr_last_error_at    timestamptz,
    -- Lease: who holds the row (token fences late writers), until when, last beat.
    ADD COLUMN IF NOT EXISTS ocr_lease_token      uuid,
    ADD COLUMN IF NOT EXISTS ocr_lease_expires_at timestamptz,
    ADD COLUMN IF NOT EXISTS ocr_heartbeat_at     timestamptz,
    -- Retry back-off: a failed row is not claimable before this instant.
    ADD COLUMN IF NOT EXISTS ocr_available_at     timestamptz,
    -- Higher first; `ocr-pool enqueue` derives it from the file size.
    ADD COLUMN IF NOT EXISTS ocr_priority         integer NOT NULL DEFAULT 0;

-- step: the claim index
-- The claim scans only claimable rows, in claim order.
CREATE INDEX CONCURRENTLY IF NOT EXISTS extraction_queue_ocr_claim_idx
    ON extraction_queue (document_source, ocr_priority DESC, created_at, id)
    WHERE status_id = 3;

-- step: the reaper's index
-- The reaper scans only leased rows. Keyed on a column heartbeats do not
-- change, so a heartbeat touches no index (a HOT update when the page has room).
CREATE INDEX CONCURRENTLY IF NOT EXISTS extraction_queue_ocr_leased_idx
    ON extraction_queue (ocr_started_at)
    WHERE status_id = 6;

-- step: the dashboard's index
-- Dashboard figures over recent completions.
CREATE INDEX CONCURRENTLY IF NOT EXISTS extraction_queue_ocr_completed_idx
    ON extraction_queue (ocr_completed_at)
    WHERE status_id = 5;

-- step: the duplicate check's index
-- Duplicate detection at enqueue time.
CREATE INDEX CONCURRENTLY IF NOT EXISTS extraction_queue_supabase_path_idx
    ON extraction_queue (supabase_path);
