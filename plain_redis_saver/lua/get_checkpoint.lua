-- get_checkpoint: one checkpoint with its channel values and pending writes.
--
-- KEYS[1..5]  the thread's keys (see includes/common.lua)
-- ARGV[1]     NS: netstring(checkpoint_ns)
-- ARGV[2]     checkpoint id, or "" for the newest one of the namespace
-- ARGV[3]     the digests of content the client holds (see gather_content)
-- ARGV[4..6]  the checkpoint whose record and values the client holds: its id, the
--             thread's write generation its own last write left (see client_has), and
--             "1" if it knows the checkpoint has no pending writes, "2" if it holds
--             them (what its own put_writes stored), else ""; none when it holds none
--
-- Reply: {cid, record, {blob...}, write index, {write...}, {digest, content, ...},
-- generation} (see load_records: each of the record's values once, in the order it
-- references them; record "" and no values when they are the ones the client holds;
-- generation, of a full read of the newest checkpoint only, the thread's write
-- generation it was read at, "" if none or not a number, so the client can hold it
-- from then on) or nil when absent.

-- Created only when a call needs them (see plain_redis_saver.scripts): the full read's
-- helpers, and (apart) those of a read of the pending writes alone, for a client that
-- has the checkpoint's record and values.
-- cold: in_order full_index mp_scalar mp_read load_records
-- warm: confirmed_writes

local ns, cid, held = ARGV[1], ARGV[2], held_digests(ARGV[3])
local latest = cid == ''
if latest then
  cid = latest_id(ns)
  if not cid then
    check_thread_intact()
    return false
  end
end
-- The thread's write generation, read once: it tells whether the client's copy is
-- current (see client_has), and a full read of the newest checkpoint returns it.
local generation
if latest or ARGV[4] then
  generation = rcall('HGET', KEYS[3], GENERATION)
end
local found = load_checkpoint(ns, cid, held, ARGV[4] and {ARGV[4], ARGV[5], ARGV[6]},
  generation)
if not found then
  if latest or in_order(ns .. cid) then
    record_missing(ns .. cid)
  end
  check_thread_intact()
  return false
end
if latest and found[2] ~= '' then
  found[7] = tonumber(generation or '') or ''
end
touch()
return found
