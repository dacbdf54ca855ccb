-- Delete the operator allows that expired before a time.
-- KEYS: 1 the allows hash (kind:value -> JSON with "expires": a number, or null for never).
-- ARGV: 1 the time. Returns how many were deleted. Allows are few (operator entries), so one
-- pass over the hash is cheap; a value that does not decode is left for an operator to see.
local before = tonumber(ARGV[1])
local all = redis.call('HGETALL', KEYS[1])
local removed = 0
for i = 1, #all, 2 do
  local ok, doc = pcall(cjson.decode, all[i + 1])
  if ok and type(doc) == 'table' and type(doc.expires) == 'number' and doc.expires < before then
    removed = removed + redis.call('HDEL', KEYS[1], all[i])
  end
end
return removed
