-- capacity ledger: renew (heartbeat) the lease of one holder.
--
-- KEYS[1] server:<id>:workers   KEYS[2] server:<id>:cpu:allocated
-- KEYS[3] server:<id>:ram:allocated
-- ARGV[1] holder id   ARGV[2] token given at acquire   ARGV[3] new ttl, ms (from now)
-- Returns {renewed (1|0), expires_ms, now_ms}. 0 means the lease is gone (expired and
-- reaped, released, or held under another token): stop using it, acquire again.

local MAX_TTL_MS = 86400000
local IDLE_KEEP_MS = 86400000

local holder, token = ARGV[1], ARGV[2]
local ttl = tonumber(ARGV[3])
if ttl == nil or ttl ~= math.floor(ttl) or ttl < 1 or ttl > MAX_TTL_MS then
  error('capacity: ttl (ms) must be a whole number from 1 to ' .. MAX_TTL_MS)
end

-- >>> reap: drop expired or unreadable leases and sum the live ones (milli-units)
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local entries = redis.call('HGETALL', KEYS[1])
local leases, reaped, live = {}, {}, 0
local cpu, ram = 0, 0
for i = 1, #entries, 2 do
  local ok, lease = pcall(cjson.decode, entries[i + 1])
  if ok and type(lease) == 'table' and type(lease.expires_ms) == 'number'
      and type(lease.cpu_m) == 'number' and type(lease.ram_m) == 'number'
      and lease.expires_ms > now then
    leases[entries[i]] = lease
    live = live + 1
    cpu = cpu + lease.cpu_m
    ram = ram + lease.ram_m
  else
    redis.call('HDEL', KEYS[1], entries[i])
    reaped[#reaped + 1] = entries[i]
  end
end
-- <<< reap

local renewed, expires = 0, 0
local lease = leases[holder]
if lease ~= nil and lease.token == token then
  expires = now + ttl
  lease.expires_ms = expires
  lease.ttl_ms = ttl
  redis.call('HSET', KEYS[1], holder, cjson.encode(lease))
  renewed = 1
end

-- >>> totals: plain numbers for GET. They expire when the latest live lease does, so
-- the share of holders killed without releasing is gone from them even if no script
-- runs again; "0", kept a day, once the server has no lease left.
if live > 0 then
  local latest = 0
  for _, lease in pairs(leases) do
    if lease.expires_ms > latest then latest = lease.expires_ms end
  end
  redis.call('SET', KEYS[2], tostring(cpu / 1000))
  redis.call('SET', KEYS[3], tostring(ram / 1000))
  redis.call('PEXPIREAT', KEYS[2], string.format('%d', latest))
  redis.call('PEXPIREAT', KEYS[3], string.format('%d', latest))
else
  redis.call('SET', KEYS[2], '0', 'PX', IDLE_KEEP_MS)
  redis.call('SET', KEYS[3], '0', 'PX', IDLE_KEEP_MS)
end
-- <<< totals

return {renewed, expires, now}
