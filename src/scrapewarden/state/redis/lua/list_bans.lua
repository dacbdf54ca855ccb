-- Every ban, unless the caller already holds the current list (the store reads the version
-- with a quick GET first and calls this only when it changed).
-- KEYS: 1 the expiry index, 2 the bans' version (a token every change replaces).
-- ARGV: 1 the prefix of ban hash keys (same hash tag as the index, so this works on Cluster),
--       2 the version the caller holds.
-- Returns {version} when nothing changed, else {version, JSON array of HGETALL arrays}: one
-- string, because parsing thousands of small replies costs the client far more than JSON.
local version = redis.call('GET', KEYS[2]) or ''
if version == ARGV[2] then return {version} end
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local bans = {}
for _, member in ipairs(members) do
  local fields = redis.call('HGETALL', ARGV[1] .. member)
  if #fields > 0 then bans[#bans + 1] = fields end
end
if #bans == 0 then return {version, '[]'} end
return {version, cjson.encode(bans)}
