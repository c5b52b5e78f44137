-- Gemini limiter: reconcile or refund one grant after its call.
-- Reconcile replaces the grant's estimated tokens by the tokens the API counted
-- (usage_metadata.prompt_token_count); refund (actual = -1) removes the grant from the
-- window and from today's count, for a call that never went out.
--
-- ARGV[1] prefix     ARGV[2] model       ARGV[3] grant id    ARGV[4] actual tokens (-1 = refund)
-- ARGV[5] estimate   ARGV[6] window (us) ARGV[7] quota day offset (s)
-- ARGV[8] worker id ('' = none)          ARGV[9] worker ttl (us)
-- Returns {found (1/0), requests in window, tokens in window}

local prefix = ARGV[1]
local model = check_name(ARGV[2], 'model')
local grant = check_name(ARGV[3], 'grant')
local actual = whole(ARGV[4], 'actual tokens', -1, 1e12)
local estimate = whole(ARGV[5], 'estimate', 0, 1e12)
local window = whole(ARGV[6], 'window', 1000, 1e12)
local offset = whole(ARGV[7], 'day offset', -86400, 86400)
local worker, worker_ttl = ARGV[8], whole(ARGV[9], 'worker ttl', 1000, 1e12)

local K = model_keys(prefix, model)
local F = fleet_keys(prefix)
local now = now_us()
prune_grants(K, now, window)

local found = 0
local granted_at = tonumber(redis.call('ZSCORE', K.grants, grant))
if granted_at then
  found = 1
  local old = tonumber(redis.call('HGET', K.tokens, grant)) or 0
  if actual < 0 then
    redis.call('ZREM', K.grants, grant)
    redis.call('HDEL', K.tokens, grant)
    redis.call('HINCRBY', K.state, 'tpm', -old)
    local used_today, today = day_count(K, now, offset)
    if day_of(granted_at, offset) == today and used_today > 0 then
      redis.call('HINCRBY', K.state, 'day_count', -1)
    end
  else
    redis.call('HSET', K.tokens, grant, int(actual))
    redis.call('HINCRBY', K.state, 'tpm', int(actual - old))
  end
end

if actual < 0 then
  redis.call('HINCRBY', K.stats, 'refunds', 1)
else
  local err = actual - estimate
  if err < 0 then err = -err end
  redis.call('HINCRBY', K.stats, 'reconciled', 1)
  redis.call('HINCRBY', K.stats, 'estimated_tokens', int(estimate))
  redis.call('HINCRBY', K.stats, 'actual_tokens', int(actual))
  redis.call('HINCRBY', K.stats, 'abs_error_tokens', int(err))
end

local count, tpm = publish_model(K, F, now, offset)
touch_worker(F, worker, model, 'idle', now, worker_ttl)
return { found, count, int(tpm) }
