-- 0006: what the anon key can do: nothing (with ocr-pool's own objects).
--
-- Supabase serves every table, view and function in `public` over REST to anyone
-- holding the project's anon key (it ships in front-ends: treat it as public),
-- and its default privileges grant ALL on new tables, sequences and functions in
-- `public` to `anon`, `authenticated` and `service_role`. Plain Postgres grants
-- EXECUTE on every new function to PUBLIC. This file takes all of that back from
-- everything ocr-pool creates:
--
--   tables      the migration ledger `ocr_pool_migrations`, every `ocr_*` table,
--               and `extraction_queue` / `extraction_status` when ocr-pool created
--               them (recorded in `ocr_pool_created_tables` by 0001): row level
--               security on, ALL revoked from PUBLIC, anon, authenticated;
--   sequences   of those tables (serial / identity): ALL revoked, likewise;
--   views       every `ocr_*` view: SELECT revoked, likewise; on Postgres 15+
--               `security_invoker = true`, so the caller's privileges and RLS
--               apply instead of the view owner's;
--   functions   every `ocr_*` routine, whatever its signature: EXECUTE revoked
--               from PUBLIC, anon, authenticated. Each must pin its search_path
--               (`SET search_path FROM CURRENT`), or the lockdown refuses to run.
--
-- `service_role` (the service key: PostgREST's role for the Supabase adapter,
-- BYPASSRLS on Supabase) is granted what the pool uses: DML on the tables,
-- USAGE/SELECT on their sequences, SELECT on the views, EXECUTE on every
-- `ocr_*` function except `ocr_lockdown` itself (revoked: the owner's tool).
-- Workers on a direct connection are the tables' owner, which RLS (not forced)
-- and the revokes leave alone. Each role is touched only if it exists, so the
-- same file runs on plain Postgres (where only PUBLIC is revoked). The lockdown
-- then checks itself: if anon, authenticated or PUBLIC can still use any of
-- these objects (a grant by another grantor, an inherited role membership), it
-- raises and nothing commits.
--
-- Pre-existing shared tables. An `extraction_queue` or `extraction_status` that
-- existed before ocr-pool belongs to other programs (the registre extractor, an
-- app reading the queue with the authenticated key): ocr_lockdown() leaves it
-- exactly as it is: no REVOKE, no GRANT, no row level security switched on, no
-- policy touched. `ocr-pool migrate` reports what anon, authenticated and
-- PUBLIC can do on it; `ocr-pool lockdown` locks it down, on request only.
-- A database whose 0001 ran before ocr_pool_created_tables existed has no record:
-- its shared tables count as pre-existing (a wrong "ours" would take access away
-- from another program for good; a wrong "theirs" only leaves an exposure that
-- every migrate reports and one command removes).
--
-- Later migrations. Objects created after this file get Supabase's default
-- grants (and PUBLIC's EXECUTE on functions) again, and CREATE OR REPLACE VIEW
-- drops `security_invoker`. Every later migration step that creates or replaces
-- a table, view or function MUST end with
--
--     SELECT * FROM ocr_lockdown();
--
-- in the same step (the same transaction, so nothing is ever exposed in
-- between). Re-running 0003 or 0005 alone loses the lockdown of what they
-- re-create until ocr_lockdown() runs again.
--
-- Locks: ENABLE ROW LEVEL SECURITY takes an ACCESS EXCLUSIVE lock, and only
-- where RLS is off, on ocr-pool's own tables; under the runner's lock timeout
-- and retries. Idempotent: GRANT / REVOKE / ALTER ... SET are no-ops when
-- already in place.

-- step: the record of created tables (a database whose 0001 predates it)
CREATE TABLE IF NOT EXISTS ocr_pool_created_tables (
    relid      regclass    PRIMARY KEY,
    table_name text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- step: ocr_lockdown() and the lockdown of ocr-pool's objects
CREATE OR REPLACE FUNCTION ocr_lockdown(
    p_api_roles     text[] DEFAULT ARRAY['anon', 'authenticated'],
    p_service_roles text[] DEFAULT ARRAY['service_role']
)
RETURNS TABLE (object_type text, object_name text)
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
    v_schema     name := current_schema();
    v_ns         oid;
    v_api        text;  -- PUBLIC and the API roles that exist, ready for REVOKE
    v_service    text;  -- the service roles that exist, or NULL
    v_invoker    boolean := current_setting('server_version_num')::integer >= 150000;
    v_unpinned   text;
    v_leak       text;
    v_rels       oid[] := '{}';  -- everything locked down, for the final check
    v_routines   oid[] := '{}';
    v_created    oid[];          -- shared tables ocr-pool created (0001)
    r            record;
    s            record;
BEGIN
    SELECT n.oid INTO v_ns FROM pg_namespace AS n WHERE n.nspname = v_schema;
    IF v_ns IS NULL THEN
        RAISE EXCEPTION 'ocr_lockdown: no current schema (search_path %)',
                        current_setting('search_path');
    END IF;

    SELECT string_agg(quote_ident(a.rolname), ', ' ORDER BY a.rolname) INTO v_api
    FROM pg_roles AS a WHERE a.rolname = ANY (coalesce(p_api_roles, '{}'));
    v_api := concat_ws(', ', 'PUBLIC', v_api);
    SELECT string_agg(quote_ident(a.rolname), ', ' ORDER BY a.rolname) INTO v_service
    FROM pg_roles AS a WHERE a.rolname = ANY (coalesce(p_service_roles, '{}'));

    -- Functions must pin their search_path: a function that resolves names
    -- through the caller's path can be pointed at objects the caller planted.
    SELECT string_agg(format('%s(%s)', p.proname, pg_get_function_identity_arguments(p.oid)),
                      ', ' ORDER BY p.proname)
    INTO v_unpinned
    FROM pg_proc AS p
    WHERE p.pronamespace = v_ns
      AND p.proname LIKE 'ocr\_%'
      AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) AS c(setting)
                      WHERE c.setting LIKE 'search\_path=%');
    IF v_unpinned IS NOT NULL THEN
        RAISE EXCEPTION 'ocr_lockdown: functions without a fixed search_path: %', v_unpinned
            USING HINT = 'declare them with SET search_path FROM CURRENT',
                  ERRCODE = 'invalid_function_definition';
    END IF;

    -- Tables: ours by name or prefix, the shared ones ocr-pool created, and the
    -- sequences they own. Pre-existing shared tables are not touched. (The record
    -- is read first: the loop below alters ocr_pool_created_tables itself.)
    SELECT coalesce(array_agg(t.relid::oid), '{}') INTO v_created
    FROM ocr_pool_created_tables AS t;
    FOR r IN
        SELECT c.oid, c.relname, c.relrowsecurity
        FROM pg_class AS c
        WHERE c.relnamespace = v_ns
          AND c.relkind IN ('r', 'p')
          AND (c.relname = 'ocr_pool_migrations'
               OR c.relname LIKE 'ocr\_%'
               -- a shared table only when ocr-pool created it
               OR (c.relname IN ('extraction_queue', 'extraction_status')
                   AND c.oid = ANY (v_created)))
        ORDER BY c.relname
    LOOP
        IF NOT r.relrowsecurity THEN
            EXECUTE format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', v_schema, r.relname);
        END IF;
        EXECUTE format('REVOKE ALL ON TABLE %I.%I FROM %s', v_schema, r.relname, v_api);
        IF v_service IS NOT NULL THEN
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %I.%I TO %s',
                           v_schema, r.relname, v_service);
        END IF;
        v_rels := v_rels || r.oid;
        object_type := 'table';
        object_name := r.relname;
        RETURN NEXT;
        FOR s IN
            SELECT sc.oid, sn.nspname, sc.relname
            FROM pg_depend AS d
            JOIN pg_class AS sc ON sc.oid = d.objid AND sc.relkind = 'S'
            JOIN pg_namespace AS sn ON sn.oid = sc.relnamespace
            WHERE d.classid = 'pg_class'::regclass
              AND d.refclassid = 'pg_class'::regclass
              AND d.refobjid = r.oid
              AND d.deptype IN ('a', 'i')
            ORDER BY sc.relname
        LOOP
            EXECUTE format('REVOKE ALL ON SEQUENCE %I.%I FROM %s', s.nspname, s.relname, v_api);
            IF v_service IS NOT NULL THEN
                EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %I.%I TO %s',
                               s.nspname, s.relname, v_service);
            END IF;
            v_rels := v_rels || s.oid;
            object_type := 'sequence';
            object_name := s.relname;
            RETURN NEXT;
        END LOOP;
    END LOOP;

    -- Views (dashboards): callers' own rights and RLS apply on Postgres 15+.
    FOR r IN
        SELECT c.oid, c.relname, c.relkind
        FROM pg_class AS c
        WHERE c.relnamespace = v_ns AND c.relkind IN ('v', 'm') AND c.relname LIKE 'ocr\_%'
        ORDER BY c.relname
    LOOP
        IF v_invoker AND r.relkind = 'v' THEN
            EXECUTE format('ALTER VIEW %I.%I SET (security_invoker = true)', v_schema, r.relname);
        END IF;
        EXECUTE format('REVOKE ALL ON TABLE %I.%I FROM %s', v_schema, r.relname, v_api);
        IF v_service IS NOT NULL THEN
            EXECUTE format('GRANT SELECT ON TABLE %I.%I TO %s', v_schema, r.relname, v_service);
        END IF;
        v_rels := v_rels || r.oid;
        object_type := 'view';
        object_name := r.relname;
        RETURN NEXT;
    END LOOP;

    -- Functions, whatever their signature (procedures and aggregates included).
    FOR r IN
        SELECT p.oid, p.proname, pg_get_function_identity_arguments(p.oid) AS args
        FROM pg_proc AS p
        WHERE p.pronamespace = v_ns AND p.proname LIKE 'ocr\_%'
        ORDER BY p.proname, 2
    LOOP
        EXECUTE format('REVOKE ALL ON ROUTINE %I.%I(%s) FROM %s',
                       v_schema, r.proname, r.args, v_api);
        IF v_service IS NOT NULL THEN
            -- The lockdown is the owner's tool (it alters tables): not the service key's.
            EXECUTE format(CASE WHEN r.proname = 'ocr_lockdown'
                                THEN 'REVOKE ALL ON ROUTINE %I.%I(%s) FROM %s'
                                ELSE 'GRANT EXECUTE ON ROUTINE %I.%I(%s) TO %s' END,
                           v_schema, r.proname, r.args, v_service);
        END IF;
        v_routines := v_routines || r.oid;
        object_type := 'function';
        object_name := format('%s(%s)', r.proname, r.args);
        RETURN NEXT;
    END LOOP;

    -- Check: nothing above may remain usable by PUBLIC or an API role, however
    -- it got there (another grantor's grant, an inherited membership, a column grant).
    SELECT string_agg(DISTINCT format('%s on %s', g.rolname, o.label), '; ')
    INTO v_leak
    FROM (SELECT 'public'::name AS rolname
          UNION ALL
          SELECT a.rolname FROM pg_roles AS a WHERE a.rolname = ANY (coalesce(p_api_roles, '{}'))
         ) AS g
    CROSS JOIN LATERAL (
        SELECT c.relname::text AS label
        FROM pg_class AS c
        WHERE c.oid = ANY (v_rels)
          AND CASE WHEN c.relkind = 'S'
                   THEN has_sequence_privilege(g.rolname, c.oid, 'USAGE, SELECT, UPDATE')
                   ELSE has_table_privilege(g.rolname, c.oid, 'DELETE, TRUNCATE, TRIGGER')
                        OR has_any_column_privilege(g.rolname, c.oid,
                                                    'SELECT, INSERT, UPDATE, REFERENCES')
              END
        UNION ALL
        SELECT format('%s(%s)', p.proname, pg_get_function_identity_arguments(p.oid))
        FROM pg_proc AS p
        WHERE p.oid = ANY (v_routines)
          AND has_function_privilege(g.rolname, p.oid, 'EXECUTE')
    ) AS o;
    IF v_leak IS NOT NULL THEN
        RAISE EXCEPTION 'ocr_lockdown: still usable after the lockdown: %', v_leak
            USING HINT = 'revoke the grant shown (as its grantor), or the role membership that carries it',
                  ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

COMMENT ON FUNCTION ocr_lockdown(text[], text[]) IS
    'Revokes from PUBLIC, anon and authenticated every privilege on ocr-pool tables '
    '(shared tables only if ocr-pool created them), sequences, views and functions, grants '
    'service_role what the pool uses, enables RLS and security_invoker views. Later '
    'migration steps end with SELECT * FROM ocr_lockdown().';

SELECT * FROM ocr_lockdown();
