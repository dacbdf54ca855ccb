-- Count one refusal against one actor (automatic bans) and answer with the actor's count.
--
-- The Redis twin of Engine.count_offences (src/scrapewarden/core/engine.py): a SlidingCount of
-- core/counters.py over the ban window (the current fixed window plus the previous one weighted
-- by its overlap). A count that reaches the threshold starts again from zero, as the engine's.
-- The key shares the actor's hash tag with its other counters (observe.lua).
--
-- KEYS[1]  hash  w (window number), c (count in it), p (count in the one before)
-- ARGV[1]  now (epoch seconds), ARGV[2] window seconds, ARGV[3] threshold
-- Returns: the sliding count including this refusal, as a string.

local now, period, threshold = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local got = redis.call("HMGET", KEYS[1], "w", "c", "p")
local w, c, p = tonumber(got[1] or "-1") or -1, tonumber(got[2] or "0") or 0, tonumber(got[3] or "0") or 0
local window = math.floor(now / period)
if window ~= w then
  if window == w + 1 then p = c else p = 0 end
  c = 0
end
c = c + 1
local count = c
if p > 0 then count = c + p * (1 - (now % period) / period) end
if count >= threshold then
  redis.call("DEL", KEYS[1])
else
  redis.call("HSET", KEYS[1], "w", window, "c", c, "p", p)
  redis.call("PEXPIRE", KEYS[1], math.ceil(period * 2000))
end
return tostring(count)
