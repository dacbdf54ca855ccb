-- Note that one address used one network; answer 1 once a second address has (on any instance).
--
-- The shared side of SharedNetworks (src/scrapewarden/core/counters.py): a network becomes an
-- actor of its own once two addresses use it. The key shares the network actor's hash tag.
--
-- KEYS[1]  string: the pseudonym of the first address seen in the network, or "*" once shared
-- ARGV[1]  the address's pseudonym ("*": the caller knows the network is shared), ARGV[2] how long the note outlives the network's last
--          request (milliseconds)
-- Returns: 1 when the network is shared, else 0.

local first = redis.call("GET", KEYS[1])
if not first then
  redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
  return 0
end
redis.call("PEXPIRE", KEYS[1], ARGV[2])
if first == ARGV[1] then return 0 end
if first ~= "*" then redis.call("SET", KEYS[1], "*", "PX", ARGV[2]) end
return 1
