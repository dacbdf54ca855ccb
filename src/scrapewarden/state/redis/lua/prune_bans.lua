-- Delete up to ARGV[3] bans whose expiry is below ARGV[1] ('(before'); history is kept.
-- KEYS: 1 the expiry index. ARGV: 1 upper score bound, 2 ban hash key prefix, 3 chunk size.
-- Returns how many were deleted (the caller repeats while a whole chunk went).
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, member in ipairs(members) do
  redis.call('DEL', ARGV[2] .. member)
end
if #members > 0 then redis.call('ZREM', KEYS[1], unpack(members)) end
return #members
