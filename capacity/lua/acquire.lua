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

local holder, token, kind = ARGV[1], ARGV[2], ARGV[3]
if holder == nil or holder == '' then error('capacity: holder must not be empty') end
if token == nil or token == '' then error('capacity: token must not be empty') end
local want_cpu = whole(ARGV[4], 'cpu (milli-vCPU)', 0, 1e12)
local want_ram = whole(ARGV[5], 'ram (milli-GB)', 0, 1e12)
local ttl = whole(ARGV[6], 'ttl (ms)', 1, MAX_TTL_MS)

local now = now_ms()
local ledger = reap(KEYS[1], now)
local leases = ledger.leases

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
  if want_cpu > held_cpu and ledger.cpu - held_cpu + want_cpu > avail_cpu then short[#short + 1] = 'cpu' end
  if want_ram > held_ram and ledger.ram - held_ram + want_ram > avail_ram then short[#short + 1] = 'ram' end
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
    if old == nil then ledger.live = ledger.live + 1 end
    ledger.cpu = ledger.cpu - held_cpu + want_cpu
    ledger.ram = ledger.ram - held_ram + want_ram
  end
end

write_totals(KEYS[2], KEYS[3], ledger)

return {status, ledger.cpu, ledger.ram, avail_cpu or -1, avail_ram or -1, expires, now}
