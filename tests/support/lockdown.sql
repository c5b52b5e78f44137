-- Statements for tests/integration/test_lockdown.py: a Supabase-shaped database, and probes of
-- what each role can do in it.

-- Supabase's API roles, with Supabase's attributes, created only when missing
-- (roles are cluster-wide: never dropped afterwards, other databases may use
-- them). Tolerates a concurrent test creating the same role.
-- name: supabase_roles
DO $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT%s', v_role,
                               CASE WHEN v_role = 'service_role' THEN ' BYPASSRLS' ELSE '' END);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
END
$$;

-- name: service_role_bypasses_rls
SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role';

-- What a Supabase project grants in `public` before any migration of ours runs:
-- schema usage, and ALL on every future table, sequence and function to the
-- three API roles (Supabase sets these default privileges for `postgres`, the
-- role that runs the migrations; here, whoever runs them).
-- name: supabase_default_privileges
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;

-- Session-wide, as PostgREST does per request for the key's role.
-- name: become
SELECT set_config('role', $1, false);

-- name: current_role
SELECT current_user::text;

-- Every ocr_* routine in public, with a call of it on NULL arguments (privileges
-- are checked before any argument is looked at).
-- name: ocr_functions
SELECT p.oid,
       p.proname::text AS name,
       format('%s(%s)', p.proname, pg_get_function_identity_arguments(p.oid)) AS signature,
       p.proconfig,
       format(CASE p.prokind WHEN 'p' THEN 'CALL %I.%I(%s)' ELSE 'SELECT %I.%I(%s)' END,
              n.nspname, p.proname,
              (SELECT coalesce(string_agg('NULL::' || format_type(t.type, NULL), ', ' ORDER BY t.n), '')
               FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS t(type, n))) AS null_call
FROM pg_proc AS p
JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE n.nspname = 'public' AND p.proname LIKE 'ocr\_%'
ORDER BY p.proname, signature;

-- Every relation of ours in public (tables, their sequences, views), with its
-- row level security, options, policies, and a statement that reads it.
-- name: ocr_relations
WITH ours AS (
    SELECT c.oid FROM pg_class AS c
    WHERE c.relnamespace = 'public'::regnamespace
      AND (c.relname IN ('extraction_queue', 'extraction_status', 'ocr_pool_migrations')
           OR c.relname LIKE 'ocr\_%')
      AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
)
SELECT c.relname::text AS name,
       c.relkind::text AS kind,
       c.relrowsecurity AS rls,
       coalesce(c.reloptions, '{}') AS options,
       (SELECT count(*) FROM pg_policy AS pol WHERE pol.polrelid = c.oid)::int AS policies,
       CASE c.relkind WHEN 'S' THEN format('SELECT nextval(%L)', format('%I.%I', 'public', c.relname))
                      ELSE format('SELECT * FROM %I.%I LIMIT 1', 'public', c.relname) END AS read
FROM pg_class AS c
WHERE c.oid IN (SELECT oid FROM ours)
   OR c.oid IN (SELECT d.objid FROM pg_depend AS d
                WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                  AND d.refobjid IN (SELECT oid FROM ours) AND d.deptype IN ('a', 'i'))
      AND c.relkind = 'S'
ORDER BY c.relname;

-- name: can_execute
SELECT has_function_privilege($1::text, $2::oid, 'EXECUTE');

-- Any privilege at all, table- or column-level (sequences: any of theirs).
-- name: can_touch
SELECT CASE c.relkind
           WHEN 'S' THEN has_sequence_privilege($1::text, c.oid, 'USAGE, SELECT, UPDATE')
           ELSE has_table_privilege($1::text, c.oid, 'DELETE, TRUNCATE, TRIGGER')
                OR has_any_column_privilege($1::text, c.oid, 'SELECT, INSERT, UPDATE, REFERENCES')
       END
FROM pg_class AS c WHERE c.relnamespace = 'public'::regnamespace AND c.relname = $2;

-- name: can_read
SELECT has_table_privilege($1::text, format('public.%I', $2::text), 'SELECT');

-- name: server_version_num
SELECT current_setting('server_version_num')::int;

-- name: seed
INSERT INTO extraction_queue (document_source, status_id, supabase_path)
VALUES ('index', 3, 'lockdown/index-' || $1 || '.pdf') RETURNING id;

-- name: claim
SELECT * FROM ocr_claim($1, 'index', 60);

-- name: complete
SELECT ocr_complete($1, $2, $3, $4);

-- name: cache_put
SELECT ocr_cache_put($1, 'lockdown:v1', $2);

-- name: cache_get
SELECT * FROM ocr_cache_get($1, 'lockdown:v1');

-- name: record_allocation
SELECT ocr_record_allocation('pool-lockdown', 'srv', 2, 1, 1);

-- name: job
SELECT status_id, ocr_worker_id, ocr_lease_token, file_content FROM extraction_queue WHERE id = $1;

-- name: cache_rows
SELECT count(*)::int FROM ocr_result_cache WHERE sha256 = $1;

-- name: lockdown
SELECT object_type, object_name FROM ocr_lockdown();

-- name: lockdown_for
SELECT object_type, object_name FROM ocr_lockdown($1, $2);

-- A function a later migration might add: Supabase's default privileges give the
-- API roles EXECUTE on it at once.
-- name: later_function
CREATE FUNCTION ocr_test_later(p_n integer) RETURNS integer
LANGUAGE sql IMMUTABLE SET search_path FROM CURRENT AS $$ SELECT p_n $$;

-- name: later_function_oid
SELECT 'ocr_test_later(integer)'::regprocedure::oid;

-- The same mistake without a pinned search_path.
-- name: unpinned_function
CREATE FUNCTION ocr_test_unpinned() RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$;

-- A grant the owner's REVOKE cannot reach: made by another grantor, who holds
-- the privilege WITH GRANT OPTION (run in a transaction that is rolled back).
-- name: leaky_grantor
CREATE ROLE ocr_test_leaky_grantor NOLOGIN;
GRANT EXECUTE ON FUNCTION ocr_queue_composition() TO ocr_test_leaky_grantor WITH GRANT OPTION;
SET LOCAL ROLE ocr_test_leaky_grantor;
GRANT EXECUTE ON FUNCTION ocr_queue_composition() TO anon;
RESET ROLE;

-- name: view_options
SELECT relname::text AS name, coalesce(reloptions, '{}') AS options
FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'v'
  AND relname LIKE 'ocr\_%' ORDER BY relname;

-- name: stats_view
SELECT * FROM ocr_queue_stats;

-- name: allocation_view
SELECT * FROM ocr_allocation_recent;
