-- The site-wide tally of assets served (Engine.note_site_assets): add to it, or only read it.
--
-- KEYS[1]  string: the tally
-- ARGV[1]  assets to add (0: only read), ARGV[2] how long the tally outlives its last addition
--          (milliseconds)
-- Returns: the tally.

local add = tonumber(ARGV[1])
if add > 0 then
  local total = redis.call("INCRBY", KEYS[1], add)
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
  return total
end
return tonumber(redis.call("GET", KEYS[1]) or "0")
