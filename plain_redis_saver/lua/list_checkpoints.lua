-- list_checkpoints: one page of checkpoints, newest first, filtered on metadata.
--
-- KEYS[1..5]  the thread's keys (see includes/common.lua)
-- ARGV[1]     NS to list one namespace, or "" to list every namespace of the thread
-- ARGV[2]     cursor: return only checkpoints older than this id ("" = from the newest)
-- ARGV[3]     cursor namespace (every-namespace mode only): among checkpoints whose id
--             equals the cursor, return only those whose NS sorts before this one
-- ARGV[4]     page size: most checkpoints to return
-- ARGV[5]     budget: most checkpoints to examine (bounds the work of one call)
-- ARGV[6]     the digests of content the client holds (see gather_content)
-- ARGV[7..]   filter pairs: metadata key, canonical value (see codec.canonical)
--
-- Reply: {{NS, cid, record, write index, {write...}}..., {blob...}, done, cursor id,
-- cursor NS, {digest, content, ...}} (see load_records: each channel value once, in the
-- order the page first references it); done is 1 when no older checkpoint remains.
-- Every-namespace order is id descending, then NS descending.

-- Created only when a call needs them (see plain_redis_saver.scripts).
-- cold: full_index

local only_ns, before, before_ns = ARGV[1], ARGV[2], ARGV[3]
local page, budget = tonumber(ARGV[4]), tonumber(ARGV[5])
local held = held_digests(ARGV[6])
local wanted = {}
for i = 7, #ARGV, 2 do
  wanted[#wanted + 1] = {ARGV[i], ARGV[i + 1]}
end
-- canonical(None): a filter for None also matches a missing key, as in InMemorySaver.
local NONE = '\192'

local function matches(record, field)
  if #wanted == 0 then
    return true
  end
  local index = record_index(record, field)
  for _, pair in ipairs(wanted) do
    local found = nil
    for i = 1, #index, 2 do
      if index[i] == pair[1] then
        found = index[i + 1]
        break
      end
    end
    if found ~= pair[2] and not (found == nil and pair[2] == NONE) then
      return false
    end
  end
  return true
end

-- Candidates: {ns, cid, ns..cid} newest first, at most `budget` + 1 of them.
local candidates = {}
local listed
if only_ns ~= '' then
  listed = {only_ns}
else
  listed = namespaces()
end
for _, ns in ipairs(listed) do
  checked_namespace(ns)
  local max
  if before == '' then
    max = '(' .. ns .. '\255'
  elseif only_ns == '' and bytes_less(ns, before_ns) then
    max = '[' .. ns .. before
  else
    max = '(' .. ns .. before
  end
  local ids = rcall('ZREVRANGEBYLEX', KEYS[2], max, '(' .. ns, 'LIMIT', 0, budget + 1)
  local n = #candidates
  for i = 1, #ids do
    local member = ids[i]
    candidates[n + i] = {ns, string.sub(member, #ns + 1), member}
  end
end
-- (An empty namespaces() has checked the thread already.)
if #candidates == 0 and #listed > 0 then
  check_thread_intact()
end
if #listed > 1 then
  table.sort(candidates, function(a, b)
    if a[2] ~= b[2] then
      return bytes_less(b[2], a[2])
    end
    return bytes_less(b[1], a[1])
  end)
end

-- Records are read a batch at a time: a page's worth, so a filter that matches early
-- reads little more than it returns.
local found = {}
local examined = 0
local cursor_id, cursor_ns = before, before_ns
local next_candidate = 1
while #found < page and examined < budget and next_candidate <= #candidates do
  local batch = {}
  local last = math.min(#candidates, next_candidate + (page - #found) - 1,
    next_candidate + (budget - examined) - 1)
  for i = next_candidate, last do
    batch[#batch + 1] = candidates[i][3]
  end
  local records = hmget(KEYS[1], batch)
  for k = 1, #records do
    local record, cand = records[k], candidates[next_candidate + k - 1]
    examined = examined + 1
    cursor_ns, cursor_id = cand[1], cand[2]
    if not record then
      record_missing(batch[k])
    end
    if matches(record, batch[k]) then
      cand[3] = record  -- {ns, cid, record}, as load_records takes them
      found[#found + 1] = cand
    end
  end
  next_candidate = last + 1
end
local out, blobs, content = load_records(found, held)
touch()
local done = (examined == #candidates) and 1 or 0
out[#out + 1] = blobs
out[#out + 1] = done
out[#out + 1] = cursor_id
out[#out + 1] = cursor_ns
out[#out + 1] = content
return out
