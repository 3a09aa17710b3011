-- put_checkpoint: store one checkpoint and the channel values it introduces.
--
-- KEYS[1..5]  the thread's keys (see includes/common.lua)
-- ARGV[1]     NS: netstring(checkpoint_ns)
-- ARGV[2]     checkpoint id
-- ARGV[3]     record
-- ARGV[4]     retention: keep only the newest N checkpoints of the namespace ("" = all)
-- ARGV[5]     the count fields ("#"..NS..ref, see adjust) of the record's blob refs,
--             as a JSON array of strings whatever the record's format: sent apart so
--             the hot path need neither parse the record nor build the fields (an
--             uncounted thread's put does not read it)
-- ARGV[6]     the parent checkpoint id ("" = none), sent apart for the same reason
-- ARGV[7]     the claim ("" = none): a write generation at or after which the client
--             saw stored every piece of content its values reference and it does not
--             send. When it holds (see claim_holds in includes/common.lua), an uncounted
--             thread's put stores what is sent without looking for the rest; when it
--             does not, the put looks for it all, as without a claim. "*" says the
--             put sends all the content its values reference.
-- ARGV[8..]   pairs of blob field (NS..netstring(channel)..version) and blob value, and
--             of CONTENT..digest and content that composed values reference (see
--             includes/common.lua), sent when the client does not know it stored
--
-- Reply: 16 * G + 8 * R + 4 * C + 2 * W + F, G being the thread's write generation
-- after the call (it moved from G - 1), R 1 if the claim failed, C 1 if retention removed checkpoints of an uncounted thread
-- and a collection is due (see UNCOUNTED in includes/common.lua), else 0, W 1 if the
-- record is new and no pending writes were stored against it first, else 0, and F 1 if
-- every value sent is the one stored (none was stored first by another writer, with
-- other bytes), else 0: with them the client knows whether it holds what is stored (see
-- client_has). One integer: a table reply costs the server more.
-- Raises "plain_redis_saver: parent removed" and writes nothing when the parent is
-- gone from a namespace that holds newer checkpoints: the caller started from a
-- checkpoint that retention (or prune, delete_for_runs) removed, and storing this one
-- would silently start the conversation over. A parent that never was in the
-- namespace (a thread's first checkpoint, a fork into a new thread) finds no newer
-- checkpoint there, and a put repeated after its parent was removed (a retry) finds
-- its own id: both are stored as before.
-- Blobs are never overwritten: a (channel, version) names one value for good.
-- Raises "plain_redis_saver: missing content", writing nothing, when a new composed
-- value references content neither stored nor sent (the client then sends it all).
-- Retention removes at most RETENTION_BUDGET old checkpoints per call, so a put stays
-- short even when the limit was just lowered on a long thread (the next puts continue).

-- Created only when a call needs them (see plain_redis_saver.scripts): the parent
-- check's, the replace path's, retention's, the older record format's and the counted
-- threads' helpers.
-- cold: latest_id bytes_less apply_refs store_record bump_generation keep_newest
-- cold: split_netstrings add_garbage plan_reads plan_counts plan_rows
-- And the content check's, which a claim that holds does without.
-- cold: composed_refs content_reads content_rows sent_map

local RETENTION_BUDGET = 100
local ns, cid, keep, parent, claim = ARGV[1], ARGV[2], ARGV[4], ARGV[6], ARGV[7]
if parent ~= '' and rcall('HEXISTS', KEYS[1], ns .. parent) == 0
    and rcall('HEXISTS', KEYS[1], ns .. cid) == 0 then
  local newest = latest_id(ns)
  if newest and bytes_less(parent, newest) then
    return fail('plain_redis_saver: parent removed: ' .. parent)
  end
end
local rows, sent_rows = take_content(8)
local uncounted, marking = thread_uncounted()
local counted = uncounted and {}
  or refs_list(JSON_REFS, ARGV[5], 'count fields', 'the script arguments')
-- One read of KEYS[3] serves every decision: which composed values are stored already
-- (they count no references), the counts of the content the others and the sent nodes
-- reference (of a counted thread), the namespace's checkpoint count, the values'
-- counts, which blobs are stored, the write generation and KEPT_SINCE. Each call from
-- Lua costs more than the fields it reads.
local fields, first_blob = adjust_fields(ns, counted, rows, {})
fields[#fields + 1] = GENERATION
local at_generation = #fields
if uncounted then
  fields[#fields + 1] = KEPT_SINCE
end
local at_kept = at_generation + 1
-- The composed values among the rows, with the places of their fields.
local composed, values, at = {}, {}, {}
for i = 1, #rows, 2 do
  if is_composed(rows[i + 1]) then
    composed[#composed + 1] = rows[i]
    values[#values + 1] = rows[i + 1]
    at[#at + 1] = first_blob + (i - 1) / 2
  end
end
-- A counted thread's put reads the counts its plan needs with the rest; an uncounted
-- thread's reads no content when its claim (ARGV[7]) holds, and looks for it all in a
-- second read otherwise.
local reads, refs, sent
if #composed > 0 and not uncounted then
  sent = sent_map(sent_rows)
  refs = composed_refs(values, #values, composed, 'the script arguments')
  reads = plan_reads(refs, sent, fields)
end
local current = hmget(KEYS[3], fields)
local generation = next_generation(current[at_generation])
local fresh = 1
for i = 1, #rows, 2 do
  local stored = current[first_blob + (i - 1) / 2]
  if stored and stored ~= rows[i + 1] then
    fresh = 0
  end
end
local plan, content
local refused = 0
if #composed > 0 and uncounted then
  if claim_holds(claim, current[at_kept], current[at_generation]) then
    content = sent_rows
  else
    -- Every value's content is checked, stored already or not: after the call, all the
    -- content the client named is there (it may claim it next time).
    refused = claim ~= '' and 1 or 0
    sent = sent_map(sent_rows)
    refs = composed_refs(values, #values, composed, 'the script arguments')
    local names = {}
    reads = content_reads(refs, sent, names)
    content = content_rows(refs, sent, reads, hmget(KEYS[3], names), {})
  end
elseif reads then
  -- Composed values stored already count no references.
  local some_stored = false
  for i = 1, #composed do
    if current[at[i]] then
      values[i] = false
      some_stored = true
    end
  end
  if some_stored then
    refs = composed_refs(values, #values, composed, 'the script arguments')
  end
  plan = plan_counts(refs, sent, reads, current)
end
local field = ns .. cid
local unwritten = 0
if rcall('HSETNX', KEYS[1], field, ARGV[3]) == 1 then
  if rcall('HEXISTS', KEYS[4], ns .. netstring(cid)) == 0 then  -- its write index
    unwritten = 1
  end
  -- A new record: its content, counts, blobs and the generation in one HSET.
  local updates = plan and plan_rows(plan, {}) or content or {}
  adjust_rows(ns, counted, 1, rows, fields, current, 0, updates, {}, {})
  updates[#updates + 1] = GENERATION
  updates[#updates + 1] = generation
  if uncounted and not current[at_kept] then
    updates[#updates + 1] = KEPT_SINCE
    updates[#updates + 1] = generation
  end
  if marking then
    updates[#updates + 1] = UNCOUNTED
    updates[#updates + 1] = 1
  end
  hset(KEYS[3], updates)
  rcall('ZADD', KEYS[2], 0, field)
else
  -- A record replaced (a put repeated): the new references are counted before the old
  -- record's are released, so content both share is not freed in between.
  if plan then
    apply_refs(plan)
  elseif content then
    hset(KEYS[3], content)
  end
  store_record(ns, cid, ARGV[3], rows, counted, uncounted)
  bump_generation(true)  -- the record just stored keeps KEYS[1] alive: to `generation`
  if uncounted and not current[at_kept] then
    rcall('HSET', KEYS[3], KEPT_SINCE, generation)
  end
end
local collect = 0
if keep ~= '' then
  local removed = keep_newest(ns, tonumber(keep), RETENTION_BUDGET, uncounted)
  if uncounted and removed > 0 and add_garbage(removed) then
    collect = 1
  end
end
touch()
return 16 * generation + 8 * refused + 4 * collect + 2 * unwritten + fresh
