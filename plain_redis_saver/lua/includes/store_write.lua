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
    if rcall('ZSCORE', KEYS[4], A[i]) == false then
      rcall('ZADD', KEYS[4], rcall('HINCRBY', KEYS[5], '\0ns', 1), A[i])
    end
  end
  local writes = 0
  for base = 3 + touched, #A, 7 do
    local ns, key, ttl = A[base], A[base + 1], A[base + 2]
    local id = ns .. '\0\0' .. key
    local raw = rcall('HGET', KEYS[1], id)
    local r = raw and record_of(id, raw)
    if r and expired(r) then
      remove_item(id, r, true)
      r = nil
    end
    if ttl == '-' then
      if r then
        remove_item(id, r, true)
      end
    else
      local updated = NOW_US
      if not r then
        local seq = rcall('HINCRBY', KEYS[5], '\0seq', 1)
        r = { tostring(seq), NOW_US }
        updated = '' -- the same as created
        rcall('ZADD', KEYS[2], 0, ns .. '\0\0' .. pad(seq) .. key)
        if rcall('HINCRBY', KEYS[5], ns, 1) == 1 then
          rcall('ZADD', KEYS[3], 0, ns)
          if rcall('ZSCORE', KEYS[4], ns) == false then
            rcall('ZADD', KEYS[4], rcall('HINCRBY', KEYS[5], '\0ns', 1), ns)
          end
        end
      end
      local expiry = ''
      if ttl ~= '' then
        expiry = tostring(NOW + tonumber(ttl))
        rcall('ZADD', KEYS[6], expiry, id)
      else
        rcall('ZREM', KEYS[6], id)
      end
      r = { r[1], r[2], updated, ttl, expiry, A[base + 3], A[base + 4], A[base + 5] }
      rcall('HSET', KEYS[1], id, join(r))
      if A[base + 6] == '' then
        rcall('HDEL', KEYS[7], id)
      else
        rcall('HSET', KEYS[7], id, A[base + 6])
      end
    end
    writes = writes + 1
  end
  for i = 3, 2 + touched do
    if rcall('HEXISTS', KEYS[5], A[i]) == 0 then
      rcall('ZREM', KEYS[4], A[i])
    end
  end
  forget_counters()
  return writes
end
