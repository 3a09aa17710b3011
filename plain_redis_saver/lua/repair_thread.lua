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
-- Reply: when applied, the thread's write generation after the call (-1 when it has
-- none); 0, changing nothing, when the thread was written since the audit read it;
-- raises, changing nothing, naming a key the thread has lost (a count or a reference
-- may have changed meanwhile: the caller audits again). Setting counts changes
-- nothing a read returns, so it leaves the generation; deleting content moves it, and
-- KEPT_SINCE with it (see claim_holds in includes/common.lua). The caller sends the
-- next call of a repair in several the generation this one replied.

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
local content = false
for i = 1, #dead do
  if string.byte(dead[i], 1) == 42 then  -- CONTENT..digest
    content = true
    break
  end
end
if content and current ~= '' then
  local generation = rcall('HINCRBY', KEYS[3], GENERATION, 1)
  rcall('HSET', KEYS[3], KEPT_SINCE, generation)  -- see claim_holds
  return generation
end
return tonumber(current) or -1
