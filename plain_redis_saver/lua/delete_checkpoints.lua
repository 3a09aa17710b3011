-- delete_checkpoints: remove checkpoints of one thread, a bounded slice per call.
--
-- KEYS[1..5]  the thread's keys (see includes/common.lua)
-- ARGV[1]     mode: "runs" or "keep"
-- ARGV[2]     budget: most checkpoints to examine ("runs") or remove ("keep") in this call
-- "runs":  ARGV[3] cursor: "0" to start, else the last order member examined;
--          ARGV[4..] metadata digests of run ids: removes the checkpoints whose
--          metadata run_id is one of them.
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
  -- The order index is walked by member, so a call examines exactly `budget`
  -- checkpoints (HSCAN's COUNT is only a hint: it returned 4x as many on Valkey 9).
  -- Members hold a ':' (NS is a netstring), so none is the start marker "0".
  local from = ARGV[3] == '0' and '-' or '(' .. ARGV[3]
  local members = rcall('ZRANGEBYLEX', KEYS[2], from, '+', 'LIMIT', 0, budget)
  if #members == 0 and ARGV[3] == '0' then
    check_thread_intact()  -- records without an order index are damage, not "nothing"
  end
  local records = hmget(KEYS[1], members)
  for i, member in ipairs(members) do
    local record = records[i]
    if record then
      local index = record_index(record, member)
      for j = 1, #index, 2 do
        if index[j] == 'run_id' and runs[index[j + 1]] then
          local _, after = read_netstring(member, 1, 'checkpoint namespace', member, KEYS[2])
          removed = removed + remove_checkpoint(string.sub(member, 1, after - 1),
            string.sub(member, after))
          break
        end
      end
    else
      record_missing(member)
    end
  end
  if removed > 0 then
    bump_generation()
  end
  touch()
  return {#members < budget and '0' or members[#members], removed}
elseif mode == 'keep' then
  local keep = tonumber(ARGV[3])
  local more = false
  for _, ns in ipairs(namespaces()) do
    local n, left = keep_newest(checked_namespace(ns), keep, budget - removed)
    removed = removed + n
    more = more or left
  end
  if removed > 0 then
    bump_generation()
  end
  touch()
  return {more and '1' or '0', removed}
end
return fail('plain_redis_saver: unknown delete mode ' .. mode)
