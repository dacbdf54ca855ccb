-- Append one audit entry to the chain, if the chain's head is still the one it was built on.
-- KEYS: 1 the entries (a list, oldest first), 2 the head (a hash: seq, hash), 3 this record's
-- marker. All share the {prefix:audit} tag, so this runs on Redis Cluster.
-- ARGV: 1 the seq the entry follows ('0' for the first), 2 that entry's hash, 3 the new
--       entry's JSON, 4 its seq, 5 its hash, 6 the hash the first entry follows (all zeros),
--       7 seconds the marker lives.
-- The client hashes (Redis Lua has no SHA-256); this script makes "read head, append, move
-- head" one atomic step. Returns {1} when appended; {0, seq, hash} of the actual head so the
-- client can re-chain the entry and try again; {2} when this record was appended before (a
-- retry after a reply lost to a timeout must not log the action twice).
local head = redis.call('HMGET', KEYS[2], 'seq', 'hash')
local seq = head[1] or '0'
local hash = head[2] or ARGV[6]
if seq ~= ARGV[1] or hash ~= ARGV[2] then
  return {0, seq, hash}
end
if not redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[7]) then
  return {2}
end
redis.call('RPUSH', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], 'seq', ARGV[4], 'hash', ARGV[5])
return {1}
