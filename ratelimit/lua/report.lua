-- Gemini limiter: report a 429 (RESOURCE_EXHAUSTED) for a model.
-- Sets the fleet cooldown (every waiter of every pool sees it before any grant) for the
-- server's RetryInfo.retryDelay, or until the quota's daily reset for a per-day quota;
-- never shortens a cooldown already running. Lowers the adaptive ceiling unless the 429
-- names its quota (QuotaFailure quotaId: requests or input tokens) and the fleet used less
-- than `own_share` of its ceiling in that quota: that is someone else's traffic on a
-- shared quota, and the cooldown is all it needs (ratelimit/policy.py: after_429).
-- Lowered once per "round": a 429 for a request granted before the last decrease does
-- not lower it again.
--
-- ARGV[1] prefix   ARGV[2] model   ARGV[3] delay (ms)   ARGV[4] per day (1/0)
-- ARGV[5] grant time of the request that got the 429 (us; 0 = unknown, counts as new)
-- ARGV[6] reason (short text)      ARGV[7] decrease factor (beta, 0..1)
-- ARGV[8] lowest factor            ARGV[9] recovery per window (alpha)
-- ARGV[10] window (us)             ARGV[11] quota day offset (s)
-- ARGV[12] dimension the quota names: requests | tokens | '' (unknown: either)
-- ARGV[13] share of the ceiling at which a 429 is ours   ARGV[14] worker ttl (us)
-- ARGV[15..] settlements, then estimate counters (settle_all in window.lua)
-- Returns {cooldown ms, factor (string), lowered (1/0), share of the ceiling used (string)}

local prefix = ARGV[1]
local model = check_name(ARGV[2], 'model')
local delay = whole(ARGV[3], 'delay (ms)', 0, 7 * 86400 * 1000)
local per_day = ARGV[4] == '1'
local granted_at = whole(ARGV[5], 'grant time', 0, 1e17)
local reason = ARGV[6]
local beta, floor_f, alpha = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local window = whole(ARGV[10], 'window', 1000, 1e12)
local offset = whole(ARGV[11], 'day offset', -86400, 86400)
local dimension = ARGV[12]
local own_share = tonumber(ARGV[13])
local worker_ttl = whole(ARGV[14], 'worker ttl', 1000, 1e12)

local K = model_keys(prefix, model)
local F = fleet_keys(prefix)
local now = now_us()
settle_all(prefix, 15, now, window, offset, worker_ttl)
redis.call('SADD', F.models, model)

if per_day then
  delay = math.ceil((next_day_us(day_of(now, offset), offset) - now) / 1000)
  redis.call('HINCRBY', K.stats, 'daily_quota_errors', 1)
end
redis.call('HINCRBY', K.stats, 'quota_errors', 1)
if delay > 0 and redis.call('PTTL', K.cooldown) < delay then
  redis.call('SET', K.cooldown, reason, 'PX', int(delay))
end

local s = redis.call('HMGET', K.state, 'rpm_limit', 'tpm_limit', 'tpm', 'factor', 'factor_at',
  'decreased_at')
local f = ceiling_of(s[4], s[5], now, window, alpha)
local tpm = prune_grants(K, now, window, tonumber(s[3]) or 0)
local count = redis.call('ZCARD', K.grants)
local share = 1.0  -- limits never said (no acquire yet): assume ours
local rpm_limit, tpm_limit = tonumber(s[1]), tonumber(s[2])
if rpm_limit and tpm_limit then
  local by_requests = count / math.max(1, math.floor(rpm_limit * f))
  local by_tokens = tpm / math.max(1, math.floor(tpm_limit * f))
  if dimension == 'requests' then share = by_requests
  elseif dimension == 'tokens' then share = by_tokens
  else share = math.max(by_requests, by_tokens) end
end
local foreign = dimension ~= '' and share < own_share

local lowered = 0
local last = tonumber(s[6]) or 0
if not per_day and not foreign and (granted_at == 0 or granted_at > last) then
  f = math.max(floor_f, f * beta)
  lowered = 1
  redis.call('HSET', K.state, 'factor', string.format('%.6f', f), 'factor_at', int(now),
    'decreased_at', int(now))
  redis.call('HINCRBY', K.stats, 'ceiling_decreases', 1)
elseif not per_day and foreign then
  redis.call('HINCRBY', K.stats, 'foreign_quota_errors', 1)
end
redis.call('PEXPIRE', K.state, STATE_KEEP_MS)
return { math.max(redis.call('PTTL', K.cooldown), 0), string.format('%.6f', f), lowered,
  string.format('%.4f', share) }
