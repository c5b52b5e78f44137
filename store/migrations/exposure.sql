-- What PUBLIC and the Supabase API roles can do on the shared tables
-- (`extraction_queue`, `extraction_status`), and the explicit lockdown of them
-- (`ocr-pool lockdown`). Everything works in the current schema (the runner pins
-- the search_path to the target schema).

-- name: set_search_path
SELECT set_config('search_path', $1, false);

-- name: created_record_exists
SELECT to_regclass(format('%I.ocr_pool_created_tables', current_schema())) IS NOT NULL;

-- The shared tables ocr-pool created (0001 records them as it creates them).
-- name: created_tables
SELECT relid::oid AS oid FROM ocr_pool_created_tables;

-- name: shared_tables
SELECT c.oid, c.relname::text AS name
FROM pg_class AS c
WHERE c.relnamespace = current_schema()::regnamespace
  AND c.relname IN ('extraction_queue', 'extraction_status')
  AND c.relkind IN ('r', 'p')
ORDER BY c.relname;

-- Per table ($1 oids) and grantee (PUBLIC, then the roles of $2 that exist, in
-- that order): the table privileges it has (its own, PUBLIC's, or a role's it
-- inherits), privileges it has on some columns only, row level security, the
-- table's policies and how many of them apply to the grantee.
-- name: access
WITH grantees AS (
    SELECT 0::bigint AS ord, 'PUBLIC'::text AS grantee, 'public'::text AS probe, 0::oid AS role_oid
    UNION ALL
    SELECT o.ord, r.rolname::text, r.rolname::text, r.oid
    FROM unnest($2::text[]) WITH ORDINALITY AS o(name, ord)
    JOIN pg_roles AS r ON r.rolname = o.name
),
kinds AS (
    SELECT k.name, k.n
    FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'])
         WITH ORDINALITY AS k(name, n)
)
SELECT c.relname::text AS table_name,
       g.grantee,
       ARRAY(SELECT k.name FROM kinds AS k
             WHERE has_table_privilege(g.probe, c.oid, k.name) ORDER BY k.n) AS privileges,
       ARRAY(SELECT k.name FROM kinds AS k
             WHERE k.name IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')
               AND has_any_column_privilege(g.probe, c.oid, k.name)
               AND NOT has_table_privilege(g.probe, c.oid, k.name)
             ORDER BY k.n) AS column_privileges,
       c.relrowsecurity AS rls,
       (SELECT count(*) FROM pg_policy AS pol WHERE pol.polrelid = c.oid)::int AS policies,
       (SELECT count(*) FROM pg_policy AS pol
        WHERE pol.polrelid = c.oid
          AND EXISTS (SELECT 1 FROM unnest(pol.polroles) AS pr(role_oid)
                      WHERE pr.role_oid = 0
                         OR (g.role_oid <> 0 AND pg_has_role(g.role_oid, pr.role_oid, 'USAGE')))
       )::int AS role_policies
FROM pg_class AS c
CROSS JOIN grantees AS g
WHERE c.oid = ANY ($1::oid[])
ORDER BY c.relname, g.ord;

