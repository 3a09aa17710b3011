-- import_thread: merge exported thread data into a thread (copy_thread, imports).
--
-- KEYS[1..5]  the target thread's keys (see includes/common.lua)
-- ARGV        sections, each a tag, a count N and N field/value pairs:
--             "c" records (field NS..CID), "b" blobs (without the "#" and "=" counts),
--             "w" writes, "i" write indexes
--
-- Reply: number of checkpoints added. Existing data of the target wins: records,
-- blobs and writes are only added, write indexes are merged. Idempotent, so a large
-- import may be split into several calls.

local added = 0
local pos = 1
-- Content and composed values count their references as they are stored (the counts
-- are not exported), all at once at the end: content may arrive after what references
-- it. An uncounted thread (see UNCOUNTED in includes/common.lua) counts none.
local uncounted, marking = thread_uncounted()
local refs = {}
local function counted(value, start, field)
  if uncounted then
    return
  end
  for _, d in ipairs(node_refs(value, start, field, 'the imported rows')) do
    refs[#refs + 1] = d
  end
end
if marking and #ARGV > 0 then
  rcall('HSET', KEYS[3], UNCOUNTED, 1)
end
while pos <= #ARGV do
  local tag, count = ARGV[pos], tonumber(ARGV[pos + 1])
  pos = pos + 2
  for i = pos, pos + 2 * count - 1, 2 do
    local field, value = ARGV[i], ARGV[i + 1]
    if tag == 'c' then
      if rcall('HEXISTS', KEYS[1], field) == 0 then
        local _, after = read_netstring(field, 1)
        added = added + store_record(string.sub(field, 1, after - 1), string.sub(field, after),
          value, {}, nil, uncounted)
      end
    elseif tag == 'b' then
      if rcall('HSETNX', KEYS[3], field, value) == 1 then
        if string.byte(field, 1) == 42 then
          if is_node(value) then
            counted(value, 1, field)
          end
        elseif is_composed(value) then
          counted(value, 2, field)
        end
      end
    elseif tag == 'w' then
      if rcall('HSETNX', KEYS[4], field, value) == 1 and is_composed(value) then
        counted(value, 2, field)
      end
      rcall('HSET', KEYS[3], WRITES_MARK, 1)
    elseif tag == 'i' then
      -- `value` is a whole index (netstrings of subs, without segments).
      local current = rcall('HGET', KEYS[4], field)
      local seen = {}
      local whole = current and full_index(field, current)
      for _, sub in ipairs(split_netstrings(whole, 'write index', field, KEYS[4])) do
        seen[sub] = true
      end
      local extra = {}
      for _, sub in ipairs(split_netstrings(value)) do
        if not seen[sub] then
          extra[#extra + 1] = netstring(sub)
        end
      end
      if #extra > 0 then
        append_index(field, table.concat(extra))
      end
    else
      return fail('plain_redis_saver: unknown import section ' .. tag)
    end
  end
  pos = pos + 2 * count
end
if #refs > 0 then
  add_refs(refs)
end
if #ARGV > 0 then
  bump_generation()
end
touch()
return added
