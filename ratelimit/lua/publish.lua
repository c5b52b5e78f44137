-- Gemini limiter: refresh the inspection keys of every model seen (gemini:rpm:current,
-- gemini:tpm:current and the per-model numbers), reap stale gemini:workers fields, and
-- return the fleet's state as JSON (for `ocr-pool status`). Run about once a second by
-- every pool, and by `status`: the only writer of the inspection keys and the only
-- reaper, so grants and settlements do none of it.
--
-- ARGV[1] prefix   ARGV[2] window (us, for models whose limiter never said)
-- ARGV[3] quota day offset (s)   ARGV[4] ceiling recovery per window (alpha)
-- ARGV[5] worker ttl (us)        ARGV[6..] settlements, then estimate counters (settle_all
--   in window.lua: the sums of the reconciles acquire carried)
-- Returns a JSON object: {now_us, epoch, fence_ms, workers, models: [...]}

local prefix = ARGV[1]
local default_window = whole(ARGV[2], 'window', 1000, 1e12)
local offset = whole(ARGV[3], 'day offset', -86400, 86400)
local alpha = tonumber(ARGV[4]) or 0
local worker_ttl = whole(ARGV[5], 'worker ttl', 1000, 1e12)

local F = fleet_keys(prefix)
local now = now_us()
settle_all(prefix, 6, now, default_window, offset, worker_ttl)
reap_workers(F, now)

local models = redis.call('SMEMBERS', F.models)
table.sort(models)
local out, total_rpm, total_tpm = {}, 0, 0
for _, model in ipairs(models) do
  local K = model_keys(prefix, model)
  local s = redis.call('HMGET', K.state, 'rpm_limit', 'tpm_limit', 'rpd_limit', 'window_us',
    'tpm', 'factor', 'factor_at')
  local window = tonumber(s[4]) or default_window
  local tpm = prune_grants(K, now, window, tonumber(s[5]) or 0)
  prune_tickets(K, now)
  local count, _, rpd = publish_model(K, current_keys(prefix, model), now, offset, tpm)
  total_rpm = total_rpm + count
  total_tpm = total_tpm + tpm
  local st = redis.call('HGETALL', K.stats)
  local stats = {}
  for i = 1, #st, 2 do stats[st[i]] = tonumber(st[i + 1]) end
  out[#out + 1] = {
    model = model, window_us = window, rpm = count, tpm = tpm, rpd = rpd,
    rpm_limit = tonumber(s[1]), tpm_limit = tonumber(s[2]), rpd_limit = tonumber(s[3]),
    factor = ceiling_of(s[6], s[7], now, window, alpha),
    waiting = redis.call('ZCARD', K.tickets),
    cooldown_ms = math.max(redis.call('PTTL', K.cooldown), 0),
    cooldown_reason = redis.call('GET', K.cooldown) or '',
    stats = stats,
  }
end
redis.call('SET', F.rpm, total_rpm)
redis.call('SET', F.tpm, int(total_tpm))

local fence = tonumber(redis.call('HGET', F.epoch, 'fence_until')) or 0
return cjson.encode({
  now_us = int(now), epoch = redis.call('HGET', F.epoch, 'id') or '',
  fence_ms = math.max(0, math.floor((fence - now) / 1000)),
  workers = redis.call('HLEN', F.workers), models = out,
})
