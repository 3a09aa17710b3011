-- put_writes: store the pending writes of one task against one checkpoint.
--
-- KEYS[1..5]  the thread's keys (see includes/common.lua)
-- ARGV[1]     base: NS..netstring(checkpoint id)
-- ARGV[2]     netstring(task id)
-- ARGV[3]     retention: the saver's max_checkpoints N ("" = all kept)
-- ARGV[4..]   pairs of write index (decimal, negative for special channels) and value,
--             and of CONTENT..digest and content that composed values reference (see
--             includes/common.lua), sent when the client does not know it stored
--
-- Reply: number of writes newly stored.
-- A regular write (index >= 0) never replaces a stored one: a retried task must not
-- change what was recorded. Special channels (negative index: error, interrupt,
-- scheduled, resume) take the latest value, as LangGraph's WRITES_IDX_MAP requires.
-- The checkpoint need not exist yet (LangGraph may store a task's writes before the
-- checkpoint's put completes). Writes to a thread that holds no checkpoint at all, for
-- one a thread just deleted, expire after ORPHAN_TTL_MS unless the thread has a ttl of
-- its own: a checkpoint stored in time removes that expiry (touch), and writes that
-- arrive after delete_thread do not stay behind for good.

-- With retention, writes for a checkpoint that is not stored and is older than the
-- oldest one kept are dropped: LangGraph may send a task's writes after the next
-- checkpoint's put, which removed their checkpoint (puts of one run are chained, so a
-- newer checkpoint means this one's put has completed); were its put still to come,
-- retention would remove it at once. Stored, such writes would never be removed.

local ORPHAN_TTL_MS = 24 * 3600 * 1000

local base, task, keep = ARGV[1], ARGV[2], ARGV[3]
if keep ~= '' then
  local _, after = read_netstring(base, 1, 'write base', base, 'ARGV')
  local ns = string.sub(base, 1, after - 1)
  local member = ns .. read_netstring(base, after, 'write base', base, 'ARGV')
  if rcall('HEXISTS', KEYS[1], member) == 0 then
    local kept = rcall('ZREVRANGEBYLEX', KEYS[2], '(' .. ns .. '\255', '(' .. ns, 'LIMIT',
      tonumber(keep) - 1, 1)
    if #kept == 1 and bytes_less(member, kept[1]) then
      return 0
    end
  end
end
local sent, rows = take_content(4)
-- Composed values count their references when stored: a regular write only if it is
-- new, a special one always (the value it replaces releases its own). Planned before
-- anything is written, so a call refused for missing content changes nothing.
-- The references of replaced values are released last, after the new ones are
-- counted: content both share must not be freed in between.
local fields, replaced, values = {}, {}, {}
local look = false
for i = 1, #rows, 2 do
  fields[#fields + 1] = base .. task .. rows[i]
  look = look or is_composed(rows[i + 1]) or tonumber(rows[i]) < 0
end
local plan, old_refs
if look then
  local current = hmget(KEYS[4], fields)
  local any = false
  for j = 1, #fields do
    local special = tonumber(rows[2 * j - 1]) < 0
    if special and is_composed(current[j]) then
      replaced[#replaced + 1] = current[j]
    end
    values[j] = (special or not current[j]) and rows[2 * j]
    any = any or is_composed(values[j])
  end
  if any then
    plan = plan_refs(composed_refs(values, #fields, fields, 'the script arguments'), sent)
  end
  if #replaced > 0 then
    local ok, refs = pcall(composed_refs, replaced, #replaced, nil, KEYS[4])
    old_refs = ok and refs or nil
  end
end
if plan then
  apply_refs(plan)
end
local added = {}
local changed = false
for i = 1, #rows, 2 do
  local sub = task .. rows[i]
  local stored
  if tonumber(rows[i]) < 0 then
    stored = rcall('HSET', KEYS[4], base .. sub, rows[i + 1])
    changed = true
  else
    stored = rcall('HSETNX', KEYS[4], base .. sub, rows[i + 1])
  end
  if stored == 1 then
    added[#added + 1] = netstring(sub)
  end
end
if old_refs then
  release_refs(old_refs)
end
if #added > 0 then
  -- An index already there means its writes set the mark (a lost mark is damage that
  -- reads report).
  if append_index(base, table.concat(added)) then
    rcall('HSET', KEYS[3], WRITES_MARK, 1)
  end
end
if changed or #added > 0 then
  bump_generation(true)  -- the writes just stored keep KEYS[4] alive
end
touch()
if TTL == '0' and not exists(KEYS[1]) then
  rcall('PEXPIRE', KEYS[3], ORPHAN_TTL_MS)
  rcall('PEXPIRE', KEYS[4], ORPHAN_TTL_MS)
end
return #added
