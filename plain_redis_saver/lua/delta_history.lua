-- delta_history: walk the parent chain of a checkpoint for DeltaChannel replay.
--
-- KEYS[1..5]  the thread's keys (see includes/common.lua)
-- ARGV[1]     NS: netstring(checkpoint_ns)
-- ARGV[2]     checkpoint id, or "" for the newest one of the namespace
-- ARGV[3..]   channel names
--
-- Reply: one entry per visited ancestor, nearest first:
--   {{write sub...}, {write...}, {channel, blob, ...}}
-- where the writes are those of the requested channels still being walked and the
-- third list holds the seeds found there. A channel stops at the nearest ancestor
-- whose stored value for it is not empty; that ancestor's own writes still count.

local ns, cid = ARGV[1], ARGV[2]
local remaining = {}
local left = 0
for i = 3, #ARGV do
  if not remaining[ARGV[i]] then
    remaining[ARGV[i]] = true
    left = left + 1
  end
end
if cid == '' then
  cid = latest_id(ns)
  if not cid then
    check_thread_intact()
  end
end
local out = {}
if not cid then
  return out
end
local record = rcall('HGET', KEYS[1], ns .. cid)
if not record then
  if in_order(ns .. cid) then
    record_missing(ns .. cid)
  end
  check_thread_intact()
  return out
end
check_writes_present(ns)
local parent = record_header(record, ns .. cid)
-- Stored parent ids may be anything: a chain that comes back to a visited checkpoint
-- would otherwise be walked for ever.
local visited = {[cid] = true}
while parent and left > 0 do
  if visited[parent] then
    return corrupt('parent chain (it loops)', ns .. parent, KEYS[1])
  end
  visited[parent] = true
  record = rcall('HGET', KEYS[1], ns .. parent)
  if not record then
    break
  end
  local grandparent, refs = record_header(record, ns .. parent)
  local seeds = {}
  for _, ref in ipairs(refs) do
    local channel = read_netstring(ref, 1, 'checkpoint record', ns .. parent, KEYS[1])
    if remaining[channel] then
      local blob = rcall('HGET', KEYS[3], ns .. ref)
      if not blob then
        check_value_present(ns .. ref, ns .. parent)
      elseif #blob > 0 then
        local built = {blob}
        expand_values(built, 1, {ns .. ref}, KEYS[3])
        seeds[#seeds + 1] = channel
        seeds[#seeds + 1] = built[1]
      end
    end
  end
  local base = ns .. netstring(parent)
  local subs, writes = {}, {}
  local index = rcall('HGET', KEYS[4], base)
  if index then
    local all_subs = split_netstrings(full_index(base, index), 'write index', base, KEYS[4])
    local fields = {}
    for i, sub in ipairs(all_subs) do
      fields[i] = base .. sub
    end
    local values = hmget(KEYS[4], fields)
    for i, value in ipairs(values) do
      if not value then
        return fail('plain_redis_saver: corrupt thread: pending write ' .. fields[i]
          .. ' of ' .. KEYS[4] .. ' is missing')
      end
      if remaining[write_channel(value, fields[i])] then
        subs[#subs + 1] = all_subs[i]
        writes[#writes + 1] = value
      end
    end
    expand_values(writes, #writes, nil, KEYS[4])
  end
  for i = 1, #seeds, 2 do
    remaining[seeds[i]] = nil
    left = left - 1
  end
  out[#out + 1] = {subs, writes, seeds}
  parent = grandparent
end
touch()
return out
