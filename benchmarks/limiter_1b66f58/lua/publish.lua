-- Gemini limiter: refresh the inspection keys of every model seen (gemini:rpm:current,
-- gemini:tpm:current and the per-model numbers), reap stale gemini:workers fields, and
-- return the fleet's state as JSON (for `ocr-pool status`). Run about once a second by
-- every pool, and by `status`; the numbers are also refreshed by every grant and reconcile.
--
-- ARGV[1] prefix   ARGV[2] window (us, for models whose limiter never said)
-- ARGV[3] quota day offset (s)   ARGV[4] ceiling recovery per window (alpha)
-- Returns a JSON object: {now_us, epoch, fence_us, workers, models: [...]}

local prefix = ARGV[1]
local default_window = whole(ARGV[2], 'window', 1000, 1e12)
local offset = whole(ARGV[3], 'day offset', -86400, 86400)
local alpha = tonumber(ARGV[4]) or 0

local F = fleet_keys(prefix)
local now = now_us()
reap_workers(F, now)

local models = redis.call('SMEMBERS', F.models)
table.sort(models)
local out, total_rpm, total_tpm = {}, 0, 0
for _, model in ipairs(models) do
  local K = model_keys(prefix, model)
  local window = tonumber(redis.call('HGET', K.state, 'window_us')) or default_window
  prune_grants(K, now, window)
  prune_tickets(K, now)
  local count, tpm, rpd = publish_model(K, F, now, offset)
  total_rpm = total_rpm + count
  total_tpm = total_tpm + tpm
  local s = redis.call('HMGET', K.state, 'rpm_limit', 'tpm_limit', 'rpd_limit')
  local st = redis.call('HGETALL', K.stats)
  local stats = {}
  for i = 1, #st, 2 do stats[st[i]] = tonumber(st[i + 1]) end
  out[#out + 1] = {
    model = model, window_us = window, rpm = count, tpm = tpm, rpd = rpd,
    rpm_limit = tonumber(s[1]), tpm_limit = tonumber(s[2]), rpd_limit = tonumber(s[3]),
    factor = ceiling(K, now, window, alpha),
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
