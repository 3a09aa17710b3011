-- commit_copy: make a thread built under staging keys the target thread, in one step.
--
-- KEYS[1..5]   the target thread's keys (see includes/common.lua)
-- KEYS[6..10]  the keys the copy was built under, in the same order
-- ARGV[1]      the target's write generation when the copy read it ("" = none)
--
-- Reply: 1 when committed; 0, changing nothing, when the target was written since the
-- copy read it (its data would be lost: the caller builds the copy again).
-- Each step is O(1) whatever the thread's size: UNLINK hands a large old value to a
-- background thread, and RENAME onto a missing key moves a pointer. The staged keys
-- carry a short safety expiry; touch() replaces it with the target's.

local current = rcall('HGET', KEYS[3], GENERATION) or ''
if current ~= ARGV[1] then
  return 0
end
for i = 1, 5 do
  rcall('UNLINK', KEYS[i])
  if exists(KEYS[5 + i]) then
    rcall('RENAME', KEYS[5 + i], KEYS[i])
  end
end
bump_generation()
touch()
return 1
