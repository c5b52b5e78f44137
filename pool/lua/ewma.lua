-- service times: fold one measured job duration into the fleet-wide mean of its type.
--
-- KEYS[1] worker_pool:service_seconds (hash: <type> = mean seconds, <type>:samples = count)
-- ARGV[1] type (index | acte)   ARGV[2] seconds   ARGV[3] alpha (0 < alpha <= 1)
-- ARGV[4] min seconds   ARGV[5] max seconds   ARGV[6] key TTL in ms (0: no expiry)
-- Returns the new mean as a string. The first sample (or one after an unreadable mean)
-- replaces whatever was there; later ones: mean = alpha * x + (1 - alpha) * mean.

local field = ARGV[1]
local x = tonumber(ARGV[2])
local alpha = tonumber(ARGV[3])
local low, high = tonumber(ARGV[4]), tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
if x == nil or x ~= x or alpha == nil or alpha <= 0 or alpha > 1 or low == nil
    or high == nil or ttl == nil then
  return redis.error_reply('ewma: bad arguments')
end
if x < low then x = low elseif x > high then x = high end

local samples_field = field .. ':samples'
local old = redis.call('HMGET', KEYS[1], field, samples_field)
local mean = tonumber(old[1])
local samples = tonumber(old[2]) or 0
if mean == nil or mean ~= mean or samples < 1 then
  mean = x
else
  mean = alpha * x + (1 - alpha) * mean
end

local text = string.format('%.3f', mean)
redis.call('HSET', KEYS[1], field, text, samples_field, math.floor(samples) + 1)
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return text
