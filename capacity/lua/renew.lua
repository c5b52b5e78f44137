-- capacity ledger: renew (heartbeat) the lease of one holder.
--
-- KEYS[1] server:<id>:workers   KEYS[2] server:<id>:cpu:allocated
-- KEYS[3] server:<id>:ram:allocated
-- ARGV[1] holder id   ARGV[2] token given at acquire   ARGV[3] new ttl, ms (from now)
-- Returns {renewed (1|0), expires_ms, now_ms}. 0 means the lease is gone (expired and
-- reaped, released, or held under another token): stop using it, acquire again.

local holder, token = ARGV[1], ARGV[2]
local ttl = whole(ARGV[3], 'ttl (ms)', 1, MAX_TTL_MS)

local now = now_ms()
local ledger = reap(KEYS[1], now)
local leases = ledger.leases

local renewed, expires = 0, 0
local lease = leases[holder]
if lease ~= nil and lease.token == token then
  expires = now + ttl
  lease.expires_ms = expires
  lease.ttl_ms = ttl
  redis.call('HSET', KEYS[1], holder, cjson.encode(lease))
  renewed = 1
end

write_totals(KEYS[2], KEYS[3], ledger)

return {renewed, expires, now}