-- ocr-pool's own objects that PUBLIC or an API role ($2) can still use: the
-- ledger, every ocr_* table, view and function, the sequences of those tables,
-- and the shared tables ocr-pool created ($1).
-- name: own_exposure
WITH grantees AS (
    SELECT 'PUBLIC'::text AS grantee, 'public'::text AS probe
    UNION ALL
    SELECT r.rolname::text, r.rolname::text FROM pg_roles AS r WHERE r.rolname = ANY ($2::text[])
),
own_relations AS (
    SELECT c.oid FROM pg_class AS c
    WHERE c.relnamespace = current_schema()::regnamespace
      AND c.relkind IN ('r', 'p', 'v', 'm')
      AND (c.relname = 'ocr_pool_migrations' OR c.relname LIKE 'ocr\_%'
           OR c.oid = ANY ($1::oid[]))
),
owned AS (
    SELECT oid FROM own_relations
    UNION
    SELECT d.objid FROM pg_depend AS d
    JOIN pg_class AS s ON s.oid = d.objid AND s.relkind = 'S'
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.refobjid IN (SELECT oid FROM own_relations) AND d.deptype IN ('a', 'i')
)
SELECT g.grantee, o.object_name
FROM grantees AS g
CROSS JOIN LATERAL (
    SELECT c.relname::text AS object_name
    FROM pg_class AS c
    WHERE c.oid IN (SELECT oid FROM owned)
      AND CASE WHEN c.relkind = 'S'
               THEN has_sequence_privilege(g.probe, c.oid, 'USAGE, SELECT, UPDATE')
               ELSE has_table_privilege(g.probe, c.oid, 'DELETE, TRUNCATE, TRIGGER')
                    OR has_any_column_privilege(g.probe, c.oid, 'SELECT, INSERT, UPDATE, REFERENCES')
          END
    UNION ALL
    SELECT format('%s(%s)', p.proname, pg_get_function_identity_arguments(p.oid))
    FROM pg_proc AS p
    WHERE p.pronamespace = current_schema()::regnamespace
      AND p.proname LIKE 'ocr\_%'
      AND has_function_privilege(g.probe, p.oid, 'EXECUTE')
) AS o
ORDER BY 1, 2;

-- The statements that lock one shared table ($1) down, as ocr_lockdown() does
-- ocr-pool's own: row level security on (only where it is off: it takes an
-- ACCESS EXCLUSIVE lock), every privilege of PUBLIC and the API roles ($2)
-- revoked, DML granted to the service roles ($3), likewise for the sequences
-- the table owns. Policies are not touched. Roles that do not exist are skipped.
-- name: lockdown_statements
WITH t AS (
    SELECT c.oid, n.nspname, c.relname, c.relrowsecurity
    FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.oid = $1
),
api AS (
    SELECT concat_ws(', ', 'PUBLIC', string_agg(quote_ident(r.rolname), ', ' ORDER BY r.rolname))
           AS list
    FROM pg_roles AS r WHERE r.rolname = ANY ($2::text[])
),
service AS (
    SELECT string_agg(quote_ident(r.rolname), ', ' ORDER BY r.rolname) AS list
    FROM pg_roles AS r WHERE r.rolname = ANY ($3::text[])
),
sequences AS (
    SELECT sn.nspname, s.relname
    FROM pg_depend AS d
    JOIN pg_class AS s ON s.oid = d.objid AND s.relkind = 'S'
    JOIN pg_namespace AS sn ON sn.oid = s.relnamespace
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.refobjid = $1 AND d.deptype IN ('a', 'i')
)
SELECT x.statement
FROM (
    SELECT 1 AS ord, format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', t.nspname, t.relname)
           AS statement
    FROM t WHERE NOT t.relrowsecurity
    UNION ALL
    SELECT 2, format('REVOKE ALL ON TABLE %I.%I FROM %s', t.nspname, t.relname, api.list)
    FROM t, api
    UNION ALL
    SELECT 3, format('GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %I.%I TO %s',
                     t.nspname, t.relname, service.list)
    FROM t, service WHERE service.list IS NOT NULL
    UNION ALL
    SELECT 4, format('REVOKE ALL ON SEQUENCE %I.%I FROM %s', s.nspname, s.relname, api.list)
    FROM sequences AS s, api
    UNION ALL
    SELECT 5, format('GRANT USAGE, SELECT ON SEQUENCE %I.%I TO %s',
                     s.nspname, s.relname, service.list)
    FROM sequences AS s, service WHERE service.list IS NOT NULL
) AS x
ORDER BY x.ord, x.statement;

-- name: lockdown_installed
SELECT to_regprocedure(format('%I.ocr_lockdown(text[], text[])', current_schema())) IS NOT NULL;

-- name: lockdown_own
SELECT object_type, object_name FROM ocr_lockdown($1::text[], $2::text[]);
