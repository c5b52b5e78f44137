-- The registre extractor's tables as its production Supabase project holds them,
-- before ocr-pool: `extraction_status` (id, name; six statuses), `extraction_queue`
-- with the extractor's columns (`attemtps` is spelled that way in production), the
-- OCR columns of its own OCR migration (nullable, defaults 0 and 3), its partial
-- indexes and the French full-text GIN indexes; Supabase's grants, in two
-- variants of row level security; rows in every `supabase_path` form and every
-- status. Facts about the original, written for these tests.
--
-- The roles anon, authenticated and service_role must exist (tests/integration/test_lockdown.py
-- creates them: `supabase_roles` in tests/support/lockdown.sql).

-- name: schema
CREATE TABLE extraction_status (
    id   integer PRIMARY KEY,
    name text    NOT NULL
);
INSERT INTO extraction_status (id, name) VALUES
    (1, 'En attente'),
    (2, 'En traitement'),
    (3, 'Complété'),
    (4, 'Erreur'),
    (5, 'Extraction Complété'),
    (6, 'OCR en traitement');

CREATE TABLE extraction_queue (
    id                         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    document_source            text        NOT NULL
        CHECK (document_source IN ('acte', 'index', 'plan_cadastraux')),
    document_number            text        NOT NULL,
    document_number_normalized text,
    circonscription_fonciere   text,
    cadastre                   text,
    designation_secondaire     text,
    acte_type                  text
        CHECK (acte_type IN ('Acte', 'Avis d''adresse', 'Radiation', 'Acte divers')),
    status_id                  integer     NOT NULL DEFAULT 1 REFERENCES extraction_status (id),
    worker_id                  text,
    attemtps                   integer     DEFAULT 0,
    max_attempts               integer     DEFAULT 3,
    retry_count                integer     DEFAULT 0,
    supabase_path              text,
    error_message              text,
    file_content               text,
    boosted_file_content       text,
    searchable_file_content    text,
    claude_file_id             text,
    file_id_active             boolean     DEFAULT false,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    processing_started_at      timestamptz,
    -- The extractor's own OCR tracking (nullable, as its migration added them).
    ocr_worker_id              text,
    ocr_started_at             timestamptz,
    ocr_completed_at           timestamptz,
    ocr_attempts               integer     DEFAULT 0,
    ocr_max_attempts           integer     DEFAULT 3,
    ocr_error                  text,
    ocr_last_error_at          timestamptz
);

-- Index documents waiting for OCR, and OCR'd documents.
CREATE INDEX idx_extraction_queue_ocr_pending
    ON extraction_queue (status_id, document_source, created_at)
    WHERE status_id = 3 AND document_source = 'index' AND file_content IS NULL;
CREATE INDEX idx_extraction_queue_ocr_complete
    ON extraction_queue (status_id, document_source)
    WHERE status_id = 5;
CREATE INDEX idx_extraction_queue_ocr_ready
    ON extraction_queue (status_id, document_source, created_at, ocr_attempts)
    WHERE status_id = 3 AND document_source = 'index' AND file_content IS NULL;
CREATE INDEX idx_extraction_queue_ocr_stuck
    ON extraction_queue (status_id, ocr_started_at)
    WHERE status_id = 6 AND ocr_started_at IS NOT NULL;
-- French full-text search over the raw and the corrected transcription.
CREATE INDEX idx_extraction_queue_file_content_search
    ON extraction_queue USING gin (to_tsvector('french', file_content))
    WHERE file_content IS NOT NULL;
CREATE INDEX idx_extraction_queue_boosted_content_search
    ON extraction_queue USING gin (to_tsvector('french', boosted_file_content))
    WHERE boosted_file_content IS NOT NULL;

