-- Gemini limiter: shared prelude, prepended to every operation script
-- (acquire, settle, withdraw, report, publish, ...) before it is loaded.
--
-- Per model <m>, under the prefix P (OCR_REDIS_PREFIX):
--   P gemini:model:<m>:grants             zset  '<grant id>:<tokens>' -> its slot's stamp (us):
--                                               the request's arrival bound once settled, or
--                                               its in-flight deadline until then
--   P gemini:model:<m>:state              hash  tpm (sum of the live grants' tokens), day,
--                                               day_count, factor, factor_at, decreased_at,
--                                               *_limit, window_us
--   P gemini:model:<m>:tickets            zset  '<ticket id>:<tokens>' -> arrival (us): the queue
--   P gemini:model:<m>:tickets:deadlines  zset  same member -> time (us) after which it is dropped
--   P gemini:model:<m>:cooldown           string (PX): why nothing may be sent to <m> now
--   P gemini:model:<m>:stats              hash  counters (estimate error, 429s, refunds)
--   P gemini:rpm:current:<m>, P gemini:tpm:current:<m>, P gemini:rpd:current:<m>
--                                         plain numbers: requests / input tokens in the last
--                                         window, requests since the daily reset (written by
--                                         publish, about once a second by every pool)
-- Fleet:
--   P gemini:rpm:current, P gemini:tpm:current   sums of the per-model numbers
--   P gemini:models        set of models seen     P gemini:epoch   hash id, created,
--                                                   fence_until, format
--   P gemini:workers       hash worker -> JSON    P gemini:workers:expires  zset worker -> reap time (us)
--
-- A slot counts in the window (now - window, now]: it leaves when its stamp <= now - window.
-- A grant is in flight from acquire until it is settled: its stamp is then its deadline
-- (grant time + the longest a call may take), so it cannot leave while the call may still
-- be on its way. Settling stamps it at the latest time the request can have reached
-- Gemini (see settle_grant). Times are microseconds from Redis TIME, never a client clock.

local STATE_KEEP_MS = 2 * 86400 * 1000
local FORMAT = '2'  -- grants as '<id>:<tokens>' stamped at the wire (1b66f58 and earlier: 1)
local SCAN = 64     -- at most this many of the oldest slots are read to see when tokens free

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local format = string.format
local function int(n)
  return format('%d', n)
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
    grants = b .. 'grants', state = b .. 'state',
    tickets = b .. 'tickets', ticket_deadlines = b .. 'tickets:deadlines',
    cooldown = b .. 'cooldown', stats = b .. 'stats',
  }
end

