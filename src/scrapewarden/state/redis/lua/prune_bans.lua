-- Delete up to ARGV[3] bans whose expiry is below ARGV[1] ('(before'); history is kept.
-- KEYS: 1 the expiry index, 2 the bans' version.
-- ARGV: 1 upper score bound, 2 ban hash key prefix, 3 chunk size, 4 a new version token.
-- Returns how many were deleted (the caller repeats while a whole chunk went).
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, member in ipairs(members) do
  redis.call('DEL', ARGV[2] .. member)
end
if #members > 0 then
  redis.call('ZREM', KEYS[1], unpack(members))
  redis.call('SET', KEYS[2], ARGV[4])
end
return #members
