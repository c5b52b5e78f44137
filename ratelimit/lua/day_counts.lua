-- Gemini limiter: the day's request counts, read and raised, for a caller that keeps
-- them where a Redis restart cannot lose them (the pool: its queue database).
-- A Redis without persistence forgets gemini:model:<m>:state day_count when it
-- restarts; this script is how the count is read out and put back.
--
-- ARGV[1] prefix   ARGV[2] quota day offset (s from UTC)
-- ARGV[3..] zero or more triples: model, quota day (days since 1970-01-01 in the quota's
--           time zone), count. If the quota day is today (Redis TIME), the model's count
--           for today becomes max(current, count); a triple for any other day changes
--           nothing, so a count from yesterday never lands in today. Never lowers a count.
-- Returns {epoch ('' when none: Redis came back empty and nobody acquired since), today,
--          model, quota day, count, model, quota day, count, ...}: after the raises, every
--          model seen (gemini:models) whose state holds a day, with that day and its count
--          (an earlier day when nothing was granted since that day ended).

local prefix = ARGV[1]
local offset = whole(ARGV[2], 'day offset', -86400, 86400)
if (#ARGV - 2) % 3 ~= 0 then
  error('gemini limiter: day counts take triples of model, quota day, count')
end

local F = fleet_keys(prefix)
local now = now_us()
local today = day_of(now, offset)

local i = 3
while i <= #ARGV do
  local model = check_name(ARGV[i], 'model')
  local day = whole(ARGV[i + 1], 'quota day', 0, 1e7)
  local count = whole(ARGV[i + 2], 'count', 0, 1e12)
  if day == today and count > 0 then
    local K = model_keys(prefix, model)
    local used = day_count(K, now, offset)
    if count > used then
      redis.call('HSET', K.state, 'day_count', int(count))
      used = count
    end
    redis.call('SADD', F.models, model)
    redis.call('SET', current_keys(prefix, model).rpd, int(used))
    redis.call('PEXPIRE', K.state, STATE_KEEP_MS)
  end
  i = i + 3
end

local out = { redis.call('HGET', F.epoch, 'id') or '', int(today) }
local models = redis.call('SMEMBERS', F.models)
table.sort(models)
for _, model in ipairs(models) do
  local s = redis.call('HMGET', model_keys(prefix, model).state, 'day', 'day_count')
  local day = tonumber(s[1])
  if day ~= nil then
    out[#out + 1] = model
    out[#out + 1] = int(day)
    out[#out + 1] = int(tonumber(s[2]) or 0)
  end
end
return out