-- One row per supabase_path form and status (8 forms x 6 statuses), with the
-- columns each status fills: a claim by the extractor (2), an error (4), a
-- transcription (5: accents, quotes, a backslash, several lines), a stuck OCR
-- (6). Ids and times are fixed so that dumps compare.
-- name: rows
INSERT INTO extraction_queue (
    id, document_source, document_number, document_number_normalized,
    circonscription_fonciere, cadastre, designation_secondaire, acte_type, status_id,
    worker_id, attemtps, max_attempts, retry_count, supabase_path, error_message,
    file_content, boosted_file_content, searchable_file_content, claude_file_id,
    file_id_active, created_at, updated_at, processing_started_at, ocr_worker_id,
    ocr_started_at, ocr_completed_at, ocr_attempts, ocr_max_attempts, ocr_error,
    ocr_last_error_at)
SELECT md5(f.form || '/' || s.status)::uuid,
       f.source,
       f.number,
       replace(f.number, ' ', ''),
       f.circonscription,
       CASE WHEN f.source <> 'acte' THEN 'Cadastre du Québec' END,
       CASE WHEN f.source = 'plan_cadastraux' THEN 'Rang ' || s.status END,
       CASE WHEN f.source = 'acte'
            THEN (ARRAY['Acte', 'Radiation', 'Avis d''adresse', 'Acte divers'])[1 + s.status % 4]
       END,
       s.status,
       CASE WHEN s.status >= 2 THEN 'registre-worker-' || (s.status % 3) END,
       CASE WHEN s.status >= 2 THEN 1 + s.status % 2 ELSE 0 END,
       3,
       CASE WHEN s.status = 4 THEN 2 ELSE 0 END,
       format(f.path, s.status),
       CASE WHEN s.status = 4 THEN 'Timeout: le registre n''a pas répondu (page 2)' END,
       CASE WHEN s.status = 5 THEN
           E'--- Page 1 ---\nCirconscription foncière : ' || f.circonscription
           || E'\nLigne 1:\nNature de l''acte : Vente\nNom des parties : Tremblay, Gagnon & "Fils"'
           || E'\nRemarques : voir C:\\registre\\' || f.form || E'\n--- Page 2 ---\nFin.'
       END,
       CASE WHEN s.status = 5 AND f.source = 'index' THEN
           E'--- Page 1 ---\nCirconscription foncière : ' || f.circonscription || E'\nVente.'
       END,
       CASE WHEN s.status = 5 THEN 'vente tremblay gagnon ' || lower(f.circonscription) END,
       CASE WHEN s.status = 5 THEN 'file_' || md5(f.form) END,
       s.status = 5,
       timestamptz '2025-10-01 08:00:00-04' + make_interval(mins => 7 * s.status + f.n),
       timestamptz '2025-10-02 09:30:00-04' + make_interval(mins => s.status + f.n),
       CASE WHEN s.status IN (2, 6) THEN timestamptz '2025-10-01 12:00:00-04' END,
       CASE WHEN s.status IN (5, 6) THEN 'ocr-legacy-' || f.n END,
       CASE WHEN s.status IN (5, 6) THEN timestamptz '2025-10-01 13:00:00-04' END,
       CASE WHEN s.status = 5 THEN timestamptz '2025-10-01 13:04:59.123456-04' END,
       CASE WHEN s.status = 6 THEN 1 WHEN s.status = 3 AND f.n % 2 = 0 THEN NULL ELSE 0 END,
       CASE WHEN f.n % 3 = 0 THEN NULL ELSE 3 END,
       CASE WHEN s.status = 4 THEN 'Gemini: 503' END,
       CASE WHEN s.status = 4 THEN timestamptz '2025-10-01 14:00:00-04' END
