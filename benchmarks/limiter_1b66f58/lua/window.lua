-- Gemini limiter: shared prelude, prepended to every operation script
-- (acquire, reconcile, withdraw, report, publish) before it is loaded.
--
-- Per model <m>, under the prefix P (OCR_REDIS_PREFIX):
--   P gemini:model:<m>:grants             zset  grant id -> grant time (us, Redis TIME)
--   P gemini:model:<m>:tokens             hash  grant id -> input tokens (estimate, then actual)
--   P gemini:model:<m>:state              hash  tpm (sum of live grants' tokens), day, day_count,
--                                               factor, factor_at, decreased_at, *_limit
--   P gemini:model:<m>:tickets            zset  waiting ticket id -> arrival time (us): the queue
--   P gemini:model:<m>:tickets:tokens     hash  ticket id -> tokens it asks for
--   P gemini:model:<m>:tickets:deadlines  zset  ticket id -> time (us) after which it is dropped
--   P gemini:model:<m>:cooldown           string (PX): why nothing may be sent to <m> now
--   P gemini:model:<m>:stats              hash  counters (estimate error, 429s, refunds)
--   P gemini:rpm:current:<m>, P gemini:tpm:current:<m>, P gemini:rpd:current:<m>
--                                         plain numbers: requests / input tokens in the last
--                                         window, requests since the daily reset
-- Fleet:
--   P gemini:rpm:current, P gemini:tpm:current   sums of the per-model numbers
--   P gemini:models        set of models seen     P gemini:epoch   hash id, created, fence_until
--   P gemini:workers       hash worker -> JSON    P gemini:workers:expires  zset worker -> reap time (us)
--
-- A grant counts in the window (now - window, now]: it leaves when its time <= now - window.
-- Times are microseconds from Redis TIME, never a client clock.

local STATE_KEEP_MS = 2 * 86400 * 1000

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function int(n)
  return string.format('%d', n)
end

local function whole(value, what, low, high)
  local n = tonumber(value)
  if n == nil or n ~= math.floor(n) or n < low or n > high then
    error('gemini limiter: ' .. what .. ' must be a whole number from ' .. low .. ' to ' .. high)
  end
  return n
end

local function check_name(value, what)
  if value == nil or value == '' or string.find(value, '[%s:]') then
    error('gemini limiter: ' .. what .. ' must be non-empty, without spaces or ":"')
  end
  return value
end

local function model_keys(prefix, model)
  local b = prefix .. 'gemini:model:' .. model .. ':'
  return {
    grants = b .. 'grants', tokens = b .. 'tokens', state = b .. 'state',
    tickets = b .. 'tickets', ticket_tokens = b .. 'tickets:tokens',
    ticket_deadlines = b .. 'tickets:deadlines', cooldown = b .. 'cooldown', stats = b .. 'stats',
    rpm = prefix .. 'gemini:rpm:current:' .. model,
    tpm = prefix .. 'gemini:tpm:current:' .. model,
    rpd = prefix .. 'gemini:rpd:current:' .. model,
  }
end

local function fleet_keys(prefix)
  return {
    epoch = prefix .. 'gemini:epoch', models = prefix .. 'gemini:models',
    rpm = prefix .. 'gemini:rpm:current', tpm = prefix .. 'gemini:tpm:current',
    workers = prefix .. 'gemini:workers', expires = prefix .. 'gemini:workers:expires',
  }
end

-- HMGET in slices (unpack has a stack limit); returns the values summed as numbers.
local function sum_fields(hash, fields, first, last, cap)
  local total = 0
  local i = first
  while i <= last do
    local j = math.min(last, i + 199)
    local slice = {}
    for k = i, j do slice[#slice + 1] = fields[k] end
    local values = redis.call('HMGET', hash, unpack(slice))
    for _, v in ipairs(values) do
      local n = tonumber(v) or 0
      if cap ~= nil and n > cap then n = cap end
      total = total + n
    end
    i = j + 1
  end
  return total
end

local function delete_fields(hash, fields)
  local i = 1
  while i <= #fields do
    local j = math.min(#fields, i + 199)
    local slice = {}
    for k = i, j do slice[#slice + 1] = fields[k] end
    redis.call('HDEL', hash, unpack(slice))
    i = j + 1
  end
end

-- Drop grants that left the window; keep state.tpm equal to the sum of the live ones.
local function prune_grants(K, now, window)
  local cutoff = now - window
  local old = redis.call('ZRANGEBYSCORE', K.grants, '-inf', int(cutoff))
  if #old > 0 then
    local freed = sum_fields(K.tokens, old, 1, #old, nil)
    delete_fields(K.tokens, old)
    redis.call('ZREMRANGEBYSCORE', K.grants, '-inf', int(cutoff))
    local left = redis.call('HINCRBY', K.state, 'tpm', -freed)
    if redis.call('ZCARD', K.grants) == 0 and left ~= 0 then
      redis.call('HSET', K.state, 'tpm', 0)
    end
  end
end

-- Drop tickets whose waiter stopped asking (killed, cancelled without withdrawing).
local function prune_tickets(K, now)
  local dead = redis.call('ZRANGEBYSCORE', K.ticket_deadlines, '-inf', int(now))
  if #dead > 0 then
    redis.call('ZREM', K.tickets, unpack(dead))
    delete_fields(K.ticket_tokens, dead)
    redis.call('ZREM', K.ticket_deadlines, unpack(dead))
  end
end

local function remove_ticket(K, ticket)
  redis.call('ZREM', K.tickets, ticket)
  redis.call('HDEL', K.ticket_tokens, ticket)
  redis.call('ZREM', K.ticket_deadlines, ticket)
end

-- The day (in the quota's time zone, offset in seconds) a time in us falls in.
local function day_of(t, offset)
  return math.floor((t / 1000000 + offset) / 86400)
end

local function next_day_us(day, offset)
  return ((day + 1) * 86400 - offset) * 1000000
end

-- Requests counted today; resets the count when the day changed.
local function day_count(K, now, offset)
  local today = day_of(now, offset)
  local state = redis.call('HMGET', K.state, 'day', 'day_count')
  if tonumber(state[1]) ~= today then
    redis.call('HSET', K.state, 'day', today, 'day_count', 0)
    return 0, today
  end
  return tonumber(state[2]) or 0, today
end

-- The adaptive ceiling: a factor in (0, 1] applied to the configured limits. Lowered
-- multiplicatively by report; recovers additively, `alpha` per window, computed lazily.
local function ceiling(K, now, window, alpha)
  local s = redis.call('HMGET', K.state, 'factor', 'factor_at')
  local f = tonumber(s[1])
  if f == nil then return 1.0 end
  local at = tonumber(s[2]) or now
  f = f + alpha * (now - at) / window
  if f >= 1.0 then return 1.0 end
  return f
end

-- Write the plain-number inspection keys of a model and move the fleet sums by the change.
local function publish_model(K, F, now, offset)
  local count = redis.call('ZCARD', K.grants)
  local tpm = tonumber(redis.call('HGET', K.state, 'tpm')) or 0
  local today = day_of(now, offset)
  local s = redis.call('HMGET', K.state, 'day', 'day_count')
  local rpd = 0
  if tonumber(s[1]) == today then rpd = tonumber(s[2]) or 0 end
  local old_rpm = tonumber(redis.call('GETSET', K.rpm, count)) or 0
  local old_tpm = tonumber(redis.call('GETSET', K.tpm, int(tpm))) or 0
  redis.call('SET', K.rpd, rpd)
  if count ~= old_rpm then redis.call('INCRBY', F.rpm, count - old_rpm) end
  if tpm ~= old_tpm then redis.call('INCRBY', F.tpm, int(tpm - old_tpm)) end
  redis.call('PEXPIRE', K.state, STATE_KEEP_MS)
  return count, tpm, rpd
end

-- gemini:workers: one JSON per worker, reaped when not seen for `ttl` us.
local function touch_worker(F, worker, model, state, now, ttl)
  if worker == nil or worker == '' then return end
  local now_ms = math.floor(now / 1000)
  local since = now_ms
  local old = redis.call('HGET', F.workers, worker)
  if old then
    local ok, w = pcall(cjson.decode, old)
    if ok and type(w) == 'table' and w.state == state and w.model == model
        and type(w.since) == 'number' then
      since = w.since
    end
  end
  redis.call('HSET', F.workers, worker,
    cjson.encode({ model = model, state = state, since = since, seen = now_ms }))
  redis.call('ZADD', F.expires, int(now + ttl), worker)
end

local function reap_workers(F, now)
  local gone = redis.call('ZRANGEBYSCORE', F.expires, '-inf', int(now))
  if #gone > 0 then
    delete_fields(F.workers, gone)
    redis.call('ZREM', F.expires, unpack(gone))
  end
  return #gone
end
