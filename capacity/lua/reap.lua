-- capacity ledger: reap expired leases of one server and return its whole state.
-- Every other script reaps too; this one is for a periodic reaper and for readers.
--
-- KEYS[1] server:<id>:workers   KEYS[2] server:<id>:cpu:allocated
-- KEYS[3] server:<id>:ram:allocated   KEYS[4] server:<id>:capacity
-- No ARGV.
-- Returns {reaped_count, cpu_allocated_m, ram_allocated_m, now_ms,
--          {reaped holder, ...}, {holder, lease JSON, ...}, {capacity field, value, ...}}

local now = now_ms()
local ledger = reap(KEYS[1], now)

write_totals(KEYS[2], KEYS[3], ledger)

return {#ledger.reaped, ledger.cpu, ledger.ram, now, ledger.reaped, redis.call('HGETALL', KEYS[1]),
        redis.call('HGETALL', KEYS[4])}
