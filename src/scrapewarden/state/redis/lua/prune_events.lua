-- Delete events older than ARGV[1] from the head of the stream, at most ARGV[2] per call.
-- KEYS: 1 the stream. Events arrive in about time order, so pruning stops at the first one
-- still inside the retention period (one stamped early by a lagging clock waits for the rest).
-- Returns how many were deleted (the caller repeats while a whole chunk went).
local entries = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', ARGV[2])
local before = tonumber(ARGV[1])
local n = 0
local keep_from = nil
for _, entry in ipairs(entries) do
  local fields, ts = entry[2], nil
  for k = 1, #fields, 2 do
    if fields[k] == 'ts' then ts = tonumber(fields[k + 1]) break end
  end
  if ts ~= nil and ts >= before then keep_from = entry[1] break end
  n = n + 1
end
if n == 0 then return 0 end
if keep_from == nil then
  local last = entries[n][1]
  keep_from = (tonumber(string.match(last, '^(%d+)')) + 1) .. '-0'
end
redis.call('XTRIM', KEYS[1], 'MINID', keep_from)
return n
