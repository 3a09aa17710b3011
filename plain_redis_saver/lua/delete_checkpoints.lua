-- delete_checkpoints: remove checkpoints of one thread by run or by age.
--
-- KEYS[1..5]  the thread's keys (see includes/common.lua)
-- ARGV[1]     mode: "runs" removes checkpoints whose metadata run_id is one of
--             ARGV[2..] (canonical values); "keep_latest" keeps only the newest
--             checkpoint of every namespace
--
-- Reply: number of checkpoints removed. Their pending writes go with them, and
-- channel values no remaining checkpoint of the namespace references are freed.

local mode = ARGV[1]
local doomed = {}
if mode == 'runs' then
  local runs = {}
  for i = 2, #ARGV do
    runs[ARGV[i]] = true
  end
  local records = rcall('HGETALL', KEYS[1])
  for i = 1, #records, 2 do
    local _, _, index = record_header(records[i + 1], records[i])
    for j = 1, #index, 2 do
      if index[j] == 'run_id' and runs[index[j + 1]] then
        doomed[#doomed + 1] = records[i]
        break
      end
    end
  end
elseif mode == 'keep_latest' then
  for _, ns in ipairs(rcall('HKEYS', KEYS[5])) do
    local members = rcall('ZREVRANGEBYLEX', KEYS[2], '(' .. ns .. '\255', '(' .. ns)
    for i = 2, #members do
      doomed[#doomed + 1] = members[i]
    end
  end
else
  return error('plain_redis_saver: unknown delete mode ' .. mode)
end

local touched = {}
local removed = 0
for _, field in ipairs(doomed) do
  local _, after = read_netstring(field, 1)
  local ns = string.sub(field, 1, after - 1)
  removed = removed + remove_checkpoint(ns, string.sub(field, after))
  touched[ns] = true
end
if removed > 0 then
  collect_blobs(touched)
end
return removed
