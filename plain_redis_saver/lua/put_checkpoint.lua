-- put_checkpoint: store one checkpoint and the channel values it introduces.
--
-- KEYS[1..5]  the thread's keys (see includes/common.lua)
-- ARGV[1]     NS: netstring(checkpoint_ns)
-- ARGV[2]     checkpoint id
-- ARGV[3]     record
-- ARGV[4]     retention: keep only the newest N checkpoints of the namespace ("" = all)
-- ARGV[5]     the record's blob refs (netstrings), sent apart so the hot path need
--             not parse the record
-- ARGV[6]     the parent checkpoint id ("" = none), sent apart for the same reason
-- ARGV[7..]   pairs of blob field (netstring(channel)..version) and blob value
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
local new_blobs = {}
for i = 7, #ARGV, 2 do
  new_blobs[#new_blobs + 1] = ns .. ARGV[i]
  new_blobs[#new_blobs + 1] = ARGV[i + 1]
end
local created = store_record(ns, cid, ARGV[3], new_blobs, split_netstrings(ARGV[5]))
if keep ~= '' then
  keep_newest(ns, tonumber(keep), RETENTION_BUDGET)
end
bump_generation()
touch()
return created
