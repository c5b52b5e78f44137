-- Gemini limiter: report a 429 (RESOURCE_EXHAUSTED) for a model.
-- Sets the fleet cooldown (every waiter of every pool sees it before any grant) for the
-- server's RetryInfo.retryDelay, or until the quota's daily reset for a per-day quota;
-- never shortens a cooldown already running. Lowers the adaptive ceiling once per
-- "round": a 429 for a request granted before the last decrease does not lower it again.
--
-- ARGV[1] prefix   ARGV[2] model   ARGV[3] delay (ms)   ARGV[4] per day (1/0)
-- ARGV[5] grant time of the request that got the 429 (us; 0 = unknown, counts as new)
-- ARGV[6] reason (short text)      ARGV[7] decrease factor (beta, 0..1)
-- ARGV[8] lowest factor            ARGV[9] recovery per window (alpha)
-- ARGV[10] window (us)             ARGV[11] quota day offset (s)
-- Returns {cooldown ms, factor (string), lowered (1/0)}

local prefix = ARGV[1]
local model = check_name(ARGV[2], 'model')
local delay = whole(ARGV[3], 'delay (ms)', 0, 7 * 86400 * 1000)
local per_day = ARGV[4] == '1'
local granted_at = whole(ARGV[5], 'grant time', 0, 1e17)
local reason = ARGV[6]
local beta, floor_f, alpha = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local window = whole(ARGV[10], 'window', 1000, 1e12)
local offset = whole(ARGV[11], 'day offset', -86400, 86400)

local K = model_keys(prefix, model)
local F = fleet_keys(prefix)
local now = now_us()
redis.call('SADD', F.models, model)

if per_day then
  delay = math.ceil((next_day_us(day_of(now, offset), offset) - now) / 1000)
  redis.call('HINCRBY', K.stats, 'daily_quota_errors', 1)
end
redis.call('HINCRBY', K.stats, 'quota_errors', 1)
if delay > 0 and redis.call('PTTL', K.cooldown) < delay then
  redis.call('SET', K.cooldown, reason, 'PX', int(delay))
end

local f = ceiling(K, now, window, alpha)
local lowered = 0
local last = tonumber(redis.call('HGET', K.state, 'decreased_at')) or 0
if not per_day and (granted_at == 0 or granted_at > last) then
  f = math.max(floor_f, f * beta)
  lowered = 1
  redis.call('HSET', K.state, 'factor', string.format('%.6f', f), 'factor_at', int(now),
    'decreased_at', int(now))
  redis.call('HINCRBY', K.stats, 'ceiling_decreases', 1)
end
redis.call('PEXPIRE', K.state, STATE_KEEP_MS)
return { math.max(redis.call('PTTL', K.cooldown), 0), string.format('%.6f', f), lowered }
