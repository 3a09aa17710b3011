-- Shared helpers of the store's scripts (store_*.lua), pasted in front of each.
--
-- KEYS (every store script declares all seven; they share the hash tag {%store}):
--   KEYS[1] items       hash  FIELD -> record
--   KEYS[2] order       zset  (lex) MEMBER -> 0: items in insertion order
--   KEYS[3] namespaces  zset  (lex) NS -> 0: namespaces holding items
--   KEYS[4] created     zset  NS -> P, its position: namespaces in order of creation
--   KEYS[5] counts      hash  NS -> live items; "\0seq", "\0ns" -> last numbers given;
--                             "\0" .. P -> NS (the namespace of a position)
--   KEYS[6] expiry      zset  FIELD -> expiry, ms since the epoch (items with a TTL only)
--   KEYS[7] vectors     hash  FIELD -> packed float32 vectors of the item
-- NS is the namespace's labels joined by NUL (labels hold no NUL: LangGraph refuses it),
-- so byte order of NS is LangGraph's tuple order. P never changes while the namespace
-- holds items (a namespace gives up its place only without items), so items name it by
-- P, which is shorter:
--   FIELD  = "\0" .. P .. "\0" .. key
--   MEMBER = "\0" .. P .. "\0" .. SEQ .. key, SEQ the item's sequence number in base
--            36 after one letter (64 + its number of digits), so members sort by it.
-- Items of the store's first layout keep the legacy names they were written with until
-- they are deleted: FIELD = NS .. "\0\0" .. key, MEMBER = NS .. "\0\0" .. SEQ (16
-- decimal digits) .. key.
-- NS never starts with NUL unless it is empty, so the two forms never meet; every
-- legacy item of a namespace is older than its other items (new items take new names),
-- so its legacy members come first in insertion order.
-- A record (store_core.py) is "~" .. seq, created (us), updated (us, "" when never
-- updated), ttl (ms or ""), expiry (ms or ""), each followed by ",", then netstrings of
-- the value type ("" for msgpack) and the filter document, then the value bytes; seq,
-- created and updated in base 36 (shorter). A legacy record is the netstrings seq,
-- created, updated (decimal), ttl, expiry, document, type, value; it is rewritten in
-- the current form (its seq stays decimal, as its legacy member) when the item is
-- written.
-- The filter document is netstrings, two per node of the value: path and token
-- (store_core.filter_document); a legacy document has four per node: path, kind,
-- equality token, float token.
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

-- `n` (an integer below 2^53) in base 36, whose digit order is byte order.
local function base36(n)
  local out = ''
  repeat
    local d = n % 36
    out = string.sub('0123456789abcdefghijklmnopqrstuvwxyz', d + 1, d + 1) .. out
    n = (n - d) / 36
  until n == 0
  return out
end
local NOW_STAMP = base36(tonumber(NOW_US))

local function corrupt(what, field, key)
  return fail('plain_redis_saver: corrupt ' .. what .. ' in field ' .. field .. ' of ' .. key)
end

-- Splits a string of netstrings from `pos` on, at most `limit` of them (all without
-- one); `field`/`key` name it in the error if it is damaged. Returns the strings and
-- the position after the last.
local function split(s, field, key, pos, limit)
  local out, n, size = {}, 0, #s
  pos = pos or 1
  while pos <= size and (not limit or n < limit) do
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
  return out, pos
end

-- A record as {seq, created, updated, ttl, expiry, document, type, value, legacy}.
local function record_of(field, raw)
  if string.sub(raw, 1, 1) ~= '~' then
    local r = split(raw, field, KEYS[1])
    if #r ~= 8 then
      return corrupt('record', field, KEYS[1])
    end
    r[9] = true
    r[2] = base36(tonumber(r[2]))
    if r[3] ~= '' then
      r[3] = base36(tonumber(r[3]))
    end
    return r
  end
  local seq, created, updated, ttl, expiry, at = string.match(raw, '^~(%w+),(%w+),(%w*),(%d*),(%d*),()')
  if not seq then
    return corrupt('record', field, KEYS[1])
  end
  local parts, rest = split(raw, field, KEYS[1], at, 2)
  if #parts ~= 2 then
    return corrupt('record', field, KEYS[1])
  end
  return { seq, created, updated, ttl, expiry, parts[2], parts[1], string.sub(raw, rest), false }
end

