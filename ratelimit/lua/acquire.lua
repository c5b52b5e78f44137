-- Gemini limiter: acquire. One attempt of one waiter: settle what the caller carries,
-- queue its ticket, then grant it if the request fits every limit of the model *after*
-- every ticket ahead of it in the queue (head-of-line order: a small request never takes
-- the room a larger, older one waits for).
--
-- A request is granted when its room frees within `lead` us: the grant says when the
-- request may leave (not_before, the moment the slot it takes leaves the window), so the
-- caller can build its request meanwhile and send it at that moment, not a poll later.
-- The grant is then in flight (its slot stamped at its deadline, now + flight) until the
-- caller settles it (settle_grant in window.lua) with the time it reached Gemini.
--
-- ARGV[1] the caller's settings for the model, one argument built once and sent as is:
--   ten numbers, little-endian doubles (struct '<dddddddddd': no text to parse), then
--   'model|key prefix' (the prefix last: any character). The numbers: rpm limit, tpm
--   limit, rpd limit (0 = none), window (us), ticket ttl (us), quota day offset (s from
--   UTC), worker ttl (us), ceiling recovery per window, lead (us), flight (us): the longest
--   a call may take (ratelimit/limiter.py: acquire_settings).
-- ARGV[2] this attempt: 'ticket id (becomes the grant id)|arrival (us; 0 = new ticket,
--   arrival = now)|tokens asked for|epoch the caller knows ('' = none yet)|worker id
--   ('' = none)'
-- ARGV[3..] settlements (settle_all in window.lua; their estimate counters are the
--   caller's to send later, with settle, report or publish)
-- Returns one string, fields separated by '|':
--   '1|grant_us|epoch|arrival_us|not_before_us|rpm_effective|tpm_effective|missing'
--   or '0|retry_after_us|epoch|arrival_us|reason|position|missing'
-- reason: cooldown:<why> | fence | daily | rpm | tpm | queue
-- missing: the positions of carried reconciles whose grant was not found, joined by ','
--   (usually ''): the caller leaves them out of the counters it sends.

local ATTEMPT = '^([^|%s:]+)|(%d+)|(%d+)|([^|]*)|(.*)$'
local SETTINGS_BYTES = 80
if #ARGV[1] <= SETTINGS_BYTES then error('gemini limiter: the settings argument is too short') end
local rpm_limit, tpm_limit, rpd_limit, window, ticket_ttl, offset, worker_ttl, alpha, lead,
  flight = struct.unpack('<dddddddddd', ARGV[1])
-- Checked where they are packed (acquire_settings, whole numbers in range); here only the
-- ranges, in comparisons (no calls): an argument of another form fails them.
if not (rpm_limit >= 1 and rpm_limit <= 1e12 and tpm_limit >= 1 and tpm_limit <= 1e15
    and rpd_limit >= 0 and rpd_limit <= 1e12 and window >= 1000 and window <= 1e12
    and ticket_ttl >= 1000 and ticket_ttl <= 1e12 and offset >= -86400 and offset <= 86400
    and worker_ttl >= 1000 and worker_ttl <= 1e12 and alpha >= 0 and lead >= 0
    and lead <= 1e9 and flight >= 1000 and flight <= 1e12) then
  error('gemini limiter: the settings argument is not ten packed numbers (acquire_settings)')
end
-- The names and the attempt: one match each checks their form (names without '|', spaces
-- or ':'; whole numbers).
local model, prefix = string.match(string.sub(ARGV[1], SETTINGS_BYTES + 1), '^([^|%s:]+)|(.*)$')
if model == nil then
  error('gemini limiter: the settings end with model|prefix (a model without spaces or ":")')
end
local ticket, a, t, known_epoch, worker = string.match(ARGV[2], ATTEMPT)
if ticket == nil then
  error('gemini limiter: the attempt is ticket|arrival|tokens|epoch|worker (a ticket without '
    .. 'spaces or ":", whole numbers)')
end
local arrival, tokens = tonumber(a), tonumber(t)

local K = model_keys(prefix, model)
local F = fleet_keys(prefix)
local now = now_us()

-- Epoch: Redis lost our keys (restart without persistence) when a caller knew another
-- epoch. The last window's grants are then unknown, so nothing is granted for a window.
-- The same holds when an earlier release kept the window in another form.
local e = redis.call('HMGET', F.epoch, 'id', 'fence_until', 'created', 'format')
local epoch, fence = e[1], tonumber(e[2]) or 0
if not epoch then
  epoch = ticket .. '-' .. int(now)
  redis.call('HSET', F.epoch, 'id', epoch, 'created', int(now), 'format', FORMAT)
  if known_epoch ~= '' then
    fence = now + window
    redis.call('HSET', F.epoch, 'fence_until', int(fence))
  end
else
  if e[4] ~= FORMAT then
    fence = math.max(fence, now + window)
    redis.call('HSET', F.epoch, 'format', FORMAT, 'fence_until', int(fence))
  end
  if known_epoch ~= '' and known_epoch ~= epoch then
    local created = tonumber(e[3]) or now
    if created + window > fence then
      fence = created + window
      redis.call('HSET', F.epoch, 'fence_until', int(fence))
    end
  end
end

local s = redis.call('HMGET', K.state, 'rpm_limit', 'tpm_limit', 'rpd_limit', 'window_us',
  'tpm', 'day', 'day_count', 'factor', 'factor_at')
if tonumber(s[1]) ~= rpm_limit or tonumber(s[2]) ~= tpm_limit
    or tonumber(s[3]) ~= rpd_limit or tonumber(s[4]) ~= window then
  redis.call('SADD', F.models, model)
  redis.call('HSET', K.state, 'rpm_limit', rpm_limit, 'tpm_limit', int(tpm_limit),
    'rpd_limit', rpd_limit, 'window_us', int(window))
end
-- Settle what the caller carries on the state just read: this model's token sum is kept
-- here and written once (with the grant, or before a refusal), the rest as settle does.
local tpm, pruned = prune_slots(K, now, window, tonumber(s[5]) or 0)
local own = { model = model, K = K, F = F, tpm = tpm, worker = worker, missing = {} }
settle_all(prefix, 3, now, window, offset, worker_ttl, own)
tpm = own.tpm
local tpm_dirty = pruned or own.dirty
if own.refunded then
  local d = redis.call('HMGET', K.state, 'day', 'day_count')
  s[6], s[7] = d[1], d[2]
end
local missing = table.concat(own.missing, ',')
local waiting = redis.call('ZCARD', K.tickets)
if waiting > 0 then
  prune_tickets(K, now)
  waiting = redis.call('ZCARD', K.tickets)
end

-- The ticket is queued (or its deadline pushed back) unless the request is granted on
-- its first attempt with nobody waiting: the common, uncontended case costs no queue writes.
if arrival == 0 then arrival = now end
local mine = member(ticket, tokens)
local queued = false
local function enqueue()
  if queued then return end
  redis.call('ZADD', K.tickets, int(arrival), mine)
  redis.call('ZADD', K.ticket_deadlines, int(now + ticket_ttl), mine)
  queued = true
end
if arrival ~= now or waiting > 0 then enqueue() end

local function wait(retry, reason, position)
  enqueue()
  if tpm_dirty then redis.call('HSET', K.state, 'tpm', int(tpm)) end
  touch_worker(F, worker, model, 'waiting', arrival, now, worker_ttl)
  if retry < 1000 then retry = 1000 end
  return format('0|%d|%s|%d|%s|%d|%s', retry, epoch, arrival, reason, position, missing)
end

local cooldown_ms = redis.call('PTTL', K.cooldown)
if cooldown_ms > 0 then
  local why = redis.call('GET', K.cooldown) or ''
  return wait(cooldown_ms * 1000, 'cooldown:' .. why, -1)
end
if now < fence then
  return wait(fence - now, 'fence', -1)
end

local today = day_of(now, offset)
local used_today = 0
if tonumber(s[6]) == today then used_today = tonumber(s[7]) or 0 end
if rpd_limit > 0 and used_today >= rpd_limit then
  return wait(next_day_us(today, offset) - now, 'daily', -1)
end

local f = ceiling_of(s[8], s[9], now, window, alpha)
local rpm_eff = math.max(1, math.floor(rpm_limit * f))
local tpm_eff = math.max(1, math.floor(tpm_limit * f))
local need = math.min(tokens, tpm_eff)

local count = redis.call('ZCARD', K.grants)
local position = 0
if queued then position = redis.call('ZRANK', K.tickets, mine) end

-- Requests: room for this one once the `excess` oldest slots have left the window.
local horizon = now + lead
local not_before = now
local excess = count + position + 1 - rpm_eff
if excess > 0 then
  local r = redis.call('ZRANGE', K.grants, excess - 1, excess - 1, 'WITHSCORES')
  local at = now + window  -- tickets ahead hold more than the live slots: ask again later
  if #r > 0 then at = tonumber(r[2]) + window end
  if at > horizon then
    local reason = 'rpm'
    if count + 1 <= rpm_eff then reason = 'queue' end
    return wait(at - horizon, reason, position)
  end
  not_before = at
end

-- Tokens: room once enough of the oldest slots have left, after every ticket ahead.
local ahead = 0
if position > 0 then
  for _, m in ipairs(redis.call('ZRANGE', K.tickets, 0, position - 1)) do
    ahead = ahead + math.min(tokens_of(m), tpm_eff)
  end
end
local over = tpm + ahead + need - tpm_eff
if over > 0 then
  local at = when_tokens_free(K, over, window) or (now + window)
  if at > horizon then
    local reason = 'tpm'
    if tpm + need <= tpm_eff then reason = 'queue' end
    return wait(at - horizon, reason, position)
  end
  if at > not_before then not_before = at end
end

-- Granted: the ticket becomes a grant in flight, counted with its full token ask.
if queued then remove_ticket(K, mine) end
redis.call('ZADD', K.grants, int(now + flight), mine)
redis.call('HSET', K.state, 'tpm', int(tpm + tokens), 'day', today, 'day_count', used_today + 1)
touch_worker(F, worker, model, 'calling', now, now, worker_ttl)
return format('1|%d|%s|%d|%d|%d|%d|%s', now, epoch, arrival, not_before, rpm_eff, tpm_eff,
  missing)
