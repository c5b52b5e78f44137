-- capacity ledger: publish a server's limits and host readings (the capacity hash).
--
-- KEYS[1] server:<id>:capacity
-- ARGV[1] how long the hash outlives its last publication, ms
-- ARGV[2..] field, value, field, value, ... (see PROTOCOL.md for the fields)
-- Sets published_ms to the Redis server time. Returns now_ms.

local keep = tonumber(ARGV[1])
if keep == nil or keep ~= math.floor(keep) or keep < 1 then
  error('capacity: keep (ms) must be a whole number of at least 1')
end
if #ARGV % 2 ~= 1 then error('capacity: fields and values must come in pairs') end

local now = now_ms()
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[1], 'published_ms', now)
redis.call('PEXPIRE', KEYS[1], keep)
return now
