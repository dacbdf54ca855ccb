-- Store one ban and note the offence, atomically.
-- KEYS: 1 the ban's hash, 2 the expiry index (sorted set), 3 the actor's offence history
-- (sorted set of ban creation times), 4 the bans' version. All share the {prefix:bans} tag.
-- ARGV: 1 index member (kind:value), 2 created, 3 expires ('' = never), 4 reason, 5 source,
--       6 offences the caller knows of, 7 kind, 8 value, 9 a new version token,
--       10 '1' for a replay of a ban made while Redis was unreachable: the offence is noted,
--       but a newer ban another instance stored meanwhile stays in place.
-- Returns the offences stored: the larger of ARGV[6] and the bans this actor has ever had.
-- Times stay strings end to end, so no precision is lost on the way through Lua.
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[2])
local offences = math.max(tonumber(ARGV[6]), redis.call('ZCARD', KEYS[3]))
if ARGV[10] == '1' then
  local current = redis.call('HGET', KEYS[1], 'created')
  if current and tonumber(current) > tonumber(ARGV[2]) then
    local known = tonumber(redis.call('HGET', KEYS[1], 'offences') or '0')
    if offences > known then
      redis.call('HSET', KEYS[1], 'offences', offences)
      redis.call('SET', KEYS[4], ARGV[9])
    end
    return offences
  end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'kind', ARGV[7], 'value', ARGV[8], 'created', ARGV[2],
  'expires', ARGV[3], 'reason', ARGV[4], 'offences', offences, 'source', ARGV[5])
local score = ARGV[3]
if score == '' then score = '+inf' end
redis.call('ZADD', KEYS[2], score, ARGV[1])
redis.call('SET', KEYS[4], ARGV[9])
return offences