-- The record in the current form.
local function join(r)
  return '~' .. r[1] .. ',' .. r[2] .. ',' .. r[3] .. ',' .. r[4] .. ',' .. r[5] .. ','
    .. netstring(r[7]) .. netstring(r[6]) .. r[8]
end

-- Where an item lives: {FIELD, NS, key, P or false for a legacy item}.
local function legacy_place(ns, key)
  return { ns .. '\0\0' .. key, ns, key, false }
end

local function place(ns, position, key)
  return { '\0' .. position .. '\0' .. key, ns, key, position }
end

-- The place of FIELD (from the expiry index), or nil when its namespace is gone.
local function place_of(field)
  local position, at = string.match(field, '^%z(%d+)%z()')
  if not position then
    local cut = string.find(field, '\0\0', 1, true)
    return legacy_place(string.sub(field, 1, cut - 1), string.sub(field, cut + 2))
  end
  local ns = rcall('HGET', KEYS[5], '\0' .. position)
  return ns and place(ns, position, string.sub(field, at)) or nil
end

local function member_of(at, seq)
  if not at[4] then
    return at[2] .. '\0\0' .. string.rep('0', 16 - #seq) .. seq .. at[3]
  end
  return '\0' .. at[4] .. '\0' .. string.char(64 + #seq) .. seq .. at[3]
end

-- The place of the stored item (ns, key) and its raw record, or nil.
local function find(ns, key)
  local position = rcall('ZSCORE', KEYS[4], ns)
  if not position then
    return nil
  end
  local at = place(ns, position, key)
  local raw = rcall('HGET', KEYS[1], at[1])
  if raw then
    return at, raw
  end
  at = legacy_place(ns, key)
  raw = rcall('HGET', KEYS[1], at[1])
  if raw then
    return at, raw
  end
  return nil
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

-- Takes a place in the order of creation for `ns` unless it has one.
local function take_place(ns)
  if rcall('ZSCORE', KEYS[4], ns) == false then
    local position = rcall('HINCRBY', KEYS[5], '\0ns', 1)
    rcall('ZADD', KEYS[4], position, ns)
    rcall('HSET', KEYS[5], '\0' .. position, ns)
  end
end

local function give_up_place(ns)
  local position = rcall('ZSCORE', KEYS[4], ns)
  if position then
    rcall('ZREM', KEYS[4], ns)
    rcall('HDEL', KEYS[5], '\0' .. position)
  end
end

-- Removes the item at `at` (record `r`) and every index entry of it. A namespace left
-- without items leaves the listing; it keeps its place in `created` only if
-- `keep_place` (a batch that empties and refills a namespace keeps its place, as
-- LangGraph's InMemoryStore does; store_write prunes at the end of the batch).
local function remove_item(at, r, keep_place)
  local ns = at[2]
  rcall('HDEL', KEYS[1], at[1])
  rcall('ZREM', KEYS[2], member_of(at, r[1]))
  rcall('ZREM', KEYS[6], at[1])
  rcall('HDEL', KEYS[7], at[1])
  if rcall('HINCRBY', KEYS[5], ns, -1) <= 0 then
    rcall('HDEL', KEYS[5], ns)
    rcall('ZREM', KEYS[3], ns)
    if not keep_place then
      give_up_place(ns)
      forget_counters()
    end
  end
end

-- Removes up to `budget` expired items; true when none is left expired.
local function sweep(budget)
  local fields = rcall('ZRANGEBYSCORE', KEYS[6], '-inf', NOW, 'LIMIT', 0, budget)
  for _, field in ipairs(fields) do
    local raw = rcall('HGET', KEYS[1], field)
    local at = raw and place_of(field)
    if at then
      remove_item(at, record_of(field, raw), false)
    else
      rcall('ZREM', KEYS[6], field)
    end
  end
  return #fields < budget or #rcall('ZRANGEBYSCORE', KEYS[6], '-inf', NOW, 'LIMIT', 0, 1) == 0
end

-- Restarts the TTL of a returned item that has one (refresh_on_read); returns its
-- record as stored.
local function refresh(at, r, raw)
  if r[4] == '' then
    return raw
  end
  r[5] = tostring(NOW + tonumber(r[4]))
  raw = join(r)
  rcall('HSET', KEYS[1], at[1], raw)
  rcall('ZADD', KEYS[6], r[5], at[1])
  return raw
end
