-- Every ban in the index whose expiry score is in [ARGV[1], +inf], as HGETALL arrays.
-- KEYS: 1 the expiry index. ARGV: 1 lowest score ('-inf', or '(now' for bans still active),
-- 2 the prefix of ban hash keys (same hash tag as the index, so this works on Cluster).
local members = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')
local bans = {}
for _, member in ipairs(members) do
  local fields = redis.call('HGETALL', ARGV[2] .. member)
  if #fields > 0 then bans[#bans + 1] = fields end
end
return bans
