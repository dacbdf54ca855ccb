-- Mark KEYS[1] used until ARGV[1]; 1 the first time, 0 while an earlier mark is alive.
-- ARGV: 1 until, 2 now (the caller's clock, as for every store), 3 milliseconds to keep
-- the mark (until - now), after which Redis forgets it by itself.
local alive = redis.call('GET', KEYS[1])
if alive and tonumber(alive) > tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
