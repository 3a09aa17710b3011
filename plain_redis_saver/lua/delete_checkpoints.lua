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
-- Reply: {cursor, removed, collect}: cursor "0" when the work is done, otherwise the
-- value to pass as ARGV[3] ("runs") or any non-"0" marker ("keep") to continue; collect
-- 1 when checkpoints were removed from an uncounted thread (see UNCOUNTED in
-- includes/common.lua) that still holds some, else 0: the caller then collects it, as
-- these removals are maintenance, not a turn. Bounding each call keeps the server
-- responsive while a thread of any length is cleaned.
-- Removed checkpoints take their pending writes and unreferenced channel values along
-- (those of an uncounted thread go at its collection; a thread left with neither
-- checkpoints nor pending writes loses its values hash whole at once).

local mode, budget = ARGV[1], tonumber(ARGV[2])
local removed = 0
local uncounted = thread_uncounted()

-- The thread's state after `removed` removals: the garbage counted, the generation
-- moved; whether the caller is to collect it.
local function removals_done()
  if removed == 0 then
    return 0
  end
  if uncounted then
    if not exists(KEYS[1]) and not exists(KEYS[4]) then
      rcall('UNLINK', KEYS[3])  -- nothing left that any read reaches; the generation too
      return 0
    end
    rcall('HINCRBY', KEYS[3], GARBAGE, removed)
    bump_generation()
    return 1
  end
  bump_generation()
  return 0
end

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
            string.sub(member, after), uncounted)
          break
        end
      end
    else
      record_missing(member)
    end
  end
  local collect = removals_done()
  touch()
  return {#members < budget and '0' or members[#members], removed, collect}
elseif mode == 'keep' then
  local keep = tonumber(ARGV[3])
  local more = false
  for _, ns in ipairs(namespaces()) do
    local n, left = keep_newest(checked_namespace(ns), keep, budget - removed, uncounted)
    removed = removed + n
    more = more or left
  end
  local collect = removals_done()
  touch()
  return {more and '1' or '0', removed, collect}
end
return fail('plain_redis_saver: unknown delete mode ' .. mode)
