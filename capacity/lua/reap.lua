-- capacity ledger: reap expired leases of one server and return its whole state.
-- Every other script reaps too; this one is for a periodic reaper and for readers.
--
-- KEYS[1] server:<id>:workers   KEYS[2] server:<id>:cpu:allocated
-- KEYS[3] server:<id>:ram:allocated   KEYS[4] server:<id>:capacity
-- No ARGV.
-- Returns {reaped_count, cpu_allocated_m, ram_allocated_m, now_ms,
--          {reaped holder, ...}, {holder, lease JSON, ...}, {capacity field, value, ...}}

local IDLE_KEEP_MS = 86400000

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

return {#reaped, cpu, ram, now, reaped, redis.call('HGETALL', KEYS[1]),
        redis.call('HGETALL', KEYS[4])}