FROM (VALUES
        (1, 'bucket-index', 'index', '2 345 678', 'Montréal',
         'index/montreal-2345678-%s.pdf'),
        (2, 'bucket-actes', 'acte', '12 345 678', 'Québec',
         'actes/quebec-12345678-%s.pdf'),
        (3, 'bucket-plans', 'plan_cadastraux', '4 567 890', 'Laval',
         'plans-cadastraux/laval-4567890-%s.pdf'),
        (4, 'bare-index', 'index', '1 234 567', 'L''Assomption',
         'lassomption-1234567-%s.pdf'),
        (5, 'bare-acte', 'acte', '23 456 789', 'Terrebonne',
         'terrebonne-23456789-%s.pdf'),
        (6, 'file-uri', 'index', '3 456 789', 'Montréal',
         'file:///srv/registre/index/montreal-3456789-%s.pdf'),
        (7, 'absolute', 'acte', '34 567 890', 'Sherbrooke',
         '/var/lib/registre/actes/sherbrooke-34567890-%s.pdf'),
        (8, 'https', 'index', '5 678 901', 'Gatineau',
         'https://registre.example.org/storage/v1/object/index/gatineau-5678901-%s.pdf')
     ) AS f(n, form, source, number, circonscription, path)
CROSS JOIN generate_series(1, 6) AS s(status)
ORDER BY f.n, s.status;

-- Supabase's grants (ALL to the three API roles, as its default privileges give
-- every table created in `public`), row level security on, and policies: signed-in
-- users read the queue and may put an errored document back in line; everybody
-- reads the status names. anon holds the grants but no queue policy: no rows.
-- name: access_rls_on
GRANT ALL ON TABLE extraction_queue, extraction_status TO anon, authenticated, service_role;
ALTER TABLE extraction_queue ENABLE ROW LEVEL SECURITY;
ALTER TABLE extraction_status ENABLE ROW LEVEL SECURITY;
CREATE POLICY "signed-in users read the queue" ON extraction_queue
    FOR SELECT TO authenticated USING (true);
CREATE POLICY "signed-in users retry errors" ON extraction_queue
    FOR UPDATE TO authenticated USING (status_id = 4) WITH CHECK (status_id IN (1, 4));
CREATE POLICY "status names are public" ON extraction_status
    FOR SELECT TO anon, authenticated USING (true);

-- The same grants with row level security off (a table created from SQL rather
-- than the dashboard): anon and authenticated read and write every row.
-- name: access_rls_off
GRANT ALL ON TABLE extraction_queue, extraction_status TO anon, authenticated, service_role;

-- More rows of the same kinds ($1 of them), for the live-migration test: mostly
-- OCR'd or extracted documents, one in ten with a short transcription.
-- name: grow
INSERT INTO extraction_queue (
    document_source, document_number, document_number_normalized, circonscription_fonciere,
    status_id, worker_id, supabase_path, file_content, created_at, updated_at, ocr_attempts)
SELECT src.source,
       g::text,
       g::text,
       (ARRAY['Montréal', 'Québec', 'Laval', 'Gatineau', 'Sherbrooke'])[1 + g % 5],
       (ARRAY[5, 5, 5, 3, 3, 1, 2, 4, 5, 6])[1 + g % 10],
       'registre-worker-' || g % 4,
       src.prefix || g || '.pdf',
       CASE WHEN g % 10 = 0 THEN 'Ligne 1: vente ' || g || ', Tremblay c. Gagnon' END,
       timestamptz '2024-01-01 00:00:00-05' + make_interval(secs => g * 30),
       timestamptz '2024-01-01 00:00:00-05' + make_interval(secs => g * 30 + 5),
       CASE WHEN g % 7 = 0 THEN NULL ELSE 0 END
FROM generate_series(1, $1::int) AS g
CROSS JOIN LATERAL (
    SELECT CASE g % 3 WHEN 0 THEN 'index' WHEN 1 THEN 'acte' ELSE 'plan_cadastraux' END AS source,
           CASE g % 3 WHEN 0 THEN 'index/grown-' WHEN 1 THEN 'actes/grown-'
                      ELSE 'plans-cadastraux/grown-' END AS prefix
) AS src;
