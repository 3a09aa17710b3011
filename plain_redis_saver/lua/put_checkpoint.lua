-- put_checkpoint: store one checkpoint and the channel values it introduces.
--
-- KEYS[1..5]  the thread's keys (see includes/common.lua)
-- ARGV[1]     NS: netstring(checkpoint_ns)
-- ARGV[2]     checkpoint id
-- ARGV[3]     record
-- ARGV[4]     retention: keep only the newest N checkpoints of the namespace ("" = all)
-- ARGV[5]     the count fields ("#"..NS..ref, see adjust) of the record's blob refs,
--             as a JSON array of strings whatever the record's format: sent apart so
--             the hot path need neither parse the record nor build the fields
-- ARGV[6]     the parent checkpoint id ("" = none), sent apart for the same reason
-- ARGV[7..]   pairs of blob field (NS..netstring(channel)..version) and blob value, and
--             of CONTENT..digest and content that composed values reference (see
--             includes/common.lua), sent when the client does not know it stored
--
-- Reply: 1 if the checkpoint is new, 0 if it replaced a stored one with the same id.
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

local RETENTION_BUDGET = 100
local ns, cid, keep, parent = ARGV[1], ARGV[2], ARGV[4], ARGV[6]
if parent ~= '' and rcall('HEXISTS', KEYS[1], ns .. parent) == 0
    and rcall('HEXISTS', KEYS[1], ns .. cid) == 0 then
  local newest = latest_id(ns)
  if newest and bytes_less(parent, newest) then
    return fail('plain_redis_saver: parent removed: ' .. parent)
  end
end
local sent, rows = take_content(7)
local composed, values = {}, {}
for i = 1, #rows, 2 do
  if is_composed(rows[i + 1]) then
    composed[#composed + 1] = rows[i]
    values[#values + 1] = rows[i + 1]
  end
end
local plan
if #composed > 0 then
  -- Only values not stored yet count their references (adjust stores exactly those).
  local stored = hmget(KEYS[3], composed)
  for i = 1, #composed do
    if stored[i] then
      values[i] = false
    end
  end
  plan = plan_refs(composed_refs(values, #values, composed, 'the script arguments'), sent)
end
-- Counted before the record is stored: replacing a record releases its old values,
-- and content they share with the new ones must not be freed in between.
if plan then
  apply_refs(plan)
end
local counted = refs_list(JSON_REFS, ARGV[5], 'count fields', 'the script arguments')
local created = store_record(ns, cid, ARGV[3], rows, counted)
if keep ~= '' then
  keep_newest(ns, tonumber(keep), RETENTION_BUDGET)
end
bump_generation(true)  -- the record just stored keeps KEYS[1] alive
touch()
return created
