-- put_writes: store the pending writes of one task against one checkpoint.
--
-- KEYS[1..5]  the thread's keys (see includes/common.lua)
-- ARGV[1]     base: NS..netstring(checkpoint id)
-- ARGV[2]     netstring(task id)
-- ARGV[3]     retention: the saver's max_checkpoints N ("" = all kept)
-- ARGV[4]     the claim ("" = none): as put_checkpoint's, it lets an uncounted thread's
--             call store the content sent without looking for the rest
-- ARGV[5..]   pairs of write index (decimal, negative for special channels) and value,
--             and of CONTENT..digest and content that composed values reference (see
--             includes/common.lua), sent when the client does not know it stored
--
-- Reply: 2 * G + R, G being the thread's write generation after the call when the call
-- changed the thread (it moved from G - 1; see client_has), else 0, and R 1 if the
-- claim failed.
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

-- Created only when a call needs them (see plain_redis_saver.scripts): the release of
-- replaced values and the counted threads' helpers.
-- cold: release_refs plan_reads plan_counts plan_rows
-- And the content check's, which a claim that holds does without.
-- cold: composed_refs content_reads content_rows sent_map

local ORPHAN_TTL_MS = 24 * 3600 * 1000

local base, task, keep, claim = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
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
local rows, sent_rows = take_content(5)
local uncounted, marking = thread_uncounted()
-- One read of KEYS[4] serves every decision on the writes: which are stored already (a
-- regular write never replaces one) and the head of the checkpoint's write index. The
-- client sends each field once (of a special channel, its last write).
local fields = {}
for i = 1, #rows, 2 do
  fields[#fields + 1] = base .. task .. rows[i]
end
local n = #fields
fields[n + 1] = base
local current = hmget(KEYS[4], fields)
local head = current[n + 1]
local stores, added, values, replaced = {}, {}, {}, {}
local changed, any = false, false
-- An uncounted thread's call stores or finds the content of every composed value it
-- is sent, stored already or not: after the call, all the content the client named is
-- there (it may claim it next time).
local every = uncounted and {}
for j = 1, n do
  local special = tonumber(rows[2 * j - 1]) < 0
  if special or not current[j] then
    local value = rows[2 * j]
    stores[#stores + 1] = fields[j]
    stores[#stores + 1] = value
    values[j] = value
    any = any or is_composed(value)
    if not current[j] then
      added[#added + 1] = netstring(task .. rows[2 * j - 1])
    end
    if special then
      changed = true
      if is_composed(current[j]) then
        replaced[#replaced + 1] = current[j]
      end
    end
  else
    values[j] = false
  end
  if every then
    every[j] = rows[2 * j]
    any = any or is_composed(every[j])
  end
end
-- Composed values count their references when stored: a regular write only if it is
-- new, a special one always (the value it replaces releases its own). Planned before
-- anything is written, so a call refused for missing content changes nothing; the
-- counts are read with the write generation, and written with it.
-- The references of replaced values are released last, after the new ones are
-- counted: content both share must not be freed in between.
-- An uncounted thread (see UNCOUNTED in includes/common.lua) reads the content itself,
-- not its counts (none when its claim holds, see put_checkpoint.lua), and a replaced
-- value adds to the garbage instead of releasing.
local plan, generation, old_refs, content
local claimed, refused, kept = false, 0, nil
if any and uncounted and claim ~= '' then
  local got = hmget(KEYS[3], {GENERATION, KEPT_SINCE})
  kept = got[2]
  if claim_holds(claim, kept, got[1]) then
    claimed = true
    generation = next_generation(got[1])
    content = sent_rows
  else
    refused = 1
  end
end
if any and not claimed then
  local names = {GENERATION, KEPT_SINCE}
  local sent = sent_map(sent_rows)
  if uncounted then
    local refs = composed_refs(every, n, fields, 'the script arguments')
    local reads = content_reads(refs, sent, names)
    local got = hmget(KEYS[3], names)
    generation = next_generation(got[1])
    kept = got[2]
    content = content_rows(refs, sent, reads, got, {})
  else
    local refs = composed_refs(values, n, fields, 'the script arguments')
    local reads = plan_reads(refs, sent, names)
    local counts = hmget(KEYS[3], names)
    generation = next_generation(counts[1])
    plan = plan_counts(refs, sent, reads, counts)
  end
end
if #replaced > 0 and not uncounted then
  local ok, refs = pcall(composed_refs, replaced, #replaced, nil, KEYS[4])
  old_refs = ok and refs or nil
end
if #added > 0 then
  index_rows(base, head, table.concat(added), stores)
end
hset(KEYS[4], stores)
local bump = changed or #added > 0
local updates = plan and plan_rows(plan, {}) or content or {}
if marking and #added > 0 then
  updates[#updates + 1] = UNCOUNTED
  updates[#updates + 1] = 1
end
if uncounted and #replaced > 0 then
  rcall('HINCRBY', KEYS[3], GARBAGE, 1)
end
if #added > 0 and not head then
  -- An index already there means its writes set the mark (a lost mark is damage that
  -- reads report).
  updates[#updates + 1] = WRITES_MARK
  updates[#updates + 1] = 1
end
local read_generation = plan or content
if bump and read_generation then
  updates[#updates + 1] = GENERATION
  updates[#updates + 1] = generation
  if content and not kept then
    updates[#updates + 1] = KEPT_SINCE
    updates[#updates + 1] = generation
  end
end
hset(KEYS[3], updates)
local after
if bump and not read_generation then
  after = bump_generation(true)  -- the writes just stored keep KEYS[4] alive
elseif bump then
  after = generation
end
if old_refs then
  release_refs(old_refs)
end
touch()
if TTL == '0' and not exists(KEYS[1]) then
  rcall('PEXPIRE', KEYS[3], ORPHAN_TTL_MS)
  rcall('PEXPIRE', KEYS[4], ORPHAN_TTL_MS)
end
return 2 * (after or 0) + refused
