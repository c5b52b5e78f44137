-- Statements for tests/integration/test_live_migration.py and benchmarks/migrate_live.py:
-- snapshots of a pre-existing table's rows and access, and the other programs
-- (writers, long transactions) that run while ocr-pool migrates.

-- name: columns
SELECT array_agg(a.attname::text ORDER BY a.attnum)
FROM pg_attribute AS a
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped;

-- Every row of a table, every column but those listed ($2), in id order; and
-- the md5 of the whole dump. xmin: a row any statement wrote has a new one.
-- name: queue_dump
SELECT q.id::text AS id, (to_jsonb(q) - $1::text[])::text AS doc, q.xmin::text AS xmin
FROM extraction_queue AS q ORDER BY q.id;

-- name: queue_md5
SELECT md5(string_agg((to_jsonb(q) - $1::text[])::text, E'\n' ORDER BY q.id))
FROM extraction_queue AS q;

-- name: status_dump
SELECT s.id, to_jsonb(s)::text AS doc, s.xmin::text AS xmin
FROM extraction_status AS s ORDER BY s.id;

-- Privileges (table and column ACLs), row level security flags, the table's
-- storage (a rewrite gives it a new relfilenode) and its policies, whole rows.
-- name: access_snapshot
SELECT c.relname::text AS name,
       c.relacl::text AS acl,
       c.relrowsecurity AS rls,
       c.relforcerowsecurity AS force_rls,
       c.relfilenode::bigint AS filenode,
       (SELECT json_agg(json_build_object('column', a.attname, 'acl', a.attacl::text)
                        ORDER BY a.attnum)::text
        FROM pg_attribute AS a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND a.attacl IS NOT NULL) AS column_acls,
       (SELECT json_agg(to_jsonb(p) ORDER BY p.polname)::text
        FROM pg_policy AS p WHERE p.polrelid = c.oid) AS policies
FROM pg_class AS c
WHERE c.relnamespace = 'public'::regnamespace
  AND c.relname IN ('extraction_queue', 'extraction_status')
ORDER BY c.relname;

-- name: become
SELECT set_config('role', $1, false);

-- What a role sees of the queue and the statuses.
-- name: seen_queue
SELECT id::text, status_id, supabase_path FROM extraction_queue ORDER BY id;

-- name: seen_statuses
SELECT id, name FROM extraction_status ORDER BY id;

-- An authenticated user puts an errored document back in line (its policy allows it).
-- name: retry_errored
UPDATE extraction_queue SET status_id = 1 WHERE status_id = 4 AND document_source = 'acte';

-- The registre extractor at work: one new document, one updated row.
-- name: live_insert
INSERT INTO extraction_queue (document_source, document_number, status_id, supabase_path,
                              file_content)
VALUES ('index', $1, 1, 'index/live-' || $1 || '.pdf',
        CASE WHEN right($1, 1) = '0' THEN 'Ligne 1: vente ' || $1 END);

-- name: live_update
UPDATE extraction_queue SET retry_count = coalesce(retry_count, 0) + 1, updated_at = now()
WHERE id = $1;

-- name: some_ids
SELECT id FROM extraction_queue ORDER BY id LIMIT $1;

-- Another program's open transaction that wrote a row: it holds ROW EXCLUSIVE
-- on the table until it ends.
-- name: touch_row
UPDATE extraction_queue SET updated_at = updated_at WHERE id = $1;

-- A long report: its snapshot stays open as long as its transaction.
-- name: long_read
SELECT count(*) FROM extraction_queue WHERE status_id = 5;

-- name: live_rows
SELECT count(*)::int FROM extraction_queue WHERE supabase_path LIKE 'index/live-%';

-- name: row_count
SELECT count(*)::int FROM extraction_queue;

-- name: queue_indexes
SELECT c.relname::text AS name, i.indisvalid AS valid, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
WHERE i.indrelid = 'extraction_queue'::regclass
ORDER BY c.relname;

-- name: vacuum_analyze
VACUUM ANALYZE extraction_queue;

-- The queue's columns and indexes, as a comparable text.
-- name: queue_shape
SELECT
    (SELECT json_agg(json_build_object('name', a.attname,
                                       'type', format_type(a.atttypid, a.atttypmod),
                                       'not_null', a.attnotnull,
                                       'default', pg_get_expr(d.adbin, d.adrelid))
                     ORDER BY a.attname)::text
     FROM pg_attribute AS a
     LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE a.attrelid = 'extraction_queue'::regclass AND a.attnum > 0 AND NOT a.attisdropped
    ) AS columns,
    (SELECT json_agg(json_build_object('name', c.relname, 'valid', i.indisvalid,
                                       'definition', pg_get_indexdef(i.indexrelid))
                     ORDER BY c.relname)::text
     FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
     WHERE i.indrelid = 'extraction_queue'::regclass
    ) AS indexes,
    (SELECT json_agg(json_build_object('name', a.attname,
                                       'type', format_type(a.atttypid, a.atttypmod),
                                       'not_null', a.attnotnull)
                     ORDER BY a.attname)::text
     FROM pg_attribute AS a
     WHERE a.attrelid = 'extraction_status'::regclass AND a.attnum > 0 AND NOT a.attisdropped
    ) AS status_columns;

-- name: created_tables
SELECT table_name FROM ocr_pool_created_tables ORDER BY table_name;

-- name: ledger
SELECT version, name, checksum FROM ocr_pool_migrations ORDER BY version;
