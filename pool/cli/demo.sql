-- Statements of the demo set-up (pool/cli/demo.py), run on the server's admin database.

-- name: database_exists
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1);
