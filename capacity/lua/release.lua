-- capacity ledger: release the lease of one holder.
--
-- KEYS[1] server:<id>:workers   KEYS[2] server:<id>:cpu:allocated
-- KEYS[3] server:<id>:ram:allocated
-- ARGV[1] holder id   ARGV[2] token given at acquire
-- Returns {released (1|0), cpu_allocated_m, ram_allocated_m}. 0: there was no live lease
-- under this holder and token (already expired, released, or someone else's).

local holder, token = ARGV[1], ARGV[2]

local now = now_ms()
local ledger = reap(KEYS[1], now)
local leases = ledger.leases

local released = 0
local lease = leases[holder]
if lease ~= nil and lease.token == token then
  redis.call('HDEL', KEYS[1], holder)
  leases[holder] = nil
  ledger.live = ledger.live - 1
  ledger.cpu = ledger.cpu - lease.cpu_m
  ledger.ram = ledger.ram - lease.ram_m
  released = 1
end

write_totals(KEYS[2], KEYS[3], ledger)

return {released, ledger.cpu, ledger.ram}
