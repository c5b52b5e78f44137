-- worker_pool:assignments: one field per worker (JSON: mode, job, since, pool, server),
-- each with a deadline in a companion sorted set; fields past their deadline are
-- reaped on every write, so a pool that died leaves nothing behind for long.
--
-- KEYS[1]  the assignments hash
-- KEYS[2]  its deadlines (sorted set: worker -> ms)
-- ARGV[1]  time-to-live of the fields written, ms
-- ARGV[2..] pairs: worker, JSON ('' removes the worker)
-- Returns the number of workers left in the hash.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])

local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, worker in ipairs(dead) do
    redis.call('HDEL', KEYS[1], worker)
    redis.call('ZREM', KEYS[2], worker)
end
for i = 2, #ARGV, 2 do
    local worker, value = ARGV[i], ARGV[i + 1]
    if value == '' then
        redis.call('HDEL', KEYS[1], worker)
        redis.call('ZREM', KEYS[2], worker)
    else
        redis.call('HSET', KEYS[1], worker, value)
        redis.call('ZADD', KEYS[2], now + ttl, worker)
    end
end
local left = redis.call('HLEN', KEYS[1])
if left > 0 then
    -- The keys themselves go when the last writer stops refreshing them.
    redis.call('PEXPIRE', KEYS[1], ttl)
    redis.call('PEXPIRE', KEYS[2], ttl)
end
return left
