-- 0003: views for the Supabase SQL editor and dashboards, and the stats function
-- behind `ocr-pool status` (same figures, callable through PostgREST rpc).

-- One row per source. Times in seconds; "today" follows the session time zone.
CREATE OR REPLACE VIEW ocr_queue_stats AS
WITH sources AS (
    SELECT unnest(ARRAY['index', 'acte']) AS document_source
),
live AS (
    SELECT q.document_source,
           count(*) FILTER (WHERE q.status_id = 3
                              AND coalesce(q.ocr_attempts, 0) < coalesce(q.ocr_max_attempts, 3)) AS pending,
           count(*) FILTER (WHERE q.status_id = 6) AS in_progress,
           count(*) FILTER (WHERE q.status_id = 4 AND q.ocr_last_error_at IS NOT NULL) AS failed,
           avg(extract(epoch FROM now() - q.created_at)) FILTER (WHERE q.status_id = 3) AS avg_wait_seconds,
           max(extract(epoch FROM now() - q.created_at)) FILTER (WHERE q.status_id = 3) AS oldest_pending_seconds
    FROM extraction_queue AS q
    WHERE q.status_id IN (3, 4, 6)
      AND q.document_source IN ('index', 'acte')
    GROUP BY q.document_source
),
done AS (
    SELECT q.document_source,
           count(*) FILTER (WHERE q.ocr_completed_at >= date_trunc('day', now())) AS completed_today,
           count(*) FILTER (WHERE q.ocr_completed_at >= now() - interval '1 hour') AS completed_last_hour,
           percentile_cont(0.5) WITHIN GROUP (
               ORDER BY extract(epoch FROM q.ocr_completed_at - q.ocr_started_at)) AS p50_processing_seconds,
           percentile_cont(0.95) WITHIN GROUP (
               ORDER BY extract(epoch FROM q.ocr_completed_at - q.ocr_started_at)) AS p95_processing_seconds
    FROM extraction_queue AS q
    WHERE q.status_id = 5
      AND q.ocr_completed_at >= least(date_trunc('day', now()), now() - interval '24 hours')
      AND q.document_source IN ('index', 'acte')
    GROUP BY q.document_source
)
SELECT s.document_source::text                         AS document_source,
       coalesce(l.pending, 0)::bigint                  AS pending,
       coalesce(l.in_progress, 0)::bigint              AS in_progress,
       coalesce(l.failed, 0)::bigint                   AS failed,
       coalesce(d.completed_today, 0)::bigint          AS completed_today,
       coalesce(d.completed_last_hour, 0)::bigint      AS completed_last_hour,
       round(l.avg_wait_seconds::numeric, 1)::double precision       AS avg_wait_seconds,
       round(l.oldest_pending_seconds::numeric, 1)::double precision AS oldest_pending_seconds,
       round(d.p50_processing_seconds::numeric, 3)::double precision AS p50_processing_seconds,
       round(d.p95_processing_seconds::numeric, 3)::double precision AS p95_processing_seconds
FROM sources AS s
LEFT JOIN live AS l USING (document_source)
LEFT JOIN done AS d USING (document_source);

COMMENT ON VIEW ocr_queue_stats IS
    'OCR queue per source: pending, in progress, failed, completed today / last hour, '
    'average and oldest wait of pending rows, p50/p95 processing time over the last 24 h (seconds).';

-- The most recent OCR errors, newest first (rows still retrying and rows at 4).
CREATE OR REPLACE VIEW ocr_recent_errors AS
SELECT q.id,
       q.document_source::text AS document_source,
       q.status_id,
       q.supabase_path,
       q.ocr_attempts,
       q.ocr_max_attempts,
       q.ocr_error,
       q.ocr_last_error_at,
       q.ocr_worker_id
FROM extraction_queue AS q
WHERE q.ocr_last_error_at IS NOT NULL
  AND q.status_id IN (3, 4, 6)
  AND q.document_source IN ('index', 'acte')
ORDER BY q.ocr_last_error_at DESC
LIMIT 200;

-- Completions per hour and source over the last two days, for charts.
CREATE OR REPLACE VIEW ocr_hourly_throughput AS
SELECT date_trunc('hour', q.ocr_completed_at) AS hour,
       q.document_source::text                AS document_source,
       count(*)::bigint                       AS completed,
       round(avg(extract(epoch FROM q.ocr_completed_at - q.ocr_started_at))::numeric, 3)::double precision
           AS avg_processing_seconds
FROM extraction_queue AS q
WHERE q.status_id = 5
  AND q.ocr_completed_at >= now() - interval '48 hours'
  AND q.document_source IN ('index', 'acte')
GROUP BY 1, 2
ORDER BY 1 DESC, 2;

CREATE OR REPLACE FUNCTION ocr_queue_stats()
RETURNS SETOF ocr_queue_stats
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT * FROM ocr_queue_stats;
$$;
