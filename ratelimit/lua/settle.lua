-- Gemini limiter: settle grants after their calls, when no other call carried them
-- (acquire, report and publish carry the caller's pending settlements too).
-- Reconcile replaces a grant's estimated tokens by the tokens the API counted
-- (usage_metadata.prompt_token_count), keep leaves the estimate, refund takes the grant
-- off the window and today's count (a call that never went out). Reconcile and keep stamp
-- the grant's slot at the latest time its request can have reached Gemini.
--
-- ARGV[1] prefix   ARGV[2] window (us)   ARGV[3] quota day offset (s)   ARGV[4] worker ttl (us)
-- ARGV[5..] settlements, then estimate counters (settle_all in window.lua)
-- Returns the number of settlements read.

local prefix = ARGV[1]
local window = whole(ARGV[2], 'window', 1000, 1e12)
local offset = whole(ARGV[3], 'day offset', -86400, 86400)
local worker_ttl = whole(ARGV[4], 'worker ttl', 1000, 1e12)
settle_all(prefix, 5, now_us(), window, offset, worker_ttl)
return tonumber(ARGV[5])
