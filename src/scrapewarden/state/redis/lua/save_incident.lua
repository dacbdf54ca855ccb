-- Store an incident if the stored copy is still at the version the caller read.
-- KEYS: 1 the documents (hash id -> JSON), 2 their versions (hash id -> n), both under the
-- {prefix:incidents} tag. ARGV: 1 id, 2 the version read (0: new), 3 the new JSON.
-- Returns 1 when stored (at version ARGV[2] + 1), 0 when another writer got there first.
local current = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if current ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], current + 1)
return 1
