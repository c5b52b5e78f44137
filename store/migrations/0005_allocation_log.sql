-- 0005: every allocation decision of every pool, so dashboards can chart how
-- workers were divided between index and acte over time (view ocr_allocation_recent).
--
-- Written by the pool manager through `ocr_record_allocation` at start and at each
-- rebalance, into every queue database the pool serves. Idempotent.

CREATE TABLE IF NOT EXISTS ocr_pool_allocations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    decided_at      timestamptz      NOT NULL DEFAULT now(),
    pool_id         text             NOT NULL,
    server_id       text             NOT NULL,
    pool_size       integer          NOT NULL CHECK (pool_size >= 1),
    index_workers   integer          NOT NULL CHECK (index_workers >= 0),
    acte_workers    integer          NOT NULL CHECK (acte_workers >= 0),
    index_waiting   integer          NOT NULL DEFAULT 0,
    acte_waiting    integer          NOT NULL DEFAULT 0,
    index_seconds   double precision,
    acte_seconds    double precision,
    reason          text             NOT NULL DEFAULT ''
);

CREATE INDEX IF NOT EXISTS ocr_pool_allocations_decided_at_idx
    ON ocr_pool_allocations (decided_at);

COMMENT ON TABLE ocr_pool_allocations IS
    'Allocation decisions of ocr-pool pool managers (workers per type, the demand behind them).';

-- Service role (bypasses RLS) and the owner only; never the anon key.
ALTER TABLE ocr_pool_allocations ENABLE ROW LEVEL SECURITY;

CREATE OR REPLACE FUNCTION ocr_record_allocation(
    p_pool_id       text,
    p_server_id     text,
    p_pool_size     integer,
    p_index_workers integer,
    p_acte_workers  integer,
    p_index_waiting integer DEFAULT 0,
    p_acte_waiting  integer DEFAULT 0,
    p_index_seconds double precision DEFAULT NULL,
    p_acte_seconds  double precision DEFAULT NULL,
    p_reason        text DEFAULT ''
)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF p_index_workers + p_acte_workers <> p_pool_size THEN
        RAISE EXCEPTION 'index + acte workers (% + %) must equal the pool size (%)',
                        p_index_workers, p_acte_workers, p_pool_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A lost decision row in a crash costs nothing: no WAL flush wait.
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO ocr_pool_allocations (pool_id, server_id, pool_size, index_workers,
                                      acte_workers, index_waiting, acte_waiting,
                                      index_seconds, acte_seconds, reason)
    VALUES (left(p_pool_id, 200), left(p_server_id, 200), p_pool_size, p_index_workers,
            p_acte_workers, coalesce(p_index_waiting, 0), coalesce(p_acte_waiting, 0),
            p_index_seconds, p_acte_seconds, left(coalesce(p_reason, ''), 500));
    -- Keep 90 days.
    DELETE FROM ocr_pool_allocations WHERE decided_at < now() - interval '90 days';
END
$$;

-- The last 24 h, one row per decision, ready for a Supabase chart.
CREATE OR REPLACE VIEW ocr_allocation_recent AS
SELECT decided_at, pool_id, server_id, pool_size, index_workers, acte_workers,
       index_waiting, acte_waiting, index_seconds, acte_seconds, reason
FROM ocr_pool_allocations
WHERE decided_at > now() - interval '24 hours'
ORDER BY decided_at;
