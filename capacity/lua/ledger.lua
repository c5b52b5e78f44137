-- capacity ledger: shared prelude. Every script is this file, a newline, then the
-- script's own file (capacity/scripts.py; capacity/PROTOCOL.md for other programs).
--
-- Leases live in KEYS[1] (server:<id>:workers, holder -> lease JSON); the totals in
-- KEYS[2] / KEYS[3] (server:<id>:cpu:allocated / ram:allocated) are derived from them.

local MAX_TTL_MS = 86400000
local IDLE_KEEP_MS = 86400000

-- Redis server time in milliseconds since the epoch.
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

local function whole(value, what, low, high)
  local n = tonumber(value)
  if n == nil or n ~= math.floor(n) or n < low or n > high then
    error('capacity: ' .. what .. ' must be a whole number from ' .. low .. ' to ' .. high)
  end
  return n
end

-- Drop expired or unreadable leases from `workers` and sum the live ones (milli-units).
-- Returns a ledger: {leases = holder -> lease, reaped = {holder, ...}, live = count,
-- cpu = milli-vCPU, ram = milli-GB}.
local function reap(workers, now)
  local entries = redis.call('HGETALL', workers)
  local ledger = { leases = {}, reaped = {}, live = 0, cpu = 0, ram = 0 }
  for i = 1, #entries, 2 do
    local ok, lease = pcall(cjson.decode, entries[i + 1])
    if ok and type(lease) == 'table' and type(lease.expires_ms) == 'number'
        and type(lease.cpu_m) == 'number' and type(lease.ram_m) == 'number'
        and lease.expires_ms > now then
      ledger.leases[entries[i]] = lease
      ledger.live = ledger.live + 1
      ledger.cpu = ledger.cpu + lease.cpu_m
      ledger.ram = ledger.ram + lease.ram_m
    else
      redis.call('HDEL', workers, entries[i])
      ledger.reaped[#ledger.reaped + 1] = entries[i]
    end
  end
  return ledger
end

-- Write the totals as plain numbers for GET. They expire when the latest live lease
-- does, so the share of holders killed without releasing is gone from them even if no
-- script runs again; "0", kept a day, once the server has no lease left.
local function write_totals(cpu_key, ram_key, ledger)
  if ledger.live > 0 then
    local latest = 0
    for _, lease in pairs(ledger.leases) do
      if lease.expires_ms > latest then latest = lease.expires_ms end
    end
    redis.call('SET', cpu_key, tostring(ledger.cpu / 1000))
    redis.call('SET', ram_key, tostring(ledger.ram / 1000))
    redis.call('PEXPIREAT', cpu_key, string.format('%d', latest))
    redis.call('PEXPIREAT', ram_key, string.format('%d', latest))
  else
    redis.call('SET', cpu_key, '0', 'PX', IDLE_KEEP_MS)
    redis.call('SET', ram_key, '0', 'PX', IDLE_KEEP_MS)
  end
end
