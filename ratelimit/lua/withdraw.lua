-- Gemini limiter: withdraw a waiter that was cancelled or gave up: its ticket leaves the
-- queue (the tickets behind it stop leaving room for it), and a grant it was given but
-- never got to use (the reply was lost to the cancellation, or it was waiting for the
-- moment it could send) is taken back, like a refund.
--
-- ARGV[1] prefix   ARGV[2] model   ARGV[3] ticket id   ARGV[4] tokens it asked for
-- ARGV[5] worker id ('' = none)     ARGV[6] worker ttl (us)
-- Returns {ticket was queued (1/0), grant was taken back (1/0)}.

local prefix = ARGV[1]
local model = check_name(ARGV[2], 'model')
local tokens = whole(ARGV[4], 'tokens', 0, 1e12)
local mine = member(check_name(ARGV[3], 'ticket'), tokens)
local worker, worker_ttl = ARGV[5], whole(ARGV[6], 'worker ttl', 1000, 1e12)

local K = model_keys(prefix, model)
local F = fleet_keys(prefix)
local now = now_us()
local queued = redis.call('ZSCORE', K.tickets, mine) and 1 or 0
remove_ticket(K, mine)
local granted = redis.call('ZREM', K.grants, mine)
if granted == 1 then
  -- granted moments ago: it was counted in the state's current day
  local s = redis.call('HMGET', K.state, 'tpm', 'day_count')
  redis.call('HSET', K.state, 'tpm', int(math.max(0, (tonumber(s[1]) or 0) - tokens)))
  if (tonumber(s[2]) or 0) > 0 then redis.call('HINCRBY', K.state, 'day_count', -1) end
  redis.call('HINCRBY', K.stats, 'refunds', 1)
end
touch_worker(F, worker, model, 'idle', now, now, worker_ttl)
return { queued, granted }
