-- Append a batch of events to the stream, each with the next integer id.
-- KEYS: 1 the stream, 2 the id counter, 3 this batch's marker (all {prefix:events}).
-- ARGV: 1 MAXLEN (approximate trim), 2 seconds the batch marker lives, then per event:
--       the number of field/value pairs, followed by the pairs.
-- An event's id N is stored as stream id "N-0", so readers map ids both ways exactly.
-- A batch already written (its marker exists) is skipped: a batch retried after a timeout
-- whose reply was lost is not stored twice. Returns how many events were appended.
if not redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[2]) then return 0 end
local i = 3
local n = 0
while i <= #ARGV do
  local count = tonumber(ARGV[i])
  local id = redis.call('INCR', KEYS[2])
  local args = {'XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], id .. '-0'}
  for j = i + 1, i + 2 * count do args[#args + 1] = ARGV[j] end
  local ok = redis.pcall(unpack(args))
  if type(ok) == 'table' and ok.err then
    -- The counter fell behind the stream (it was deleted or restored apart): catch up.
    local info = redis.call('XINFO', 'STREAM', KEYS[1])
    for k = 1, #info, 2 do
      if info[k] == 'last-generated-id' then
        id = tonumber(string.match(info[k + 1], '^(%d+)')) + 1
      end
    end
    redis.call('SET', KEYS[2], id)
    args[6] = id .. '-0'
    redis.call(unpack(args))
  end
  i = i + 1 + 2 * count
  n = n + 1
end
return n
