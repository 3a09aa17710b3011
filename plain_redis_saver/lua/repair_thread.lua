-- repair_thread: set a thread's reference counts to what an audit of it computed, and
-- delete the values and content nothing reaches, unless the thread was written since
-- (see plain_redis_saver.audit).
--
-- KEYS[1..5]  the thread's keys (see includes/common.lua)
-- ARGV[1]     the thread's write generation when the audit read it ("" = none)
-- ARGV[2]     N: the number of counts to set
-- ARGV[3..]   N pairs of count field and count, then the fields of KEYS[3] to delete
--             (counts of nothing, values and content no checkpoint or write reaches)
--
-- Reply: 1 when applied; 0, changing nothing, when the thread was written since the
-- audit read it; raises, changing nothing, naming a key the thread has lost (a count or a reference may have changed meanwhile: the caller audits
-- again). A repair changes nothing a read returns, so the write generation stays: a
-- repair sent in several calls checks the same one in each, and a copy or export
-- reading the thread meanwhile need not start over. Content a client still names as
-- held after it was deleted here is refused by the next write that relies on it, which
-- then sends it again, as after any removal.

local current = rcall('HGET', KEYS[3], GENERATION) or ''
if current ~= ARGV[1] then
  return 0
end
-- An eviction leaves the generation as it was: a thread that lost a key since the audit
-- read it (its values would all look unreferenced) is refused here, naming the key.
check_thread_intact()
local n = tonumber(ARGV[2])
local rows, dead = {}, {}
for i = 3, 2 + 2 * n do
  rows[#rows + 1] = ARGV[i]
end
for i = 3 + 2 * n, #ARGV do
  dead[#dead + 1] = ARGV[i]
end
hset(KEYS[3], rows)
hdel(KEYS[3], dead)
return 1
