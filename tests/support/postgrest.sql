-- Introspection for the PostgREST stand-in (tests/support/postgrest.py).

-- name: signature
SELECT p.proretset AS returns_set,
       p.prorettype = 'void'::regtype AS returns_void,
       coalesce(array_agg(a.name ORDER BY a.ord) FILTER (WHERE a.name IS NOT NULL), '{}') AS arg_names,
       coalesce(array_agg(format_type(a.type, NULL) ORDER BY a.ord)
                FILTER (WHERE a.name IS NOT NULL), '{}') AS arg_types
FROM pg_proc AS p
JOIN pg_namespace AS n ON n.oid = p.pronamespace
LEFT JOIN LATERAL unnest(p.proargnames[1:p.pronargs], p.proargtypes::oid[])
          WITH ORDINALITY AS a(name, type, ord) ON true
WHERE n.nspname = $1 AND p.proname = $2
GROUP BY p.oid, p.proretset, p.prorettype;

-- Become the API key's role for the rest of the session (PostgREST does the same
-- per request, with set_config('role', ..., true) inside its transaction).
-- name: become
SELECT set_config('role', $1, false);
