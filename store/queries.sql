-- Queue operations of the direct-Postgres adapter: each is one call of a SQL
-- function from migrations/0002–0009 (the Supabase adapter calls the same
-- functions through PostgREST rpc). The lease's own calls (heartbeat, complete,
-- fail, release, the reaper) are 0009's, which survive an outage of the database.

-- name: ping
SELECT 1;

-- name: claim
SELECT * FROM ocr_claim(p_worker => $1, p_source => $2, p_lease_seconds => $3);

-- name: heartbeat
SELECT ocr_lease_renew(p_id => $1, p_worker => $2, p_lease_token => $3, p_lease_seconds => $4);

-- name: complete
SELECT ocr_lease_complete(p_id => $1, p_worker => $2, p_lease_token => $3,
                          p_file_content => $4, p_boosted_file_content => $5,
                          p_file_content_json => $6::jsonb);

-- name: fail
SELECT ocr_lease_fail(p_id => $1, p_worker => $2, p_lease_token => $3, p_error => $4,
                      p_retryable => $5, p_retry_delay_seconds => $6, p_attempt => $7);

-- name: release
SELECT ocr_lease_release(p_id => $1, p_worker => $2, p_lease_token => $3);

-- name: recover_expired
SELECT * FROM ocr_lease_reap(p_limit => $1);

-- name: note_outage
SELECT ocr_note_outage(p_seconds => $1, p_reporter => $2);

-- name: requeue_failed
SELECT ocr_requeue_failed(p_source => $1);

-- name: composition
SELECT * FROM ocr_queue_composition();

-- name: stats
SELECT * FROM ocr_queue_stats();

-- name: enqueue
SELECT * FROM ocr_enqueue(p_source => $1, p_paths => $2, p_priorities => $3,
                          p_max_attempts => $4);

-- name: cache_get
SELECT * FROM ocr_cache_fetch(p_sha256 => $1, p_pipeline => $2);

-- name: cache_put
SELECT ocr_cache_store(p_sha256 => $1, p_pipeline => $2, p_file_content => $3,
                       p_boosted_file_content => $4, p_file_content_json => $5::jsonb);

-- name: record_allocation
SELECT ocr_record_allocation(p_pool_id => $1, p_server_id => $2, p_pool_size => $3,
                             p_index_workers => $4, p_acte_workers => $5,
                             p_index_waiting => $6, p_acte_waiting => $7,
                             p_index_seconds => $8, p_acte_seconds => $9, p_reason => $10);

-- name: gemini_day_usage_merge
SELECT model, requests
FROM ocr_gemini_day_usage_merge(p_quota_day => $1, p_models => $2, p_requests => $3);
