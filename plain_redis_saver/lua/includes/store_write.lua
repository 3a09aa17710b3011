-- store_write: the puts and deletes of one batch (or of one slice of a large batch).
--
-- A[1]     expired items to remove first, at most
-- A[2]     T: how many namespaces follow whose place is taken in this batch, in the
--             order LangGraph's InMemoryStore creates them (the batch's gets, then its
--             puts); A[3..2+T] those namespaces (NS). A namespace that ends the
--             batch without items gives its place up again.
-- then per write, 7 arguments: NS, key, ttl (ms, "" for none; "-" deletes the item),
--             filter document, value type, value bytes, vectors ("" for none)
--
-- Reply: the number of writes.
--
-- A is the operation's arguments (store_batch.lua).
local function write_items(A)
  sweep(tonumber(A[1]))
  local touched = tonumber(A[2])
  for i = 3, 2 + touched do
    take_place(A[i])
  end
  local writes = 0
  for base = 3 + touched, #A, 7 do
    local ns, key, ttl = A[base], A[base + 1], A[base + 2]
    local at, raw = find(ns, key)
    local r = raw and record_of(at[1], raw)
    if r and expired(r) then
      remove_item(at, r, true)
      r = nil
    end
    if ttl == '-' then
      if r then
        remove_item(at, r, true)
      end
    else
      local updated = NOW_STAMP
      if not r then
        local seq = base36(rcall('HINCRBY', KEYS[5], '\0seq', 1))
        r = { seq, NOW_STAMP }
        updated = '' -- the same as created
        if rcall('HINCRBY', KEYS[5], ns, 1) == 1 then
          rcall('ZADD', KEYS[3], 0, ns)
        end
        take_place(ns)
        local position = rcall('ZSCORE', KEYS[4], ns)
        -- A namespace placed by the first layout has no entry for its position yet.
        rcall('HSET', KEYS[5], '\0' .. position, ns)
        at = place(ns, position, key)
        rcall('ZADD', KEYS[2], 0, member_of(at, seq))
      end
      local expiry = ''
      if ttl ~= '' then
        expiry = tostring(NOW + tonumber(ttl))
        rcall('ZADD', KEYS[6], expiry, at[1])
      else
        rcall('ZREM', KEYS[6], at[1])
      end
      r = { r[1], r[2], updated, ttl, expiry, A[base + 3], A[base + 4], A[base + 5] }
      rcall('HSET', KEYS[1], at[1], join(r))
      if A[base + 6] == '' then
        rcall('HDEL', KEYS[7], at[1])
      else
        rcall('HSET', KEYS[7], at[1], A[base + 6])
      end
    end
    writes = writes + 1
  end
  for i = 3, 2 + touched do
    if rcall('HEXISTS', KEYS[5], A[i]) == 0 then
      give_up_place(A[i])
    end
  end
  forget_counters()
  return writes
end
