-- Gemini limiter: acquire. One attempt of one waiter: queue its ticket, then grant it if
-- the request fits every limit of the model *after* every ticket ahead of it in the queue
-- (head-of-line order: a small request never takes the room a larger, older one waits for).
--
-- ARGV[1] prefix          ARGV[2] model              ARGV[3] ticket id (becomes the grant id)
-- ARGV[4] arrival (us; 0 = new ticket, arrival = now)  ARGV[5] tokens asked for
-- ARGV[6] rpm limit       ARGV[7] tpm limit          ARGV[8] rpd limit (0 = none)
-- ARGV[9] window (us)     ARGV[10] ticket ttl (us)   ARGV[11] quota day offset (s from UTC)
-- ARGV[12] epoch the caller knows ('' = none yet)    ARGV[13] new epoch id if none exists
-- ARGV[14] worker id ('' = none)                     ARGV[15] worker ttl (us)
-- ARGV[16] ceiling recovery per window (alpha)
-- Returns {1, grant_us, epoch, arrival_us, rpm_effective, tpm_effective}
--      or {0, retry_after_us, epoch, arrival_us, reason, position}
-- reason: cooldown:<why> | fence | daily | rpm | tpm | queue

local prefix = ARGV[1]
local model = check_name(ARGV[2], 'model')
local ticket = check_name(ARGV[3], 'ticket')
local arrival = whole(ARGV[4], 'arrival', 0, 1e17)
local tokens = whole(ARGV[5], 'tokens', 0, 1e12)
local rpm_limit = whole(ARGV[6], 'rpm limit', 1, 1e12)
local tpm_limit = whole(ARGV[7], 'tpm limit', 1, 1e15)
local rpd_limit = whole(ARGV[8], 'rpd limit', 0, 1e12)
local window = whole(ARGV[9], 'window', 1000, 1e12)
local ticket_ttl = whole(ARGV[10], 'ticket ttl', 1000, 1e12)
local offset = whole(ARGV[11], 'day offset', -86400, 86400)
local known_epoch, new_epoch = ARGV[12], check_name(ARGV[13], 'epoch')
local worker, worker_ttl = ARGV[14], whole(ARGV[15], 'worker ttl', 1000, 1e12)
local alpha = tonumber(ARGV[16]) or 0

local K = model_keys(prefix, model)
local F = fleet_keys(prefix)
local now = now_us()

-- Epoch: Redis lost our keys (restart without persistence) when a caller knew another
-- epoch. The last window's grants are then unknown, so nothing is granted for a window.
local epoch = redis.call('HGET', F.epoch, 'id')
local fence = tonumber(redis.call('HGET', F.epoch, 'fence_until')) or 0
if not epoch then
  epoch = new_epoch
  redis.call('HSET', F.epoch, 'id', epoch, 'created', int(now))
  if known_epoch ~= '' then
    fence = now + window
    redis.call('HSET', F.epoch, 'fence_until', int(fence))
  end
elseif known_epoch ~= '' and known_epoch ~= epoch then
  local created = tonumber(redis.call('HGET', F.epoch, 'created')) or now
  if created + window > fence then
    fence = created + window
    redis.call('HSET', F.epoch, 'fence_until', int(fence))
  end
end

redis.call('SADD', F.models, model)
redis.call('HSET', K.state, 'rpm_limit', rpm_limit, 'tpm_limit', int(tpm_limit),
  'rpd_limit', rpd_limit, 'window_us', int(window))
prune_grants(K, now, window)
prune_tickets(K, now)
reap_workers(F, now)

-- The ticket is queued (or its deadline pushed back) unless the request is granted on
-- its first attempt with nobody waiting: the common, uncontended case costs no queue writes.
if arrival == 0 then arrival = now end
local queued = false
local function enqueue()
  if queued then return end
  redis.call('ZADD', K.tickets, int(arrival), ticket)
  redis.call('HSET', K.ticket_tokens, ticket, int(tokens))
  redis.call('ZADD', K.ticket_deadlines, int(now + ticket_ttl), ticket)
  queued = true
end
if arrival ~= now or redis.call('ZCARD', K.tickets) > 0 then enqueue() end

local function wait(retry, reason, position)
  enqueue()
  touch_worker(F, worker, model, 'waiting', now, worker_ttl)
  if retry < 1000 then retry = 1000 end
  return { 0, int(retry), epoch, int(arrival), reason, position }
end

local cooldown_ms = redis.call('PTTL', K.cooldown)
if cooldown_ms > 0 then
  local why = redis.call('GET', K.cooldown) or ''
  return wait(cooldown_ms * 1000, 'cooldown:' .. why, -1)
end
if now < fence then
  return wait(fence - now, 'fence', -1)
end

local used_today, today = day_count(K, now, offset)
if rpd_limit > 0 and used_today >= rpd_limit then
  return wait(next_day_us(today, offset) - now, 'daily', -1)
end

local f = ceiling(K, now, window, alpha)
local rpm_eff = math.max(1, math.floor(rpm_limit * f))
local tpm_eff = math.max(1, math.floor(tpm_limit * f))
local need = math.min(tokens, tpm_eff)

local count = redis.call('ZCARD', K.grants)
local tpm = tonumber(redis.call('HGET', K.state, 'tpm')) or 0
local position = 0
if queued then position = redis.call('ZRANK', K.tickets, ticket) end

-- When do the `n` oldest grants leave the window? (nil if fewer grants are live)
local function when_requests_free(n)
  if n < 1 or n > count then return nil end
  local r = redis.call('ZRANGE', K.grants, n - 1, n - 1, 'WITHSCORES')
  return tonumber(r[2]) + window - now
end

-- When have enough of the oldest grants left the window to free `amount` tokens?
local function when_tokens_free(amount)
  local freed, i = 0, 0
  while i < count and i < 5000 do
    local r = redis.call('ZRANGE', K.grants, i, i + 99, 'WITHSCORES')
    for k = 1, #r, 2 do
      freed = freed + (tonumber(redis.call('HGET', K.tokens, r[k])) or 0)
      if freed >= amount then return tonumber(r[k + 1]) + window - now end
    end
    i = i + 100
  end
  return nil
end

if count + position + 1 > rpm_eff then
  local reason = 'rpm'
  if count + 1 <= rpm_eff then reason = 'queue' end
  local retry = when_requests_free(count + position + 1 - rpm_eff) or window
  return wait(retry, reason, position)
end

local ahead = 0
if position > 0 then
  local ids = redis.call('ZRANGE', K.tickets, 0, position - 1)
  ahead = sum_fields(K.ticket_tokens, ids, 1, #ids, tpm_eff)
end
if tpm + ahead + need > tpm_eff then
  local reason = 'tpm'
  if tpm + need <= tpm_eff then reason = 'queue' end
  local retry = when_tokens_free(tpm + ahead + need - tpm_eff) or window
  return wait(retry, reason, position)
end

-- Granted: the ticket becomes a grant at `now`, counted with its full token ask.
if queued then remove_ticket(K, ticket) end
redis.call('ZADD', K.grants, int(now), ticket)
redis.call('HSET', K.tokens, ticket, int(tokens))
redis.call('HINCRBY', K.state, 'tpm', int(tokens))
redis.call('HINCRBY', K.state, 'day_count', 1)
publish_model(K, F, now, offset)
touch_worker(F, worker, model, 'calling', now, worker_ttl)
return { 1, int(now), epoch, int(arrival), rpm_eff, int(tpm_eff) }
