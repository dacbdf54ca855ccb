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
local ttl_ms = @TTL_SECONDS@ * 1000
local trap_memory = @TRAP_MEMORY_SECONDS@
local ORDER_SIZE, MAX_STEP = 24, 8

-- All scalar state in one read and (below) one write: each redis.call costs about a microsecond.
local FIELDS = {"rw", "rc", "rp", "assets", "pages", "trap", "sm", "sh", "sd",
                "mw", "mp", "mx", "hw", "hp", "hx", "dw", "dp", "dx", "lk", "li", "ln", "os", "oa", "on"}
local got = redis.call("HMGET", h, unpack(FIELDS))
local st = {}
for i, name in ipairs(FIELDS) do st[name] = got[i] end
local function n(name, default)
  return tonumber(st[name] or default) or default
end
local out = {}  -- fields to write back

-- requests per minute
local period = 60
local window = math.floor(now / period)
local rw, rc, rp = n("rw", -1), n("rc", 0), n("rp", 0)
if window ~= rw then
  if window == rw + 1 then rp = rc else rp = 0 end
  rc = 0
end
rc = rc + 1
local per_minute = rc
if rp > 0 then per_minute = rc + rp * (1 - (now % period) / period) end
out[#out + 1] = "rw"; out[#out + 1] = window
out[#out + 1] = "rc"; out[#out + 1] = rc
out[#out + 1] = "rp"; out[#out + 1] = rp

local assets, pages = n("assets", 0), n("pages", 0)
if asset then
  assets = assets + 1; out[#out + 1] = "assets"; out[#out + 1] = assets
elseif page then
  pages = pages + 1; out[#out + 1] = "pages"; out[#out + 1] = pages
end
local trapped = n("trap", 0)
if trap and is_ip then
  trapped = now + trap_memory
  out[#out + 1] = "trap"; out[#out + 1] = string.format("%.3f", trapped)
end

-- distinct records in a sliding window: an exact set while small ("x" = 0), then a HyperLogLog
local function distinct(prefix, p, set_key, hll_key)
  local w = math.floor(now / p)
  local cw, prev, hll = n(prefix .. "w", -1), n(prefix .. "p", 0), n(prefix .. "x", 0) == 1
  if w ~= cw then
    if w == cw + 1 then
      if hll then prev = redis.call("PFCOUNT", hll_key) else prev = redis.call("SCARD", set_key) end
    else
      prev = 0
    end
    redis.call("DEL", set_key, hll_key)
    hll = false
    out[#out + 1] = prefix .. "w"; out[#out + 1] = w
    out[#out + 1] = prefix .. "p"; out[#out + 1] = prev
    out[#out + 1] = prefix .. "x"; out[#out + 1] = 0
  end
  local count
  if hll then
    redis.call("PFADD", hll_key, record)
    count = redis.call("PFCOUNT", hll_key)
    redis.call("PEXPIRE", hll_key, ttl_ms)
  else
    if redis.call("SADD", set_key, record) == 1 then redis.call("PEXPIRE", set_key, ttl_ms) end
    count = redis.call("SCARD", set_key)
    if count > exact_limit then
      redis.call("PFADD", hll_key, unpack(redis.call("SMEMBERS", set_key)))
      redis.call("DEL", set_key)
      redis.call("PEXPIRE", hll_key, ttl_ms)
      count = redis.call("PFCOUNT", hll_key)
      out[#out + 1] = prefix .. "x"; out[#out + 1] = 1
    end
  end
  if prev > 0 then return count + prev * (1 - (now % p) / p) end
  return count
end

local seen_minute, seen_hour, seen_day = n("sm", 0), n("sh", 0), n("sd", 0)
local pairs_n, steps, asc = n("on", 0), n("os", 0), n("oa", 0)
if record ~= "" then
  seen_hour = distinct("h", 3600, KEYS[5], KEYS[6])
  seen_day = distinct("d", 86400, KEYS[7], KEYS[8])
  if is_account then seen_minute = distinct("m", 60, KEYS[3], KEYS[4]) end
  out[#out + 1] = "sm"; out[#out + 1] = tostring(seen_minute)
  out[#out + 1] = "sh"; out[#out + 1] = tostring(seen_hour)
  out[#out + 1] = "sd"; out[#out + 1] = tostring(seen_day)

  -- order tracker: how this id relates to the previous one of the same kind
  local lkind, lid, lnum = st["lk"] or "", st["li"] or "", n("ln", -1)
  local num = -1
  if string.match(rid, "^%d+$") and string.len(rid) < 19 then num = tonumber(rid) end
  if rkind == lkind and rid ~= lid then
    local cls = 0
    if num >= 0 and lnum >= 0 then
      local delta = num - lnum
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
    redis.call("PEXPIRE", KEYS[2], ttl_ms)
    out[#out + 1] = "os"; out[#out + 1] = steps
    out[#out + 1] = "oa"; out[#out + 1] = asc
    out[#out + 1] = "on"; out[#out + 1] = pairs_n
  end
  out[#out + 1] = "lk"; out[#out + 1] = rkind
  out[#out + 1] = "li"; out[#out + 1] = rid
  out[#out + 1] = "ln"; out[#out + 1] = num
end
redis.call("HSET", h, unpack(out))
redis.call("PEXPIRE", h, ttl_ms)

local step_f, asc_f = 0, 0
if pairs_n > 0 then step_f, asc_f = steps / pairs_n, asc / pairs_n end
return {
  tostring(per_minute), tostring(pages), tostring(assets), tostring(trapped),
  tostring(seen_minute), tostring(seen_hour), tostring(seen_day),
  tostring(pairs_n), tostring(step_f), tostring(asc_f),
}
