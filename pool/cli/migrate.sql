-- Statements of `ocr-pool migrate --create-database` (pool/cli/migrate.py), run on the
-- server's maintenance database `postgres`.

-- CREATE DATABASE takes no parameters: the server quotes the name itself.
-- name: create_database_statement
SELECT format('CREATE DATABASE %I', $1::text);
