-- delete_checkpoints: remove checkpoints of one thread, a bounded slice per call.
--
-- KEYS[1..5]  the thread's keys (see includes/common.lua)
-- ARGV[1]     mode: "runs" or "keep"
-- ARGV[2]     budget: most checkpoints to examine ("runs") or remove ("keep") in this call
-- "runs":  ARGV[3] HSCAN cursor ("0" to start); ARGV[4..] metadata digests of run ids:
--          removes the checkpoints whose metadata run_id is one of them.
-- "keep":  ARGV[3] N: keeps the newest N checkpoints of every namespace, removes older.
--
-- Reply: {cursor, removed}: cursor "0" when the work is done, otherwise the value to
-- pass as ARGV[3] ("runs") or any non-"0" marker ("keep") to continue. Bounding each
-- call keeps the server responsive while a thread of any length is cleaned.
-- Removed checkpoints take their pending writes and unreferenced channel values along.

local mode, budget = ARGV[1], tonumber(ARGV[2])
local removed = 0

if mode == 'runs' then
  local runs = {}
  for i = 4, #ARGV do
    runs[ARGV[i]] = true
  end
  local scan = rcall('HSCAN', KEYS[1], ARGV[3], 'COUNT', budget)
  local items = scan[2]
  for i = 1, #items, 2 do
    local index = record_index(items[i + 1], items[i])
    for j = 1, #index, 2 do
      if index[j] == 'run_id' and runs[index[j + 1]] then
        local _, after = read_netstring(items[i], 1)
        removed = removed + remove_checkpoint(string.sub(items[i], 1, after - 1),
          string.sub(items[i], after))
        break
      end
    end
  end
  if removed > 0 then
    bump_generation()
  end
  touch()
  return {scan[1], removed}
elseif mode == 'keep' then
  local keep = tonumber(ARGV[3])
  local more = false
  for _, ns in ipairs(namespaces()) do
    local n, left = keep_newest(ns, keep, budget - removed)
    removed = removed + n
    more = more or left
  end
  if removed > 0 then
    bump_generation()
  end
  touch()
  return {more and '1' or '0', removed}
end
return error('plain_redis_saver: unknown delete mode ' .. mode)
