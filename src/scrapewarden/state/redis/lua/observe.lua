-- Count one request for each of its actors and answer with each actor's counts.
--
-- The Redis twin of ActorState.observe (src/scrapewarden/core/counters.py): the same sliding
-- windows (a fixed current window plus the previous one weighted by its overlap), the same
-- distinct-record budgets (an exact set up to EXACT_LIMIT members, then a HyperLogLog), the same
-- order tracker. All keys of one actor share one hash tag, so this runs on Redis Cluster too.
--
-- Cost matters more than anything here: this runs for every actor of every request, and each
-- redis.call costs about a microsecond. So the actor's scalars live in one MessagePack string
-- (one GET, one SET, instead of a hash's many fields); a set's size is kept with the scalars
-- instead of asked for (SCARD); expiries are refreshed once a minute, not on every request; the
-- order tracker's last pairs are a short string, not a list key. And one call serves all the
-- actors of a request when their keys live on one server (on a Cluster, one call per actor).
--
-- Per actor, seven keys (KEYS[7*i+1 .. 7*i+7]):
--   string  scalars (MessagePack array, see the positions below)
--   distinct records: minute set, minute HLL, hour set, hour HLL, day set, day HLL
-- ARGV[1]: "now flags record kind": flags are three 0/1 digits (asset, page, trap); record is
--          the record's hash, or "-" for none
-- ARGV[2]: the record id (may contain spaces, so on its own)
-- ARGV[3]: one letter per actor: "i" an address, "a" an account, "o" any other kind
-- The constants below are filled in from Python when the script is loaded (@NAME@).
-- Returns one string per call: for each actor a line of counts separated by spaces —
-- per_minute, pages, assets, trapped_until, seen_minute, seen_hour, seen_day, order pairs,
-- order steps, order ascending.

local now_s, flags, record, rkind = string.match(ARGV[1], "^(%S+) (%d%d%d) (%S+) ?(.*)$")
local now = tonumber(now_s)
local byte = string.byte
local asset, page, trap = byte(flags, 1) == 49, byte(flags, 2) == 49, byte(flags, 3) == 49
local rid = ARGV[2]
local exact_limit = @EXACT_LIMIT@
local ttl_ms = @TTL_SECONDS@ * 1000
local trap_memory = @TRAP_MEMORY_SECONDS@
local ORDER_SIZE, MAX_STEP = 24, 8

-- Positions in the scalars' array.
local RW, RC, RP, ASSETS, PAGES, TRAP, SM, SH, SD = 1, 2, 3, 4, 5, 6, 7, 8, 9
local LK, LI, LN, OQ, OS, OA = 10, 11, 12, 13, 14, 15
-- per distinct window (minute 16.., hour 20.., day 24..): window, previous count, is HLL, count
local M, H, D = 16, 20, 24
local SIZE = 27

-- Distinct records in a sliding window: an exact set while small (is HLL = 0), then a
-- HyperLogLog. Returns the sliding estimate and whether the record was new in this window
-- (always true once a HyperLogLog, which cannot tell).
local function distinct(s, at, p, set_key, hll_key)
  local w = math.floor(now / p)
  if w ~= s[at] then
    if w == s[at] + 1 then s[at + 1] = s[at + 3] else s[at + 1] = 0 end
    if s[at] >= 0 then redis.call("DEL", set_key, hll_key) end
    s[at], s[at + 2], s[at + 3] = w, 0, 0
  end
  local added = true
  if s[at + 2] == 1 then
    if redis.call("PFADD", hll_key, record) == 1 then s[at + 3] = redis.call("PFCOUNT", hll_key) end
  else
    added = redis.call("SADD", set_key, record) == 1
    if added then
      local count = s[at + 3] + 1
      if count == 1 then redis.call("PEXPIRE", set_key, ttl_ms) end
      if count > exact_limit then
        redis.call("PFADD", hll_key, unpack(redis.call("SMEMBERS", set_key)))
        redis.call("DEL", set_key)
        redis.call("PEXPIRE", hll_key, ttl_ms)
        count = redis.call("PFCOUNT", hll_key)
        s[at + 2] = 1
      end
      s[at + 3] = count
    end
  end
  local prev = s[at + 1]
  if prev > 0 then return s[at + 3] + prev * (1 - (now % p) / p), added end
  return s[at + 3], added
end

-- Count the request for the actor whose keys start after KEYS[k]; its counts as one line.
local function count(k, is_ip, is_account)
  local packed = redis.call("GET", KEYS[k + 1])
  local s
  if packed then s = cmsgpack.unpack(packed) end
  if not s or #s ~= SIZE then
    s = {-1, 0, 0, 0, 0, 0, 0, 0, 0, "", "", -1, "", 0, 0, -1, 0, 0, 0, -1, 0, 0, 0, -1, 0, 0, 0}
  end

  -- requests per minute
  local period = 60
  local window = math.floor(now / period)
  local refresh = false
  if window ~= s[RW] then
    if window == s[RW] + 1 then s[RP] = s[RC] else s[RP] = 0 end
    s[RC] = 0
    s[RW] = window
    refresh = true  -- once a minute is often enough to keep a two-day expiry alive
  end
  s[RC] = s[RC] + 1
  local per_minute = s[RC]
  if s[RP] > 0 then per_minute = s[RC] + s[RP] * (1 - (now % period) / period) end

  if asset then s[ASSETS] = s[ASSETS] + 1 elseif page then s[PAGES] = s[PAGES] + 1 end
  if trap and is_ip then s[TRAP] = now + trap_memory end

  if record ~= "-" then
    -- Hour windows nest inside day windows: a record already counted this hour is already
    -- counted today, so the common "viewed it again" case skips the day (as in process).
    local seen_hour, added = distinct(s, H, 3600, KEYS[k + 4], KEYS[k + 5])
    if added then
      s[SH] = seen_hour
      s[SD] = distinct(s, D, 86400, KEYS[k + 6], KEYS[k + 7])
    end
    if is_account then s[SM] = distinct(s, M, 60, KEYS[k + 2], KEYS[k + 3]) end

    -- order tracker: how this id relates to the previous one of the same kind
    local num = -1
    if string.match(rid, "^%d+$") and string.len(rid) < 19 then num = tonumber(rid) end
    if rkind == s[LK] and rid ~= s[LI] then
      local cls = 0
      local lnum = s[LN]
      if num >= 0 and lnum >= 0 then
        local delta = num - lnum
        if delta >= -MAX_STEP and delta <= MAX_STEP then
          cls = 1
          if delta > 0 then cls = 3 end
        elseif delta > 0 then
          cls = 2
        end
      elseif rid > s[LI] then
        cls = 2
      end
      local q = s[OQ] .. cls
      if cls % 2 == 1 then s[OS] = s[OS] + 1 end
      if cls >= 2 then s[OA] = s[OA] + 1 end
      if #q > ORDER_SIZE then
        local old = byte(q, 1) - 48
        if old % 2 == 1 then s[OS] = s[OS] - 1 end
        if old >= 2 then s[OA] = s[OA] - 1 end
        q = string.sub(q, 2)
      end
      s[OQ] = q
    end
    s[LK], s[LI], s[LN] = rkind, rid, num
  end

  if refresh then
    redis.call("SET", KEYS[k + 1], cmsgpack.pack(s), "PX", ttl_ms)
  else
    redis.call("SET", KEYS[k + 1], cmsgpack.pack(s), "KEEPTTL")
  end

  local pairs_n = #s[OQ]
  local step_f, asc_f = 0, 0
  if pairs_n > 0 then step_f, asc_f = s[OS] / pairs_n, s[OA] / pairs_n end
  return string.format("%.17g %d %d %.17g %.17g %.17g %.17g %d %.17g %.17g",
    per_minute, s[PAGES], s[ASSETS], s[TRAP], s[SM], s[SH], s[SD], pairs_n, step_f, asc_f)
end

local kinds = ARGV[3]
local lines = {}
for i = 1, #kinds do
  local c = byte(kinds, i)
  lines[i] = count(7 * (i - 1), c == 105, c == 97)  -- "i", "a"
end
return table.concat(lines, "\n")
