-- Count one request for one actor and answer with the actor's counts.
--
-- The Redis twin of ActorState.observe (src/scrapewarden/core/counters.py): the same sliding
-- windows (a fixed current window plus the previous one weighted by its overlap), the same
-- distinct-record budgets (an exact set up to EXACT_LIMIT members, then a HyperLogLog), the same
-- order tracker. All keys of one actor share one hash tag, so this runs on Redis Cluster too.
--
-- KEYS[1]  hash   scalar state
-- KEYS[2]  list   order-tracker pair classes (at most ORDER_SIZE)
-- KEYS[3..8]      distinct records: minute set, minute HLL, hour set, hour HLL, day set, day HLL
-- ARGV[1]: "now flags record kind": flags are four 0/1 digits (asset, page, trap, is_ip) and a
--          fifth (is_account); record is the record's hash, or "-" for none
-- ARGV[2]: the record id (may contain spaces, so on its own)
-- The constants below are filled in from Python when the script is loaded (@NAME@).
-- Returns: per_minute, pages, assets, trapped_until, seen_minute, seen_hour, seen_day,
--          order pairs, order steps, order ascending — as strings (Lua numbers would be truncated).

local h = KEYS[1]
local now_s, flags, record, rkind = string.match(ARGV[1], "^(%S+) (%d%d%d%d%d) (%S+) ?(.*)$")
local now = tonumber(now_s)
local asset, page, trap = string.sub(flags, 1, 1) == "1", string.sub(flags, 2, 2) == "1", string.sub(flags, 3, 3) == "1"
local is_ip, is_account = string.sub(flags, 4, 4) == "1", string.sub(flags, 5, 5) == "1"
if record == "-" then record = "" end
local rid = ARGV[2]
local exact_limit = @EXACT_LIMIT@
local ttl = @TTL_SECONDS@
local trap_memory = @TRAP_MEMORY_SECONDS@
local ORDER_SIZE, MAX_STEP = 24, 8

local function num(field)
  return tonumber(redis.call("HGET", h, field) or "0") or 0
end

-- requests per minute
local period = 60
local window = math.floor(now / period)
local rw = tonumber(redis.call("HGET", h, "rw") or "-1")
local rc, rp = num("rc"), num("rp")
if window ~= rw then
  if window == rw + 1 then rp = rc else rp = 0 end
  rc = 0
end
rc = rc + 1
local per_minute = rc
if rp > 0 then per_minute = rc + rp * (1 - (now % period) / period) end
redis.call("HSET", h, "rw", window, "rc", rc, "rp", rp)

local assets, pages = num("assets"), num("pages")
if asset then
  assets = redis.call("HINCRBY", h, "assets", 1)
elseif page then
  pages = redis.call("HINCRBY", h, "pages", 1)
end
local trapped = num("trap")
if trap and is_ip then
  trapped = now + trap_memory
  redis.call("HSET", h, "trap", string.format("%.3f", trapped))
end

-- distinct records in a sliding window; set_key/hll_key hold the current window
local function distinct(prefix, p, set_key, hll_key)
  local w = math.floor(now / p)
  local cw = tonumber(redis.call("HGET", h, prefix .. "w") or "-1")
  local prev = tonumber(redis.call("HGET", h, prefix .. "p") or "0") or 0
  if w ~= cw then
    if w == cw + 1 then
      if redis.call("EXISTS", hll_key) == 1 then prev = redis.call("PFCOUNT", hll_key)
      else prev = redis.call("SCARD", set_key) end
    else
      prev = 0
    end
    redis.call("DEL", set_key, hll_key)
    redis.call("HSET", h, prefix .. "w", w, prefix .. "p", prev)
  end
  local count
  if redis.call("EXISTS", hll_key) == 1 then
    redis.call("PFADD", hll_key, record)
    count = redis.call("PFCOUNT", hll_key)
  else
    redis.call("SADD", set_key, record)
    count = redis.call("SCARD", set_key)
    if count > exact_limit then
      redis.call("PFADD", hll_key, unpack(redis.call("SMEMBERS", set_key)))
      redis.call("DEL", set_key)
      count = redis.call("PFCOUNT", hll_key)
    end
  end
  redis.call("PEXPIRE", set_key, ttl * 1000)
  redis.call("PEXPIRE", hll_key, ttl * 1000)
  if prev > 0 then return count + prev * (1 - (now % p) / p) end
  return count
end

local seen_minute, seen_hour, seen_day = num("sm"), num("sh"), num("sd")
local pairs_n = redis.call("LLEN", KEYS[2])
local steps, asc = num("os"), num("oa")
if record ~= "" then
  seen_hour = distinct("h", 3600, KEYS[5], KEYS[6])
  seen_day = distinct("d", 86400, KEYS[7], KEYS[8])
  if is_account then seen_minute = distinct("m", 60, KEYS[3], KEYS[4]) end
  redis.call("HSET", h, "sm", tostring(seen_minute), "sh", tostring(seen_hour), "sd", tostring(seen_day))

  -- order tracker: how this id relates to the previous one of the same kind
  local lkind = redis.call("HGET", h, "lk") or ""
  local lid = redis.call("HGET", h, "li") or ""
  local lnum = tonumber(redis.call("HGET", h, "ln") or "-1")
  local n = -1
  if string.match(rid, "^%d+$") and string.len(rid) < 19 then n = tonumber(rid) end
  if rkind == lkind and rid ~= lid then
    local cls = 0
    if n >= 0 and lnum >= 0 then
      local delta = n - lnum
      if delta >= -MAX_STEP and delta <= MAX_STEP then
        cls = 1
        if delta > 0 then cls = 3 end
      elseif delta > 0 then
        cls = 2
      end
    elseif rid > lid then
      cls = 2
    end
    redis.call("RPUSH", KEYS[2], cls)
    if cls % 2 == 1 then steps = steps + 1 end
    if cls >= 2 then asc = asc + 1 end
    pairs_n = pairs_n + 1
    if pairs_n > ORDER_SIZE then
      local old = tonumber(redis.call("LPOP", KEYS[2]))
      if old % 2 == 1 then steps = steps - 1 end
      if old >= 2 then asc = asc - 1 end
      pairs_n = pairs_n - 1
    end
    redis.call("HSET", h, "os", steps, "oa", asc)
  end
  redis.call("HSET", h, "lk", rkind, "li", rid, "ln", n)
  redis.call("PEXPIRE", KEYS[2], ttl * 1000)
end
redis.call("PEXPIRE", h, ttl * 1000)

local step_f, asc_f = 0, 0
if pairs_n > 0 then step_f, asc_f = steps / pairs_n, asc / pairs_n end
return {
  tostring(per_minute), tostring(pages), tostring(assets), tostring(trapped),
  tostring(seen_minute), tostring(seen_hour), tostring(seen_day),
  tostring(pairs_n), tostring(step_f), tostring(asc_f),
}
