-- Gemini limiter: withdraw a waiting ticket (its waiter was cancelled or gave up),
-- so the tickets behind it stop leaving room for it.
--
-- ARGV[1] prefix   ARGV[2] model   ARGV[3] ticket id   ARGV[4] worker id ('' = none)
-- ARGV[5] worker ttl (us)
-- Returns 1 if the ticket was still queued, else 0.

local prefix = ARGV[1]
local model = check_name(ARGV[2], 'model')
local ticket = check_name(ARGV[3], 'ticket')
local worker, worker_ttl = ARGV[4], whole(ARGV[5], 'worker ttl', 1000, 1e12)

local K = model_keys(prefix, model)
local F = fleet_keys(prefix)
local queued = redis.call('ZSCORE', K.tickets, ticket) and 1 or 0
remove_ticket(K, ticket)
touch_worker(F, worker, model, 'idle', now_us(), worker_ttl)
return queued
