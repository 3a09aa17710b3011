-- Shared helpers of the store's scripts (store_*.lua), pasted in front of each.
--
-- KEYS (every store script declares all seven; they share the hash tag {%store}):
--   KEYS[1] items       hash  ID -> record
--   KEYS[2] order       zset  (lex) NS .. "\0\0" .. SEQ .. key -> 0: items in insertion order
--   KEYS[3] namespaces  zset  (lex) NS -> 0: namespaces holding items
--   KEYS[4] created     zset  NS -> position: namespaces in order of creation
--   KEYS[5] counts      hash  NS -> live items; "\0seq", "\0ns" -> last numbers given
--   KEYS[6] expiry      zset  ID -> expiry, ms since the epoch (items with a TTL only)
--   KEYS[7] vectors     hash  ID -> packed float32 vectors of the item
-- NS is the namespace's labels joined by NUL (labels hold no NUL: LangGraph refuses it),
-- so byte order of NS is LangGraph's tuple order; ID is NS .. "\0\0" .. key; SEQ is
-- the item's sequence number, 16 digits.
-- A record is netstrings: seq, created (us), updated (us, "" when never updated),
-- ttl (ms or ""), expiry (ms or ""), filter document, value type ("" for msgpack),
-- value bytes (store_core.py).
-- The filter document is netstrings, four per node of the value: path, kind
-- ("d" dict, "l<n>" list, "s" scalar), equality token, float token (store_core.py).
--
-- ARGV[1] is the runner's expiry slot, unused (items carry their own); ARGV[2] is the
-- client's clock in microseconds since the epoch (scripts never read the server's).

local rcall = redis.call
local NOW_US = ARGV[2]
local NOW = math.floor(tonumber(NOW_US) / 1000)

local function fail(message)
  return error((string.gsub(message, '[%z\1-\31\127]', function(c)
    return string.format('\\x%02x', string.byte(c))
  end)))
end

local function netstring(s)
  return #s .. ':' .. s
end

local function corrupt(what, field, key)
  return fail('plain_redis_saver: corrupt ' .. what .. ' in field ' .. field .. ' of ' .. key)
end

-- Splits a string of netstrings; `field`/`key` name it in the error if it is damaged.
local function split(s, field, key)
  local out, n, pos, size = {}, 0, 1, #s
  while pos <= size do
    local digits = string.match(s, '^(%d+):', pos)
    if not digits then
      return corrupt('record', field, key)
    end
    local start = pos + #digits + 1
    local stop = start + tonumber(digits) - 1
    if stop > size then
      return corrupt('record', field, key)
    end
    n = n + 1
    out[n] = string.sub(s, start, stop)
    pos = stop + 1
  end
  return out
end

local function record_of(id, raw)
  local r = split(raw, id, KEYS[1])
  if #r ~= 8 then
    return corrupt('record', id, KEYS[1])
  end
  return r
end

local function join(r)
  local parts = {}
  for i = 1, #r do
    parts[i] = netstring(r[i])
  end
  return table.concat(parts)
end

local function pad(seq)
  local s = tostring(seq)
  return string.rep('0', 16 - #s) .. s
end

local function ns_of(id)
  return string.sub(id, 1, string.find(id, '\0\0', 1, true) - 1)
end

local function key_of(id)
  return string.sub(id, string.find(id, '\0\0', 1, true) + 2)
end

local function expired(r)
  return r[5] ~= '' and tonumber(r[5]) <= NOW
end

-- An empty store keeps no key: its counters go with its last namespace.
local function forget_counters()
  if rcall('ZCARD', KEYS[4]) == 0 and rcall('ZCARD', KEYS[3]) == 0 then
    rcall('DEL', KEYS[5])
  end
end

-- Removes item `id` (record `r`) and every index entry of it. A namespace left without
-- items leaves the listing; it keeps its place in `created` only if `keep_place` (a
-- batch that empties and refills a namespace keeps its place, as LangGraph's
-- InMemoryStore does; store_write prunes at the end of the batch).
local function remove_item(id, r, keep_place)
  local ns = ns_of(id)
  rcall('HDEL', KEYS[1], id)
  rcall('ZREM', KEYS[2], ns .. '\0\0' .. pad(r[1]) .. key_of(id))
  rcall('ZREM', KEYS[6], id)
  rcall('HDEL', KEYS[7], id)
  if rcall('HINCRBY', KEYS[5], ns, -1) <= 0 then
    rcall('HDEL', KEYS[5], ns)
    rcall('ZREM', KEYS[3], ns)
    if not keep_place then
      rcall('ZREM', KEYS[4], ns)
      forget_counters()
    end
  end
end

-- Removes up to `budget` expired items; true when none is left expired.
local function sweep(budget)
  local ids = rcall('ZRANGEBYSCORE', KEYS[6], '-inf', NOW, 'LIMIT', 0, budget)
  for _, id in ipairs(ids) do
    local raw = rcall('HGET', KEYS[1], id)
    if raw then
      remove_item(id, record_of(id, raw), false)
    else
      rcall('ZREM', KEYS[6], id)
    end
  end
  return #ids < budget or #rcall('ZRANGEBYSCORE', KEYS[6], '-inf', NOW, 'LIMIT', 0, 1) == 0
end

-- Restarts the TTL of a returned item that has one (refresh_on_read).
local function refresh(id, r)
  if r[4] ~= '' then
    r[5] = tostring(NOW + tonumber(r[4]))
    rcall('HSET', KEYS[1], id, join(r))
    rcall('ZADD', KEYS[6], r[5], id)
  end
end
