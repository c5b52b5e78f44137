-- worker_pool:allocation: one JSON document for the whole fleet, merged atomically.
-- Each pool writes its own entry; entries of pools that stopped refreshing expire.
--
-- KEYS[1]  the allocation key
-- ARGV[1]  pool id
-- ARGV[2]  this pool's entry as JSON ('' removes the entry: the pool is stopping)
-- ARGV[3]  entry time-to-live, ms (a few rebalance intervals)
-- Returns the number of live pools.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pool_id, entry, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])

local pools = {}
local raw = redis.call('GET', KEYS[1])
if raw then
    local ok, doc = pcall(cjson.decode, raw)
    if ok and type(doc) == 'table' and type(doc.pools) == 'table' then
        pools = doc.pools
    end
end

local live, count, index, acte, last = {}, 0, 0, 0, 0
for id, e in pairs(pools) do
    if id ~= pool_id and type(e) == 'table' and tonumber(e.expires_at_ms or 0) > now then
        live[id] = e
    end
end
if entry ~= '' then
    local e = cjson.decode(entry)
    e.expires_at_ms = now + ttl
    live[pool_id] = e
end
for _, e in pairs(live) do
    count = count + 1
    index = index + (tonumber(e.index) or 0)
    acte = acte + (tonumber(e.acte) or 0)
    last = math.max(last, tonumber(e.expires_at_ms))
end
if count == 0 then
    redis.call('DEL', KEYS[1])
    return 0
end
local doc = {updated_at_ms = now, pools = live, index = index, acte = acte,
             workers = index + acte}
redis.call('SET', KEYS[1], cjson.encode(doc), 'PX', math.max(1, last - now))
return count
