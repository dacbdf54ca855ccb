-- Remove one ban (its offence history stays: escalation remembers).
-- KEYS: 1 the ban's hash, 2 the expiry index. ARGV: 1 index member (kind:value).
-- Returns 1 if a ban was removed.
local removed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return removed
