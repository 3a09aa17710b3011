-- put_checkpoint: store one checkpoint and the channel values it introduces.
--
-- KEYS[1..5]  the thread's keys (see includes/common.lua)
-- ARGV[1]     NS: netstring(checkpoint_ns)
-- ARGV[2]     checkpoint id
-- ARGV[3]     record
-- ARGV[4]     retention: keep only the newest N checkpoints of the namespace ("" = all)
-- ARGV[5]     the record's blob refs (netstrings), sent apart so the hot path need
--             not parse the record
-- ARGV[6..]   pairs of blob field (netstring(channel)..version) and blob value
--
-- Reply: 1 if the checkpoint is new, 0 if it replaced a stored one with the same id.
-- Blobs are never overwritten: a (channel, version) names one value for good.
-- Retention removes at most RETENTION_BUDGET old checkpoints per call, so a put stays
-- short even when the limit was just lowered on a long thread (the next puts continue).

local RETENTION_BUDGET = 100
local ns, cid, keep = ARGV[1], ARGV[2], ARGV[4]
local new_blobs = {}
for i = 6, #ARGV, 2 do
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
