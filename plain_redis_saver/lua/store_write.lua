-- store_write: the puts and deletes of one batch (or of one slice of a large batch).
--
-- KEYS[1..7]  the store's keys (see includes/store.lua)
-- ARGV[1]     unused; ARGV[2] the client's clock (us)
-- ARGV[3]     expired items to remove first, at most
-- ARGV[4]     T: how many namespaces follow whose place is taken in this batch, in the
--             order LangGraph's InMemoryStore creates them (the batch's gets, then its
--             puts); ARGV[5..4+T] those namespaces (NS). A namespace that ends the
--             batch without items gives its place up again.
-- then per write, 7 arguments: NS, key, ttl (ms, "" for none; "-" deletes the item),
--             filter document, value type, value bytes, vectors ("" for none)
--
-- Reply: the number of writes.

sweep(tonumber(ARGV[3]))
local touched = tonumber(ARGV[4])
for i = 5, 4 + touched do
  if rcall('ZSCORE', KEYS[4], ARGV[i]) == false then
    rcall('ZADD', KEYS[4], rcall('HINCRBY', KEYS[5], '\0ns', 1), ARGV[i])
  end
end
local writes = 0
for base = 5 + touched, #ARGV, 7 do
  local ns, key, ttl = ARGV[base], ARGV[base + 1], ARGV[base + 2]
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
    if not r then
      local seq = rcall('HINCRBY', KEYS[5], '\0seq', 1)
      r = { tostring(seq), NOW_US }
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
    r = { r[1], r[2], NOW_US, ttl, expiry, ARGV[base + 3], ARGV[base + 4], ARGV[base + 5] }
    rcall('HSET', KEYS[1], id, join(r))
    if ARGV[base + 6] == '' then
      rcall('HDEL', KEYS[7], id)
    else
      rcall('HSET', KEYS[7], id, ARGV[base + 6])
    end
  end
  writes = writes + 1
end
for i = 5, 4 + touched do
  if rcall('HEXISTS', KEYS[5], ARGV[i]) == 0 then
    rcall('ZREM', KEYS[4], ARGV[i])
  end
end
return writes
