-- put_checkpoint: store one checkpoint and the channel values it introduces.
--
-- KEYS[1..5]  the thread's keys (see includes/common.lua)
-- ARGV[1]     NS: netstring(checkpoint_ns)
-- ARGV[2]     checkpoint id
-- ARGV[3]     record
-- ARGV[4..]   pairs of blob field (netstring(channel)..version) and blob value
--
-- Reply: 1 if the checkpoint is new, 0 if it replaced a stored one with the same id.
-- Blobs are written before the record that references them and are never
-- overwritten: a (channel, version) names one value for good.

local ns, cid = ARGV[1], ARGV[2]
for i = 4, #ARGV, 2 do
  rcall('HSETNX', KEYS[3], ns .. ARGV[i], ARGV[i + 1])
end
return store_record(ns, cid, ARGV[3])
