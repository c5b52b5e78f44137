-- capacity ledger: fold measured CPU use into the fleet's average per kind, and read it.
--
-- KEYS[1] capacity:measured   hash kind -> vCPU per held second (average),
--                             kind:held_seconds, kind:cpu_seconds (totals folded so far)
-- ARGV[1] half-life, held seconds   ARGV[2] keep (ms): the hash expires this long after
--                                   the last sample
-- ARGV[3..] kind, seed (vCPU), cpu seconds, held seconds: four per kind (held 0: read only)
-- A sample moves the average by 1 - 2^(-held / half-life) towards cpu / held; a kind
-- never measured starts from its seed (capacity/costs.py `fold` is the same rule).
-- Returns {kind, average or '', ...} for every kind named ('' = never measured).

local MAX_SAMPLE = 1024

local function number(value, what, low)
  local n = tonumber(value)
  if n == nil or n ~= n or n < low or n == math.huge then
    error('capacity: ' .. what .. ' must be a number of at least ' .. low)
  end
  return n
end

local half = number(ARGV[1], 'half-life (s)', 0.001)
local keep = number(ARGV[2], 'keep (ms)', 1)
if keep ~= math.floor(keep) then error('capacity: keep (ms) must be a whole number') end
if (#ARGV - 2) % 4 ~= 0 then error('capacity: samples come as kind, seed, cpu, held') end

local out, folded = {}, false
for i = 3, #ARGV, 4 do
  local kind = ARGV[i]
  if kind == '' or string.find(kind, '[%s:]') then
    error('capacity: kind must be non-empty, without spaces or ":"')
  end
  local seed = number(ARGV[i + 1], 'seed (vCPU)', 0)
  local cpu = number(ARGV[i + 2], 'cpu seconds', 0)
  local held = number(ARGV[i + 3], 'held seconds', 0)
  local mean = tonumber(redis.call('HGET', KEYS[1], kind))
  if held > 0 then
    local start = seed
    if mean ~= nil and mean == mean and mean >= 0 then start = mean end
    local rate = math.min(cpu / held, MAX_SAMPLE)
    mean = start + (1 - 2 ^ (-held / half)) * (rate - start)
    redis.call('HSET', KEYS[1], kind, string.format('%.6g', mean))
    redis.call('HINCRBYFLOAT', KEYS[1], kind .. ':held_seconds', string.format('%.3f', held))
    redis.call('HINCRBYFLOAT', KEYS[1], kind .. ':cpu_seconds', string.format('%.3f', cpu))
    folded = true
  end
  out[#out + 1] = kind
  if mean == nil then out[#out + 1] = '' else out[#out + 1] = string.format('%.6g', mean) end
end
if folded then redis.call('PEXPIRE', KEYS[1], string.format('%d', keep)) end
return out
