-- capacity ledger: acquire (or resize) the lease of one holder on one server.
--
-- KEYS[1] server:<id>:workers          hash holder -> lease JSON
-- KEYS[2] server:<id>:cpu:allocated    decimal vCPU (derived, never added to)
-- KEYS[3] server:<id>:ram:allocated    decimal GB (derived, never added to)
-- KEYS[4] server:<id>:capacity         hash of published limits
-- ARGV[1] holder id            ARGV[2] token (random, chosen by the holder)
-- ARGV[3] kind (free text)     ARGV[4] cpu, milli-vCPU   ARGV[5] ram, milli-GB
-- ARGV[6] lease ttl, ms        ARGV[7] available cpu, milli-vCPU, or "" to use KEYS[4]
-- ARGV[8] available ram, milli-GB, or "" to use KEYS[4]
-- Returns {status, cpu_allocated_m, ram_allocated_m, cpu_available_m, ram_available_m,
--          expires_ms, now_ms}; status is ok | cpu | ram | cpu+ram | taken | no-capacity.
-- Available values are -1 when unknown; expires_ms is 0 unless status is ok.

local MAX_TTL_MS = 86400000
local IDLE_KEEP_MS = 86400000

local function whole(value, what, low, high)
  local n = tonumber(value)
  if n == nil or n ~= math.floor(n) or n < low or n > high then
    error('capacity: ' .. what .. ' must be a whole number from ' .. low .. ' to ' .. high)
  end
  return n
end

local holder, token, kind = ARGV[1], ARGV[2], ARGV[3]
if holder == nil or holder == '' then error('capacity: holder must not be empty') end
if token == nil or token == '' then error('capacity: token must not be empty') end
local want_cpu = whole(ARGV[4], 'cpu (milli-vCPU)', 0, 1e12)
local want_ram = whole(ARGV[5], 'ram (milli-GB)', 0, 1e12)
local ttl = whole(ARGV[6], 'ttl (ms)', 1, MAX_TTL_MS)

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

local avail_cpu = tonumber(ARGV[7])
local avail_ram = tonumber(ARGV[8])
if avail_cpu == nil then avail_cpu = tonumber(redis.call('HGET', KEYS[4], 'cpu_available_m')) end
if avail_ram == nil then avail_ram = tonumber(redis.call('HGET', KEYS[4], 'ram_available_m')) end

local status, expires = 'ok', 0
local old = leases[holder]
if old ~= nil and old.token ~= token then
  status = 'taken'
elseif avail_cpu == nil or avail_ram == nil then
  status = 'no-capacity'
else
  local held_cpu, held_ram = 0, 0
  if old ~= nil then held_cpu, held_ram = old.cpu_m, old.ram_m end
  -- A dimension that does not grow is always admitted (shrinking a lease never fails).
  local short = {}
  if want_cpu > held_cpu and cpu - held_cpu + want_cpu > avail_cpu then short[#short + 1] = 'cpu' end
  if want_ram > held_ram and ram - held_ram + want_ram > avail_ram then short[#short + 1] = 'ram' end
  if #short > 0 then
    status = table.concat(short, '+')
  else
    expires = now + ttl
    local since = now
    if old ~= nil and type(old.since_ms) == 'number' then since = old.since_ms end
    local lease = {
      kind = kind, cpu = want_cpu / 1000, ram = want_ram / 1000,
      cpu_m = want_cpu, ram_m = want_ram, token = token,
      since_ms = since, expires_ms = expires, ttl_ms = ttl,
    }
    redis.call('HSET', KEYS[1], holder, cjson.encode(lease))
    leases[holder] = lease
    if old == nil then live = live + 1 end
    cpu = cpu - held_cpu + want_cpu
    ram = ram - held_ram + want_ram
  end
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

return {status, cpu, ram, avail_cpu or -1, avail_ram or -1, expires, now}