-- The plain-number inspection keys of a model (written by publish only).
local function current_keys(prefix, model)
  return {
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

-- The tokens a '<id>:<tokens>' member carries (its own text: no lookup).
local function tokens_of(member)
  return tonumber(string.match(member, ':(%d+)$')) or 0
end

local function member(id, tokens)
  -- a whole number under 1e14 concatenates as its digits (%.14g): no format call
  if tokens < 1e14 then return id .. ':' .. tokens end
  return id .. ':' .. int(tokens)
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

-- Drop slots that left the window. Returns the tokens still live, `tpm` being state.tpm
-- before, and whether any slot left (state.tpm must then be written: prune_grants does it
-- at once, acquire with its own write).
local function prune_slots(K, now, window, tpm)
  local cutoff = int(now - window)
  local old = redis.call('ZRANGEBYSCORE', K.grants, '-inf', cutoff)
  if #old == 0 then return tpm, false end
  local freed = 0
  for _, m in ipairs(old) do freed = freed + tokens_of(m) end
  redis.call('ZREMRANGEBYSCORE', K.grants, '-inf', cutoff)
  local left = tpm - freed
  if left < 0 or redis.call('ZCARD', K.grants) == 0 then left = 0 end
  return left, true
end

-- Drop slots that left the window; keep state.tpm equal to the sum of the live ones.
-- Returns the tokens still live (state.tpm after the prune), `tpm` being its value before.
local function prune_grants(K, now, window, tpm)
  local left, pruned = prune_slots(K, now, window, tpm)
  if pruned then redis.call('HSET', K.state, 'tpm', int(left)) end
  return left
end

-- Drop tickets whose waiter stopped asking (killed, cancelled without withdrawing).
local function prune_tickets(K, now)
  local dead = redis.call('ZRANGEBYSCORE', K.ticket_deadlines, '-inf', int(now))
  if #dead > 0 then
    redis.call('ZREM', K.tickets, unpack(dead))
    redis.call('ZREM', K.ticket_deadlines, unpack(dead))
  end
end

local function remove_ticket(K, ticket)
  redis.call('ZREM', K.tickets, ticket)
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
-- multiplicatively by report; recovers additively, `alpha` per window since it was last
-- lowered, computed lazily (ratelimit/policy.py: ceiling_factor).
local function ceiling_of(factor, factor_at, now, window, alpha)
  local f = tonumber(factor)
  if f == nil then return 1.0 end
  local at = tonumber(factor_at) or now
  f = f + alpha * (now - at) / window
  if f >= 1.0 then return 1.0 end
  return f
end

-- When (us) do enough of the oldest slots leave the window to free `amount` tokens?
-- Reads at most SCAN slots (their tokens are in their names): nil when those are not
-- enough, the caller then asks again later (a poll is at most max_poll_seconds anyway).
local function when_tokens_free(K, amount, window)
  local r = redis.call('ZRANGE', K.grants, 0, SCAN - 1, 'WITHSCORES')
  local freed = 0
  for k = 1, #r, 2 do
    freed = freed + tokens_of(r[k])
    if freed >= amount then return tonumber(r[k + 1]) + window end
  end
  return nil
end

-- Settle one grant after its call (ratelimit/policy.py: settled_stamp):
-- kind 'r' reconcile (actual tokens), 'k' keep (the request may have reached Gemini: a
-- 429, a network error; it keeps its estimate), 'f' refund (it never went out: it leaves
-- the window and today's count). A settled grant is stamped at `arrival_after` us after
-- its grant (an upper bound of when it reached Gemini, measured by the caller), never
-- later than now. The caller bounds `arrival_after` by the grant's flight, so the stamp
-- is never later than the in-flight stamp it replaces (grant time + flight) either: the
-- slot's score need not be read. Returns the change in tokens (for state.tpm) and
-- whether the grant was found.
local function settle_grant(K, now, window, offset, id, granted, estimate, kind, actual,
                            arrival_after)
  local old = member(id, estimate)
  if redis.call('ZREM', K.grants, old) == 0 then return 0, false end
  if kind == 'f' then
    local s = redis.call('HMGET', K.state, 'day', 'day_count')
    if tonumber(s[1]) == day_of(granted, offset) and (tonumber(s[2]) or 0) > 0 then
      redis.call('HINCRBY', K.state, 'day_count', -1)
    end
    return -estimate, true
  end
  local tokens = estimate
  if kind == 'r' then tokens = actual end
  local stamp = math.min(granted + arrival_after, now)
  if stamp <= now - window then return -estimate, true end
  redis.call('ZADD', K.grants, int(stamp), member(id, tokens))
  return tokens - estimate, true
end

-- gemini:workers: one JSON per worker, reaped (by publish) when not seen for `ttl` us.
-- `since` (us) is when the worker entered `state`.
local function touch_worker(F, worker, model, state, since, now, ttl)
  if worker == nil or worker == '' then return end
  redis.call('HSET', F.workers, worker, cjson.encode({
    model = model, state = state, since = math.floor(since / 1000), seen = math.floor(now / 1000),
  }))
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

-- Estimate counters of the stats hash, in the order a counters argument carries them.
local COUNTERS = { 'reconciled', 'estimated_tokens', 'actual_tokens', 'abs_error_tokens' }

local function add_counters(stats, c)
  for k, name in ipairs(COUNTERS) do
    if c[k] ~= 0 then redis.call('HINCRBY', stats, name, int(c[k])) end
  end
end

-- Settlements carried by any call: ARGV[first] = count, then one argument per settlement,
-- 'model|grant id|grant time (us)|estimate|kind (r/k/f)|actual tokens|arrival bound (us
-- after the grant, never more than its flight)|worker' (worker '' = none).
-- Window, day offset and worker ttl are the caller's.
--
-- `own` is given by acquire only: {model, K, F, tpm (state.tpm, pruned), worker}. Its model's
-- token sum is then kept in own.tpm (own.dirty: it changed, acquire writes it), own.refunded
-- says today's count may have changed, the acquiring worker is not touched (acquire does),
-- and the estimate counters are not written: own.missing lists the positions (1 = first
-- settlement) of reconciles whose grant was not found, the caller counts the others and
-- sends its sums with a later settle, report or publish. Those calls (no `own`) write the
-- counters of what they settle, then add the sums they carry: ARGV[after the settlements]
-- = count (absent = 0), then 'model|reconciled|estimated|actual|abs error' each.
-- Returns the index after the arguments read.
-- One match checks a settlement's form: names without '|', spaces or ':', whole numbers,
-- a known kind (no per-field checks: this runs for every request).
local SETTLEMENT = '^([^|%s:]+)|([^|%s:]+)|(%d+)|(%d+)|([rkf])|(%d+)|(%d+)|(.*)$'
local function settle_all(prefix, first, now, window, offset, worker_ttl, own)
  local n = whole(ARGV[first], 'settlement count', 0, 10000)
  if n == 0 and own ~= nil then return first + 1 end
  local F = own and own.F
  local by_model = {}
  for i = 1, n do
    local model, id, g, e, kind, a, arr, worker = string.match(ARGV[first + i], SETTLEMENT)
    if model == nil then
      error('gemini limiter: a settlement is model|grant id|grant time|estimate|r, k or f|'
        .. 'actual tokens|arrival bound|worker (names without spaces or ":", whole numbers)')
    end
    local granted, estimate, actual, arrival_after = tonumber(g), tonumber(e), tonumber(a),
      tonumber(arr)
    local m = by_model[model]
    if m == nil then
      if own ~= nil and model == own.model then
        m = own
      else
        local K = model_keys(prefix, model)
        local tpm = tonumber(redis.call('HGET', K.state, 'tpm')) or 0
        m = { K = K, tpm = prune_grants(K, now, window, tpm) }
      end
      m.delta, m.refunds = 0, 0
      if own == nil then m.counters = { 0, 0, 0, 0 } end
      by_model[model] = m
    end
    local delta, found = settle_grant(m.K, now, window, offset, id, granted, estimate, kind,
      actual, arrival_after)
    m.delta = m.delta + delta
    if kind == 'f' then
      m.refunds = m.refunds + 1
    elseif kind == 'r' then
      if own ~= nil then
        if not found then own.missing[#own.missing + 1] = i end
      elseif found then
        local c = m.counters
        c[1], c[2], c[3] = c[1] + 1, c[2] + estimate, c[3] + actual
        c[4] = c[4] + math.abs(actual - estimate)
      end
    end
    if worker ~= '' and (own == nil or worker ~= own.worker) then
      F = F or fleet_keys(prefix)
      touch_worker(F, worker, model, 'idle', now, now, worker_ttl)
    end
  end
  for _, m in pairs(by_model) do
    if m.delta ~= 0 then
      local left = m.tpm + m.delta
      if left < 0 then left = 0 end
      m.tpm = left
      if m == own then
        own.dirty = true
      else
        redis.call('HSET', m.K.state, 'tpm', int(left))
      end
    end
    if m.refunds > 0 then
      redis.call('HINCRBY', m.K.stats, 'refunds', m.refunds)
      if m == own then own.refunded = true end
    end
    if own == nil then add_counters(m.K.stats, m.counters) end
  end
  local after = first + 1 + n
  if own ~= nil then return after end
  local sums = whole(ARGV[after] or '0', 'counter count', 0, 10000)
  for i = 1, sums do
    local fields = {}
    for f in string.gmatch(ARGV[after + i], '[^|]+') do fields[#fields + 1] = f end
    if #fields ~= 5 then error('gemini limiter: counters have 5 fields separated by |') end
    local c = {}
    for k = 2, 5 do c[k - 1] = whole(fields[k], 'counter', 0, 1e15) end
    add_counters(model_keys(prefix, check_name(fields[1], 'model')).stats, c)
  end
  return after + 1 + sums
end

-- Write the plain-number inspection keys of a model and move the fleet sums by the change.
local function publish_model(K, C, now, offset, tpm)
  local count = redis.call('ZCARD', K.grants)
  local today = day_of(now, offset)
  local s = redis.call('HMGET', K.state, 'day', 'day_count')
  local rpd = 0
  if tonumber(s[1]) == today then rpd = tonumber(s[2]) or 0 end
  redis.call('SET', C.rpm, count)
  redis.call('SET', C.tpm, int(tpm))
  redis.call('SET', C.rpd, rpd)
  redis.call('PEXPIRE', K.state, STATE_KEEP_MS)
  return count, tpm, rpd
end
