-- Remove one ban (its offence history stays: escalation remembers).
-- KEYS: 1 the ban's hash, 2 the expiry index, 3 the bans' version.
-- ARGV: 1 index member (kind:value), 2 a new version token, 3 for a replay of a removal
-- made while Redis was unreachable: when it was made (a ban created after that stays).
-- Returns 1 if a ban was removed.
if ARGV[3] and ARGV[3] ~= '' then
  local current = redis.call('HGET', KEYS[1], 'created')
  if current and tonumber(current) > tonumber(ARGV[3]) then return 0 end
end
local removed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if removed > 0 then redis.call('SET', KEYS[3], ARGV[2]) end
return removed
