-- 0001: the queue table and its status lookup.
--
-- Production databases already hold `extraction_queue` (written by the registre
-- extractor). This file creates what is missing and only ever *adds*: no DROP,
-- no RENAME, no ALTER of an existing column, no rewrite of existing rows.

CREATE TABLE IF NOT EXISTS extraction_status (
    id          integer PRIMARY KEY,
    name        text NOT NULL,
    description text
);

-- Fill in the six statuses the pool relies on, but only when the table has the
-- shape created above; a production lookup table of another shape is left alone.
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

CREATE TABLE IF NOT EXISTS extraction_queue (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    document_source      text NOT NULL,
    status_id            integer NOT NULL DEFAULT 1 REFERENCES extraction_status (id),
    supabase_path        text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    file_content         text,
    boosted_file_content text
);

-- Columns the pool relies on; each is added only when missing.
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

-- The claim scans only claimable rows, in claim order.
CREATE INDEX IF NOT EXISTS extraction_queue_ocr_claim_idx
    ON extraction_queue (document_source, ocr_priority DESC, created_at, id)
    WHERE status_id = 3;

-- The reaper scans only leased rows. Keyed on a column heartbeats do not
-- change, so a heartbeat touches no index (a HOT update when the page has room).
CREATE INDEX IF NOT EXISTS extraction_queue_ocr_leased_idx
    ON extraction_queue (ocr_started_at)
    WHERE status_id = 6;

-- Dashboard figures over recent completions.
CREATE INDEX IF NOT EXISTS extraction_queue_ocr_completed_idx
    ON extraction_queue (ocr_completed_at)
    WHERE status_id = 5;

-- Duplicate detection at enqueue time.
CREATE INDEX IF NOT EXISTS extraction_queue_supabase_path_idx
    ON extraction_queue (supabase_path);
