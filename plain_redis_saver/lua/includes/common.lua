-- Shared helpers, pasted in front of every script by plain_redis_saver.scripts.
--
-- Storage layout of one thread (all keys share the thread's hash tag):
--   KEYS[1] checkpoints  hash  field NS..CID                -> record (msgpack array)
--   KEYS[2] order        zset  member NS..CID, score 0       (lexicographic = time order)
--   KEYS[3] blobs        hash  field NS..netstring(CH)..VER  -> netstring(type)..bytes, a
--                                  composed value (see COMPOSED below) or "" (empty)
--                              field "#"..NS..netstring(CH)..VER -> number of checkpoints
--                                  referencing the value; the value goes when it reaches 0
--                              field "="..NS                  -> number of checkpoints of NS
--   KEYS[4] writes       hash  field NS..netstring(CID)..netstring(TASK)..IDX -> msgpack
--                                  [channel, type, bytes, task_path], or a composed value
--                              field NS..netstring(CID)      -> index: netstrings of
--                                  netstring(TASK)..IDX, one per stored write; a long
--                                  index starts "+K:" and keeps its older part in
--                                  fields NS..netstring(CID).."+1" .. "+K" (see
--                                  append_index)
--                              field "=w"                     -> 1 while KEYS[4] holds
--                                  pending writes (tells an evicted KEYS[4] from one
--                                  never written)
--                              field "=g"                     -> the thread's write generation
--                                  (see bump_generation)
--                              field "*"..DIGEST               -> content that composed values
--                                  reference (storage schema 2; see COMPOSED below)
--                              field "#*"..DIGEST              -> its reference count
--                              field "=u"                     -> 1 when the thread keeps
--                                  no reference counts (see UNCOUNTED below)
--                              field "=x"                     -> checkpoints removed (and
--                                  values replaced) since its last collection
--   KEYS[5] namespaces   hash  field NS                      -> 1 (the thread's namespaces)
-- NS is netstring(checkpoint_ns). Netstrings ("<len>:<bytes>") never prefix one another,
-- so no thread id, namespace, channel or task id can make two fields collide.
--
-- A record is the msgpack array
--   [format, parent_id|nil, blob refs (one bin), DeltaChannel depth,
--    [meta key, metadata value digest, ...],
--    checkpoint type, checkpoint bytes, metadata type, metadata bytes]
-- Format 2 lists the blob refs as a JSON array of strings, which cjson (in every Redis
-- and Valkey, and in fakeredis) decodes in C; format 1 as netstrings, joined.
-- Scripts only read its first five items with the small reader below: Lua in
-- fakeredis has no cmsgpack, so nothing here may rely on it. The hot paths read only
-- the first four, which are flat. The DeltaChannel depth is how many ancestors the
-- checkpoint may need to rebuild its delta channels (from its
-- counters_since_delta_snapshot metadata); 0 without any.
--
-- Every script is sent the thread's expiry as its first argument, which is removed
-- from ARGV here; the ARGV numbers in each script's header are those left after that.
-- "" leaves the keys' TTL alone, "0" removes it, and a number of milliseconds sets it
-- on all five keys at once (see touch), so the keys of a thread live and expire
-- together. "~" and a number (what reads send) sets it only on a thread that already
-- has an expiry: a read never gives one to a thread written without a ttl.

local rcall = redis.call
local unpack = unpack or table.unpack
local TTL = table.remove(ARGV, 1) -- always
-- A write of a saver that creates uncounted threads (see UNCOUNTED) puts "u" in front
-- of its expiry; the rest of the argument reads as above.
local CREATES_UNCOUNTED = string.byte(TTL, 1) == 117 -- always
if CREATES_UNCOUNTED then
  TTL = string.sub(TTL, 2)
end
-- A write then names, before a "/", the number a write generation it creates starts
-- from (see next_generation); the rest reads as above.
local SEED = 1
local seeded = string.find(TTL, '/', 1, true) -- always
if seeded then
  SEED = tonumber(string.sub(TTL, 1, seeded - 1)) or 1
  TTL = string.sub(TTL, seeded + 1)
  if SEED < 1 or SEED >= 2 ^ 40 then  -- replies carry 16 * generation: under 2^53
    SEED = 1
  end
end

-- Raises `message`, with control bytes written as \xNN: messages quote stored field
-- names, which may hold any byte, and the server cuts an error reply at a NUL.
local function fail(message) -- cold
  return error((string.gsub(message, '[%z\1-\31\127]', function(c)
    return string.format('\\x%02x', string.byte(c))
  end)))
end

local function touch()
  if TTL == '' then
    return
  end
  local ttl, refresh_only = TTL, string.sub(TTL, 1, 1) == '~'
  if refresh_only then
    ttl = string.sub(TTL, 2)
  end
  -- The keys of a thread share one expiry, so one look tells whether any has one.
  -- KEYS[3] is the one every write creates (checkpoint counts, or the writes mark).
  if ttl == '0' or refresh_only then
    local current = rcall('PTTL', KEYS[3])
    if current == -1 or (refresh_only and current < 0) then
      return
    end
  end
  for i = 1, 5 do
    if ttl == '0' then
      rcall('PERSIST', KEYS[i])
    else
      rcall('PEXPIRE', KEYS[i], ttl)
    end
  end
end

local function netstring(s)
  return #s .. ':' .. s
end

-- Raises the error drive.py turns into CorruptDataError: `what` in `field` of `key`.
local function corrupt(what, field, key) -- cold
  return fail('plain_redis_saver: corrupt ' .. (what or 'value') .. ' in field '
    .. (field or '?') .. ' of ' .. (key or 'the script arguments'))
end

-- Reads one netstring at pos; returns the payload and the position after it. Stored
-- bytes may be anything, so the length must be digits and the payload must end within
-- s (otherwise this raises `what` in `field` of `key` as corrupt): every call advances,
-- and no loop over netstrings can run longer than its input.
local function read_netstring(s, pos, what, field, key)
  local digits = string.match(s, '^(%d+):', pos)
  if digits then
    local start = pos + #digits + 1
    local stop = start + tonumber(digits) - 1
    if stop <= #s then
      return string.sub(s, start, stop), stop + 1
    end
  end
  return corrupt(what, field, key)
end

local function split_netstrings(s, what, field, key)
  local out = {}
  if not s then
    return out
  end
  local pos, n, size = 1, 0, #s
  while pos <= size do
    n = n + 1
    out[n], pos = read_netstring(s, pos, what, field, key)
  end
  return out
end

-- Returns `ns` (a field of KEYS[5]) if it is one whole netstring, as the saver names
-- namespaces; anything else there would be taken for a prefix of other namespaces.
local function checked_namespace(ns)
  local _, after = read_netstring(ns, 1, 'namespace', ns, KEYS[5])
  if after ~= #ns + 1 then
    return corrupt('namespace', ns, KEYS[5])
  end
  return ns
end

-- Errors of the msgpack reader below; callers catch them (pcall) and name the field.
local TRUNCATED = 'msgpack value ends early'

local function be_uint(s, pos, n)
  if pos + n - 1 > #s then
    return error(TRUNCATED)
  end
  local v = 0
  for i = pos, pos + n - 1 do
    v = v * 256 + string.byte(s, i)
  end
  return v
end

-- The n bytes at pos, and the position after them.
local function mp_take(s, pos, n)
  local stop = pos + n - 1
  if stop > #s then
    return error(TRUNCATED)
  end
  return string.sub(s, pos, stop), stop + 1
end

-- Minimal msgpack reader: nil, booleans, non-negative ints, str and bin; that is all
-- the items of a record's header and a write's channel are. Every read is checked
-- against #s, so truncated or overlong lengths raise instead of reading past the end.
local function mp_scalar(s, pos)
  local b = string.byte(s, pos)
  if not b then
    return error(TRUNCATED)
  elseif b <= 0x7f then
    return b, pos + 1
  elseif b >= 0xa0 and b <= 0xbf then
    return mp_take(s, pos + 1, b - 0xa0)
  elseif b == 0xc0 then
    return nil, pos + 1
  elseif b == 0xc2 then
    return false, pos + 1
  elseif b == 0xc3 then
    return true, pos + 1
  elseif b == 0xc4 or b == 0xd9 then
    return mp_take(s, pos + 2, be_uint(s, pos + 1, 1))
  elseif b == 0xc5 or b == 0xda then
    return mp_take(s, pos + 3, be_uint(s, pos + 1, 2))
  elseif b == 0xc6 or b == 0xdb then
    return mp_take(s, pos + 5, be_uint(s, pos + 1, 4))
  elseif b == 0xcc then
    return be_uint(s, pos + 1, 1), pos + 2
  elseif b == 0xcd then
    return be_uint(s, pos + 1, 2), pos + 3
  elseif b == 0xce then
    return be_uint(s, pos + 1, 4), pos + 5
  end
  return error('unexpected msgpack byte ' .. b)
end

-- A scalar, or an array of scalars (a record's metadata index); nothing deeper, so
-- hostile nesting cannot recurse.
local function mp_read(s, pos)
  local b = string.byte(s, pos)
  local n
  if b and b >= 0x90 and b <= 0x9f then
    n, pos = b - 0x90, pos + 1
  elseif b == 0xdc or b == 0xdd then
    local width = (b == 0xdc) and 2 or 4
    n, pos = be_uint(s, pos + 1, width), pos + 1 + width
  else
    return mp_scalar(s, pos)
  end
  -- Every item takes at least one byte: a count beyond the bytes left is a lie.
  if n > #s - pos + 1 then
    return error(TRUNCATED)
  end
  local arr = {}
  for i = 1, n do
    arr[i], pos = mp_scalar(s, pos)
  end
  return arr, pos
end

-- The header as the client writes it (format a fixint; parent nil or a str8; blob refs
-- a bin8 or bin16; DeltaChannel depth a fixint), read with three string.byte calls:
-- parent, refs, depth, the position after them and format, or nothing when the bytes
-- differ in any way (the general reader below then reads them, or raises).
local function plain_header(record)
  local b, format, tag, len = string.byte(record, 1, 4)
  if not (b and b >= 0x95 and b <= 0x9f and format and format <= 0x7f) then
    return
  end
  local parent, pos = nil, 4
  if tag == 0xd9 and len then
    pos = 5 + len
    if pos - 1 > #record then
      return
    end
    parent = string.sub(record, 5, pos - 1)
  elseif tag ~= 0xc0 then
    return
  end
  local kind, x, y = string.byte(record, pos, pos + 2)
  local start
  if kind == 0xc4 and x then
    start, len = pos + 2, x
  elseif kind == 0xc5 and y then
    start, len = pos + 3, x * 256 + y
  else
    return
  end
  local stop = start + len - 1
  local depth = string.byte(record, stop + 1)
  if not depth or depth > 0x7f then
    return
  end
  return parent, string.sub(record, start, stop), depth, stop + 2, format
end

local function parse_header(record, with_index)
  local parent, refs, depth, pos, format = plain_header(record)
  if not pos then
    local b = string.byte(record, 1)
    if not b or b < 0x95 or b > 0x9f then
      return error('not a record')
    end
    format, pos = mp_scalar(record, 2)
    parent, pos = mp_scalar(record, pos)
    refs, pos = mp_scalar(record, pos)
    depth, pos = mp_scalar(record, pos)
  end
  local index
  if with_index then
    index, pos = mp_read(record, pos)
  end
  return parent, refs, depth, index, format
end

local function checked_header(record, field, with_index)
  local ok, parent, refs, depth, index, format = pcall(parse_header, record, with_index)
  if not ok or type(refs) ~= 'string' or type(depth) ~= 'number'
      or (parent ~= nil and type(parent) ~= 'string')
      or (with_index and (type(index) ~= 'table' or #index % 2 ~= 0)) then
    return corrupt('checkpoint record', field, KEYS[1])
  end
  return parent, refs, depth, index, format
end

-- JSON_REFS (codec.JSON_REFS_FORMAT, a constant shared with the Python side, see the
-- top): the record format whose blob refs are a JSON array of strings.

-- The blob refs listed in `refs` as record format `format` lists them (a JSON array
-- of strings, or netstrings); raises corrupt naming `field` of `key` otherwise.
-- One table.concat checks the items (it raises on a table, a boolean or JSON null)
-- for less than a type() per item costs. It lets a number through: such an item
-- names, as a decimal string, a value no put stores (every value field holds a ':'),
-- so a read finds it missing and reports the record damaged, and a removal frees
-- nothing by it.
local function refs_list(format, refs, field, key)
  if format ~= JSON_REFS then
    return split_netstrings(refs, 'checkpoint record', field, key)
  end
  local ok, list = pcall(cjson.decode, refs)
  if ok and type(list) == 'table' and pcall(table.concat, list) then
    -- Nothing beyond the array's items (a JSON object decodes to a table too).
    local n = #list
    if next(list, n > 0 and n or nil) == nil then
      return list
    end
  end
  return corrupt('checkpoint record', field, key)
end

-- Parent id (or nil), blob refs and DeltaChannel depth of the record stored in
-- `field` of the checkpoints hash; raises an error naming both if it is not a record.
local function record_header(record, field)
  local parent, refs, depth, _, format = checked_header(record, field, false)
  return parent, refs_list(format, refs, field, KEYS[1]), depth
end

-- Raises when the channel value in `field` of KEYS[3] is gone although a checkpoint
-- references it: a value never stored is legitimately absent, but then its reference
-- count exists; when both are gone the thread's data was evicted or deleted by hand,
-- or the reference in the record (`record`, a field of KEYS[1]) was damaged.
local function check_value_present(field, record) -- cold
  -- An uncounted thread has no count to tell the two apart: its keys are checked whole
  -- (an eviction takes a key, not a field), and a value it lacks reads as never stored.
  if rcall('HEXISTS', KEYS[3], '#' .. field) == 0
      and rcall('HEXISTS', KEYS[3], UNCOUNTED) == 0 then
    return fail('plain_redis_saver: corrupt thread: channel value ' .. field
      .. ' of ' .. KEYS[3] .. ', referenced by checkpoint ' .. record .. ' of ' .. KEYS[1]
      .. ', is missing (evicted, deleted by hand, or the record is damaged)')
  end
end

-- Raises when the order index (KEYS[2]) lists checkpoint `field` but its record is gone
-- from KEYS[1]: the scripts add and remove both together, so only an eviction or a
-- deletion by hand separates them.
local function record_missing(field) -- cold
  return fail('plain_redis_saver: corrupt thread: checkpoint ' .. field .. ' is in '
    .. KEYS[2] .. ' but its record is missing from ' .. KEYS[1]
    .. ' (evicted, or deleted by hand)')
end

-- WRITES_MARK ("=w"): the field of KEYS[3] present while KEYS[4] holds pending
-- writes. Netstrings start with a digit, so no "=".."NS" count field can be named like
-- it.

-- Whether `key` exists. PTTL answers -2 for a missing key; it is used instead of
-- EXISTS so that the saver's ACL rule (plain_redis_saver.acl) stays as it was.
local function exists(key)
  return rcall('PTTL', key) ~= -2
end

-- Whether checkpoint `member` (NS..CID) is in the order index.
local function in_order(member)
  return #rcall('ZRANGEBYLEX', KEYS[2], '[' .. member, '[' .. member) > 0
end

-- Raises when key KEYS[i] (what: its role) is gone although the thread still has data
-- that needs it: Redis evicts (and users delete) one key at a time.
local function key_missing(i, what, evidence) -- cold
  return fail('plain_redis_saver: corrupt thread: the ' .. what .. ' key ' .. KEYS[i]
    .. ' is missing although ' .. evidence .. ' (evicted, or deleted by hand)')
end

local KEY_ROLES = {'checkpoints', 'checkpoint order', 'channel values', 'pending writes',
  'namespaces'}

-- Whether KEYS[3] holds a checkpoint count ("=NS" field; NS starts with a digit, the
-- writes mark does not). Asked only when KEYS[1], KEYS[2] and KEYS[5] are all gone, where
-- a healthy KEYS[3] holds nothing but the writes mark: one short HSCAN page.
local function counts_checkpoints()
  local cursor = '0'
  repeat
    local page = rcall('HSCAN', KEYS[3], cursor, 'MATCH', '=[0-9]*', 'COUNT', 1000)
    if #page[2] > 0 then
      return true
    end
    cursor = page[1]
  until cursor == '0'
  return false
end

-- Raises, naming a missing key, unless the thread's keys are in a state the scripts
-- leave them in:
--   nothing at all (a new or deleted thread);
--   pending writes only (put_writes may come before the first put): KEYS[4], and KEYS[3]
--     holding the writes mark;
--   checkpoints: KEYS[1], KEYS[2], KEYS[5] and KEYS[3] (with the "=NS" counts), plus
--     KEYS[4] exactly while KEYS[3] holds the writes mark.
-- Any set of keys evicted together leaves a state outside these. (KEYS[3] may also hold
-- values of an interrupted copy or large put without any count: invisible, not damage.)
-- Returns whether the thread has checkpoints. Up to seven commands, so it runs only
-- where a read found something absent, never on the healthy hot path.
local function check_thread_intact() -- cold
  local has = {}
  for i = 1, 5 do
    has[i] = exists(KEYS[i])
  end
  local marked = has[3] and rcall('HEXISTS', KEYS[3], WRITES_MARK) == 1
  local witness = (has[1] and 1) or (has[2] and 2) or (has[5] and 5)
  if not witness and has[3] and counts_checkpoints() then
    witness = 3
  end
  if witness then
    for _, i in ipairs({1, 2, 5, 3}) do
      if not has[i] then
        key_missing(i, KEY_ROLES[i], KEYS[witness] .. ' shows that the thread has checkpoints')
      end
    end
  end
  if marked and not has[4] then
    key_missing(4, KEY_ROLES[4], KEYS[3] .. ' records that writes were stored')
  end
  if has[4] and not marked then
    if not has[3] then
      key_missing(3, KEY_ROLES[3], KEYS[4] .. ' holds pending writes')
    end
    return fail('plain_redis_saver: corrupt thread: the channel values key ' .. KEYS[3]
      .. ' was lost and written again (its mark of the pending writes in ' .. KEYS[4]
      .. ' is missing; evicted, or deleted by hand)')
  end
  return witness ~= nil
end

-- The pending writes (KEYS[4]) must exist while KEYS[3] says some were stored. Called
-- by reads that found a checkpoint of namespace NS with no write index. When KEYS[4] is
-- absent, one look at KEYS[3] tells the usual case (a thread that never had writes:
-- no mark, and the namespace's checkpoint count there) from damage; anything else
-- checks the whole thread, as KEYS[3] may have gone with KEYS[4].
local function check_writes_present(ns)
  if exists(KEYS[4]) then
    return
  end
  local got = rcall('HMGET', KEYS[3], WRITES_MARK, '=' .. ns)
  if got[1] or not got[2] then
    check_thread_intact()
  end
end

-- The thread's namespaces (HKEYS of KEYS[5]); raises when KEYS[5] is gone although
-- the thread has checkpoints.
local function namespaces()
  local found = rcall('HKEYS', KEYS[5])
  if #found == 0 then
    check_thread_intact()
  end
  return found
end

-- The metadata index of a record: {key, value digest, key, value digest, ...}.
local function record_index(record, field)
  local _, _, _, index = checked_header(record, field, true)
  return index
end

-- The channel a write is for: the first item of the stored write (`field` of KEYS[4]).
local function write_channel(value, field)
  local b = string.byte(value, 1)
  if b == 193 and string.byte(value, 2) == 0 and #value >= 6 then
    -- A composed write (see COMPOSED below): its first item is a literal that starts
    -- with the write's own header, channel included.
    local x, y, z, w = string.byte(value, 3, 6)
    value = string.sub(value, 7, 6 + ((x * 256 + y) * 256 + z) * 256 + w)
    b = string.byte(value, 1)
  end
  local ok, channel = false, nil
  if b and b >= 0x91 and b <= 0x9f then
    ok, channel = pcall(mp_scalar, value, 2)
  end
  if not ok or type(channel) ~= 'string' then
    return corrupt('pending write', field, KEYS[4])
  end
  return channel
end

-- HMGET in slices: Lua's stack limits how many values unpack may spread. A missing
-- field reads as false (the server's conversion of a nil reply), so a reply of one
-- slice is the answer as it is.
local function hmget(key, fields)
  local n = #fields
  if n <= 1000 then
    return n > 0 and rcall('HMGET', key, unpack(fields, 1, n)) or {}
  end
  local out = {}
  local i = 1
  while i <= n do
    local j = math.min(i + 999, n)
    local part = rcall('HMGET', key, unpack(fields, i, j))
    for k = 1, j - i + 1 do
      out[#out + 1] = part[k] or false
    end
    i = j + 1
  end
  return out
end

-- HSET of {field, value, field, value, ...} in slices, like hmget.
local function hset(key, pairs_list)
  local n = #pairs_list
  local i = 1
  while i <= n do
    local j = math.min(i + 1999, n)
    rcall('HSET', key, unpack(pairs_list, i, j))
    i = j + 1
  end
end

local function hdel(key, fields)
  local n = #fields
  local i = 1
  while i <= n do
    local j = math.min(i + 999, n)
    rcall('HDEL', key, unpack(fields, i, j))
    i = j + 1
  end
end

-- Composed values (storage schema 2). A channel value (KEYS[3]) or pending write
-- (KEYS[4]) whose bytes start with COMPOSED (0xc1: a byte msgpack never uses, and no
-- netstring starts with it) is a node: after that byte come items, each a literal (0x00,
-- a 4-byte big-endian length, the bytes) or a reference (0x01, DIGEST_SIZE bytes) to
-- content stored in KEYS[3] at CONTENT..digest. Content is either a piece (the bytes of
-- one msgpack object, at least 64 bytes long) or another node (starting 0x00 or 0x01: a
-- msgpack object starting so is one byte long, so the two never meet). The value's bytes
-- are the items' bytes in order, references replaced by what they name, recursively.
-- Content is named by the BLAKE2b-128 digest of its bytes (the client computes it), so it
-- is written once and never changed; CONTENT_COUNT..digest counts the references to it
-- from stored values and nodes, and content goes when its count reaches 0. Only what a
-- call makes new is counted: a new node counts its items once, when it is stored.
-- (COMPOSED, CONTENT, CONTENT_COUNT and DIGEST_SIZE are constants shared with the
-- Python side, see the top.)
-- Bounds on what stored content may make a read do: nodes nest at most MAX_NESTING
-- deep (a client writes 4-5 levels for a million items), and one call returns at most
-- MAX_BUILT bytes (the largest reply a server sends) in at most MAX_PARTS pieces (runs
-- of 16 elements of 64+ bytes: 256 MiB; a tree naming one node many times over is
-- refused before it costs a second of server time). Shared with the Python side too.

local function hex(s)
  return (string.gsub(s, '.', function(c)
    return string.format('%02x', string.byte(c))
  end))
end

local function is_node(s)
  local b = string.byte(s, 1)
  return b == 0 or b == 1
end

local function is_composed(value)
  return value and string.byte(value, 1) == COMPOSED
end

-- Walks the items of the node `s` from `start`: appends each literal's bytes to `parts`
-- (when given) and each reference's digest to `refs`, in order (repeats included).
-- Raises corrupt naming `field` of `key` on anything else; every item consumes at
-- least one byte. (Inline, without a callback per item: it runs once per piece read.)
local function node_walk(s, start, field, key, refs, parts)
  local pos, size = start, #s
  while pos <= size do
    local tag = string.byte(s, pos)
    if tag == 1 and pos + DIGEST_SIZE <= size then
      local d = string.sub(s, pos + 1, pos + DIGEST_SIZE)
      refs[#refs + 1] = d
      if parts then
        parts[#parts + 1] = d
      end
      pos = pos + 1 + DIGEST_SIZE
    elseif tag == 0 and pos + 4 <= size then
      local a, b, c, d = string.byte(s, pos + 1, pos + 4)
      local stop = pos + 4 + ((a * 256 + b) * 256 + c) * 256 + d
      if stop > size then
        return corrupt('composed value', field, key)
      end
      if parts then
        parts[#parts + 1] = false
        parts[#parts + 1] = string.sub(s, pos + 5, stop)
      end
      pos = stop + 1
    else
      return corrupt('composed value', field, key)
    end
  end
  return refs
end

-- The digests a node (from `start`) references, in order, repeats included.
local function node_refs(s, start, field, key)
  return node_walk(s, start, field, key, {}, nil)
end

-- The references of the composed values among values[1..n] (others are skipped).
local function composed_refs(values, n, fields, key)
  local refs = {}
  for i = 1, n do
    local value = values[i]
    if value and string.byte(value, 1) == COMPOSED then  -- is_composed, inline: per value
      node_walk(value, 2, fields and fields[i], type(key) == 'table' and key[i] or key, refs)
    end
  end
  return refs
end

-- Raises for content `digest` missing from KEYS[3], naming what references it: the first
-- of the composed values[1..n] (fields, key: as expand_values takes them) or of the nodes
-- read so far (`content`) that does. Only a failing read searches, so the healthy path
-- keeps no record of who referenced what.
local function content_missing(digest, values, n, fields, key, content) -- cold
  local by = 'a stored value'
  for i = 1, n do
    if is_composed(values[i]) then
      local where = type(key) == 'table' and key[i] or key
      for _, d in ipairs(node_refs(values[i], 2, fields and fields[i], where)) do
        if d == digest then
          by = (fields and fields[i] or '?') .. ' of ' .. where
        end
      end
    end
  end
  for name, c in pairs(content) do
    if is_node(c) then
      for _, d in ipairs(node_refs(c, 1, CONTENT .. name, KEYS[3])) do
        if d == digest then
          by = CONTENT .. hex(name) .. ' of ' .. KEYS[3]
        end
      end
    end
  end
  return fail('plain_redis_saver: corrupt thread: content ' .. hex(digest) .. ' of '
    .. KEYS[3] .. ', referenced by ' .. by .. ', is missing (evicted, deleted by hand, or '
    .. 'the reference is damaged)')
end

-- `s`, the digests a read's client holds the content of (whole DIGEST_SIZE-byte
-- digests, one after the other), checked.
local function held_digests(s)
  if #s % DIGEST_SIZE ~= 0 then
    return fail('plain_redis_saver: held digests are ' .. #s .. ' bytes, not a multiple of '
      .. DIGEST_SIZE)
  end
  return s
end

-- Whether digest `d` is one of `held` (see held_digests). A search of the string costs
-- less than making a set of it: most reads look up fewer digests than the client names.
local function holds(held, d)
  local init = 1
  while true do
    local at = string.find(held, d, init, true)
    if not at then
      return false
    elseif at % DIGEST_SIZE == 1 then
      return true
    end
    init = at + 1
  end
end

-- The content the composed values among values[1..n] (false entries allowed) reach,
-- without what `held` (see held_digests) names: a held digest is neither read nor
-- walked into, since the client has its content (a client names a node only when it
-- holds all the node reaches). Returns the content as a map (digest -> bytes) and as a
-- flat list {digest, bytes, ...} in reading order.
-- One HMGET per level of nesting, for all values at once; content shared by several
-- values (or several times by one) is read once, so a tree naming one node many times
-- over costs its distinct nodes only.
local function gather_content(values, n, fields, key, held)
  local content, flat, pending, seen = {}, {}, {}, {}
  -- Each digest is looked up in `held` once, however many values reference it.
  local function want(refs)
    for i = 1, #refs do
      local d = refs[i]
      if not seen[d] then
        seen[d] = true
        if held == '' or not holds(held, d) then
          pending[#pending + 1] = d
        end
      end
    end
  end
  want(composed_refs(values, n, fields, key))
  local levels = 0
  while #pending > 0 do
    levels = levels + 1
    if levels > MAX_NESTING then
      return corrupt('composed value (nested too deep)', nil, KEYS[3])
    end
    local wanted, names = pending, {}
    pending = {}
    for j = 1, #wanted do
      names[j] = CONTENT .. wanted[j]
    end
    local got = hmget(KEYS[3], names)
    for j = 1, #wanted do
      local d, c = wanted[j], got[j]
      if not c or c == '' then
        content_missing(d, values, n, fields, key, content)
      end
      content[d] = c
      flat[#flat + 1] = d
      flat[#flat + 1] = c
      if is_node(c) then
        want(node_refs(c, 1, names[j], KEYS[3]))
      end
    end
  end
  return content, flat
end

-- Replaces each composed value among values[1..n] (false entries allowed) by the list
-- of the byte strings whose concatenation it stands for (for scripts whose caller
-- keeps no content: the reads of checkpoints send composed values and their content
-- as they are, see load_records).
local function expand_values(values, n, fields, key)
  local content = gather_content(values, n, fields, key, '')
  -- Each value becomes the list of its parts (literals and pieces) in order: the client
  -- joins them. Joining here would cost more than all the rest (Lua 5.1 builds a long
  -- string through interned intermediate ones).
  local total, count = 0, 0
  local function flatten(s, start, depth, field, where, out)
    if depth > MAX_NESTING then
      return corrupt('composed value (nested too deep or a cycle)', field, KEYS[3])
    end
    local items = {}
    node_walk(s, start, field, where, {}, items)
    local k = 1
    while k <= #items do
      local item = items[k]
      if item == false then
        out[#out + 1] = items[k + 1]
        k = k + 2
      else
        local c = content[item]
        if is_node(c) then
          flatten(c, 1, depth + 1, CONTENT .. item, KEYS[3], out)
        else
          total, count = total + #c, count + 1
          if total > MAX_BUILT or count > MAX_PARTS then
            return corrupt('composed value (over ' .. MAX_BUILT .. ' bytes or ' .. MAX_PARTS
              .. ' pieces)', field, KEYS[3])
          end
          out[#out + 1] = c
        end
        k = k + 1
      end
    end
  end
  for i = 1, n do
    if is_composed(values[i]) then
      local out = {}
      flatten(values[i], 2, 1, fields and fields[i], type(key) == 'table' and key[i] or key, out)
      values[i] = out
    end
  end
end

-- Adds each digest of `refs` to `delta` (digest -> occurrences); the digests not in it
-- before go to the end of `order` and are returned with the names of their counts.
local function tally(refs, delta, order)
  local fresh, names = {}, {}
  for _, d in ipairs(refs) do
    local n = delta[d]
    if not n then
      fresh[#fresh + 1] = d
      names[#names + 1] = CONTENT_COUNT .. d
      order[#order + 1] = d
      n = 0
    end
    delta[d] = n + 1
  end
  return fresh, names
end

-- Calls want(d) for each digest of `refs` (repeats included) and for each digest a
-- node sent in this call (`sent`: digest -> bytes, or nil) references; returns those
-- nodes' references (digest -> digests).
local function each_reference(refs, sent, want)
  local children = {}
  for i = 1, #refs do
    want(refs[i])
  end
  for d, c in pairs(sent or {}) do
    if is_node(c) then
      local mine = node_refs(c, 1, CONTENT .. d, 'the script arguments')
      children[d] = mine
      for i = 1, #mine do
        want(mine[i])
      end
    end
  end
  return children
end

-- Counting references to content, planned before anything is written so that a refused
-- call writes nothing. plan_reads names the counts that `refs` (digests, repeats
-- counting) and the content sent in this call (`sent`: digest -> bytes) may need; the
-- caller reads them with the rest of what it reads from KEYS[3]. plan_counts then finds
-- what each reference needs: it must be stored already or be sent; sent content not
-- stored yet will be stored, and its own references count in turn. It raises
-- "plain_redis_saver: missing content" when some is neither (the client's record of
-- what the server holds was stale: it resends everything). plan_rows gives the plan's
-- writes, for the caller's HSET of KEYS[3]; apply_refs writes them alone.
local function plan_reads(refs, sent, names)
  -- The counts a plan of `refs` and `sent` may need, appended to `names` (the fields
  -- the caller reads from KEYS[3]): those of the values' references and of everything
  -- the sent nodes reference (whether each sent node is new, and so counts its
  -- references, is only known from its own count). Each count's field name is made once
  -- (`named`), for the read and again for the plan's rows.
  local first, named, wanted = #names, {}, {}
  local children = each_reference(refs, sent, function(d)
    if not named[d] then
      local name = CONTENT_COUNT .. d
      named[d] = name
      wanted[#wanted + 1] = d
      names[#names + 1] = name
    end
  end)
  return {first = first, named = named, wanted = wanted, children = children}
end

-- The plan of `refs` (a subset of those `reads` was made for) from `counts`, the values
-- read for the fields plan_reads appended (at the same places).
local function plan_counts(refs, sent, reads, counts)
  local stored, named, wanted, first = {}, reads.named, reads.wanted, reads.first
  for j = 1, #wanted do
    local count = counts[first + j]
    if count then
      local d = wanted[j]
      stored[d] = tonumber(count) or corrupt('content count', named[d], KEYS[3])
    end
  end
  -- Each digest's first reference decides: stored content keeps its count as the base,
  -- sent content is new (base 0) and its own references count in turn; every reference
  -- adds one (repeats included).
  local children = reads.children
  local delta, base, order, new = {}, {}, {}, {}
  local queue = refs
  while #queue > 0 do
    local later = {}
    for i = 1, #queue do
      local d = queue[i]
      local n = delta[d]
      if n then
        delta[d] = n + 1
      else
        delta[d] = 1
        order[#order + 1] = d
        local count = stored[d]
        if count then
          base[d] = count
        elseif sent and sent[d] then
          base[d] = 0
          new[#new + 1] = d
          for _, r in ipairs(children[d] or {}) do
            later[#later + 1] = r
          end
        else
          return fail('plain_redis_saver: missing content')
        end
      end
    end
    queue = later
  end
  return {delta = delta, base = base, order = order, new = new, sent = sent, named = reads.named}
end

-- The content an uncounted thread's write needs (see UNCOUNTED), checked like the
-- counts above but without them: content_reads appends to `names` (the fields the
-- caller reads from KEYS[3]) the content field of each digest that `refs` (digests,
-- repeats allowed) or a node sent in this call references and that is not sent;
-- content_rows then walks what `refs` reaches, from `got` (the values read, at the same
-- places): each digest must be stored or sent, else it raises "plain_redis_saver:
-- missing content" before anything is written; the sent content reached is appended
-- to `rows` (field, value, ...: for the caller's HSET of KEYS[3]). Sent content that
-- is stored already is written again with the same bytes: reading it would cost more.
local function content_reads(refs, sent, names)
  local at = {}
  local children = each_reference(refs, sent, function(d)
    if not at[d] and not (sent and sent[d]) then
      names[#names + 1] = CONTENT .. d
      at[d] = #names
    end
  end)
  return {at = at, children = children}
end

local function content_rows(refs, sent, reads, got, rows)
  local seen, at, children = {}, reads.at, reads.children
  local queue = refs
  while #queue > 0 do
    local later = {}
    for i = 1, #queue do
      local d = queue[i]
      if not seen[d] then
        seen[d] = true
        local c = sent and sent[d]
        if c then
          rows[#rows + 1] = CONTENT .. d
          rows[#rows + 1] = c
          for _, r in ipairs(children[d] or {}) do
            later[#later + 1] = r
          end
        elseif not got[at[d]] then
          return fail('plain_redis_saver: missing content')
        end
      end
    end
    queue = later
  end
  return rows
end

-- Appends the plan's writes to `rows` (field, value, ...: an HSET of KEYS[3]).
local function plan_rows(plan, rows)
  local sent, named, base, delta = plan.sent, plan.named, plan.base, plan.delta
  local new, order, n = plan.new, plan.order, #rows
  for i = 1, #new do
    local d = new[i]
    rows[n + 1] = CONTENT .. d
    rows[n + 2] = sent[d]
    n = n + 2
  end
  for i = 1, #order do
    local d = order[i]
    rows[n + 1] = named[d]
    rows[n + 2] = base[d] + delta[d]
    n = n + 2
  end
  return rows
end

local function apply_refs(plan)
  hset(KEYS[3], plan_rows(plan, {}))
end

-- Adds one reference to each of `refs`, whether the content is stored yet or not
-- (imports: content may come after what references it).
local function add_refs(refs)
  local delta, order = {}, {}
  local _, names = tally(refs, delta, order)
  local counts = hmget(KEYS[3], names)
  local rows = {}
  for j, d in ipairs(order) do
    rows[#rows + 1] = names[j]
    rows[#rows + 1] = (tonumber(counts[j]) or 0) + delta[d]
  end
  hset(KEYS[3], rows)
end

-- Appends to `out` the digests node `s` (from `start`) references, for a release.
-- Damaged content adds none and is not followed: a release never raises halfway through
-- a removal (what it would have freed stays, unreferenced).
local function released_refs(s, start, field, key, out)
  local ok, refs = pcall(node_refs, s, start, field, key)
  if ok then
    for _, d in ipairs(refs) do
      out[#out + 1] = d
    end
  end
end

-- Drops one reference from each of `refs`; content left without any is deleted, and
-- its own references dropped in turn. Lenient: a count already gone counts as 1.
local function release_refs(refs)
  local queue = refs
  while #queue > 0 do
    local delta = {}
    local fresh, names = tally(queue, delta, {})
    queue = {}
    local counts = hmget(KEYS[3], names)
    local rows, dead, dead_content = {}, {}, {}
    for j, d in ipairs(fresh) do
      local n = (tonumber(counts[j]) or 1) - delta[d]
      if n > 0 then
        rows[#rows + 1] = names[j]
        rows[#rows + 1] = n
      else
        dead[#dead + 1] = names[j]
        dead[#dead + 1] = CONTENT .. d
        dead_content[#dead_content + 1] = CONTENT .. d
      end
    end
    if #dead_content > 0 then
      for j, c in ipairs(hmget(KEYS[3], dead_content)) do
        if c and is_node(c) then
          released_refs(c, 1, dead_content[j], KEYS[3], queue)
        end
      end
      hdel(KEYS[3], dead)
    end
    hset(KEYS[3], rows)
  end
end

-- Releases what the composed values among the fields `fields` of `key` reference
-- (call before deleting or replacing them).
local function release_values(key, fields)
  if #fields == 0 then
    return
  end
  local values = hmget(key, fields)
  local refs = {}
  for i, value in ipairs(values) do
    if is_composed(value) then
      released_refs(value, 2, fields[i], key, refs)
    end
  end
  release_refs(refs)
end

-- The content rows the recipes among a write call's arguments stand for (`recipes`:
-- field RECIPE..digest, items, ...), appended to `content`: each recipe's items are
-- literals and references to content the thread holds, whose bytes joined in order are
-- the content's (a run of pieces the client stored one by one before: see compose.py).
-- Content a recipe references that the thread lacks fails the call as a claim that does
-- not hold would, before it writes anything; the client sends it again with the bytes.
local function from_recipes(recipes, content) -- cold
  local parts, names, wanted = {}, {}, {}
  for i = 1, #recipes, 2 do
    if #recipes[i] ~= 1 + DIGEST_SIZE then
      return corrupt('recipe field', hex(recipes[i]), 'the script arguments')
    end
    local refs = {}
    parts[i] = {}
    node_walk(recipes[i + 1], 1, recipes[i], 'the script arguments', refs, parts[i])
    for _, d in ipairs(refs) do
      if not wanted[d] then
        wanted[d] = true
        names[#names + 1] = CONTENT .. d
      end
    end
  end
  local got = {}
  local found = hmget(KEYS[3], names)
  for j = 1, #names do
    if not found[j] then
      return fail('plain_redis_saver: missing content ' .. hex(string.sub(names[j], 2))
        .. ' of ' .. KEYS[3] .. ', which a recipe of the call references')
    end
    got[string.sub(names[j], 2)] = found[j]
  end
  for i = 1, #recipes, 2 do
    local out, total, items, k = {}, 0, parts[i], 1
    while k <= #items do
      local part = items[k]
      if part == false then
        part, k = items[k + 1], k + 2
      else
        part, k = got[part], k + 1
      end
      out[#out + 1] = part
      total = total + #part
      if total > MAX_BUILT then
        return corrupt('recipe (over ' .. MAX_BUILT .. ' bytes)', hex(recipes[i]),
          'the script arguments')
      end
    end
    content[#content + 1] = CONTENT .. string.sub(recipes[i], 2)
    content[#content + 1] = table.concat(out)
  end
  return content
end

-- Splits the field/value pairs of a write call (ARGV from `first`) into the call's own
-- rows and the content sent along (fields CONTENT..digest, or RECIPE..digest, which
-- stands for content built from what the thread holds: see from_recipes), both as rows
-- (field, value, ...): a write whose claim holds stores the content as it is.
local function take_content(first)
  local rows, content, recipes = {}, {}, nil
  for i = first, #ARGV, 2 do
    local field = ARGV[i]
    local kind = string.byte(field, 1)
    if kind == 42 then
      content[#content + 1] = field
      content[#content + 1] = ARGV[i + 1]
    elseif kind == RECIPE then
      recipes = recipes or {}
      recipes[#recipes + 1] = field
      recipes[#recipes + 1] = ARGV[i + 1]
    else
      rows[#rows + 1] = field
      rows[#rows + 1] = ARGV[i + 1]
    end
  end
  if recipes then
    from_recipes(recipes, content)
  end
  return rows, content
end

-- The content rows of take_content as a map, digest -> bytes (nil when none), for the
-- writes that look for what their values reference.
local function sent_map(content)
  if #content == 0 then
    return nil
  end
  local sent = {}
  for i = 1, #content, 2 do
    sent[string.sub(content[i], 2)] = content[i + 1]
  end
  return sent
end

-- The pending-write index of a checkpoint grows by appending. Rewriting one ever longer
-- field would make each of N small put_writes cost O(N), so once the head field passes
-- INDEX_SEGMENT bytes its content moves to a numbered segment and the head restarts as
-- "+K:" (K segments). "+" starts no netstring, and no write field continues a base
-- with "+" (the task's netstring starts with a digit), so nothing can be confused.
local INDEX_SEGMENT = 4096

-- Number of segments of the index whose head is `head`, and where its own subs start.
local function index_segments(head, field)
  if string.byte(head, 1) ~= 43 then
    return 0, 1
  end
  local colon = string.find(head, ':', 2, true)
  local k = colon and tonumber(string.sub(head, 2, colon - 1))
  if not k or k < 1 or k ~= math.floor(k) then
    return corrupt('pending-write index', field, KEYS[4])
  end
  return k, colon + 1
end

-- Field names of the segments of the index in `base` (head `head`).
local function segment_fields(base, head)
  local fields = {}
  for i = 1, (index_segments(head, base)) do
    fields[i] = base .. '+' .. i
  end
  return fields
end

-- The whole index (netstrings of subs) of the head `head` stored at `base`.
local function full_index(base, head)
  local fields = segment_fields(base, head)
  if #fields == 0 then
    return head
  end
  local parts = hmget(KEYS[4], fields)
  for i, part in ipairs(parts) do
    if not part then
      return fail('plain_redis_saver: corrupt thread: index segment ' .. fields[i]
        .. ' of ' .. KEYS[4] .. ' is missing (evicted, or deleted by hand)')
    end
  end
  local _, start = index_segments(head, base)
  parts[#parts + 1] = string.sub(head, start)
  return table.concat(parts)
end

-- Appends to `rows` (field, value, ...: an HSET of KEYS[4]) what adds `added`
-- (netstrings of subs) to the index at `base` whose head is `stored` (false or nil: no
-- index yet): O(INDEX_SEGMENT), however long the index already is.
local function index_rows(base, stored, added, rows)
  local head = stored or ''
  local k, start = index_segments(head, base)
  local rest = string.sub(head, start) .. added
  if #rest > INDEX_SEGMENT then
    k = k + 1
    rows[#rows + 1] = base .. '+' .. k
    rows[#rows + 1] = rest
    rows[#rows + 1] = base
    rows[#rows + 1] = '+' .. k .. ':'
  elseif k > 0 then
    rows[#rows + 1] = base
    rows[#rows + 1] = '+' .. k .. ':' .. rest
  else
    rows[#rows + 1] = base
    rows[#rows + 1] = rest
  end
  return rows
end

-- Appends `added` to the index at `base`; returns whether it is new.
local function append_index(base, added)
  local stored = rcall('HGET', KEYS[4], base)
  hset(KEYS[4], index_rows(base, stored, added, {}))
  return not stored
end

-- Checkpoints with their blobs and pending writes, as the client decodes them.
-- `found` is a list of {ns, cid, record}; returns one {ns, cid, record, write index,
-- {write...}} per entry, in order; the channel values they reference, each once, in
-- the order they are first referenced (entry by entry, each record's references in
-- order, per namespace: the client assigns them back the same way); the content their
-- composed values and writes reach that `held` (see gather_content) does not name, as
-- {digest, bytes, ...}.
-- Composed values are sent as stored: the client rebuilds them from that content and
-- its own (its cache of content, which is what it names as held). Three HMGETs in all,
-- and one per level of composed content, however many checkpoints: a channel value
-- shared by several of them is asked for once.
local function load_records(found, held)
  local blob_fields, listed, blob_owner, nb = {}, {}, {}, 0
  local index_fields = {}
  -- Lists the values that entry i of `found` references (`refs`): the references
  -- listed so far, by namespace, so a field name is made once per distinct value, not
  -- once per checkpoint that references it.
  local function list_refs(i, refs)
    local entry = found[i]
    local ns = entry[1]
    local field = ns .. entry[2]
    local seen = listed[ns]
    if not seen then
      seen = {}
      listed[ns] = seen
    end
    for k = 1, #refs do
      local ref = refs[k]
      if ref ~= ref then  -- NaN (cjson reads it), which no table takes as a key
        return corrupt('checkpoint record', field, KEYS[1])
      end
      if not seen[ref] then
        seen[ref] = true
        nb = nb + 1
        blob_fields[nb] = ns .. ref
        blob_owner[nb] = field
      end
    end
    index_fields[i] = ns .. netstring(entry[2])
  end
  -- One pcall for the page, not one per record: a record whose references are not a
  -- JSON array of strings stops the pass (cjson.decode raises, and so does joining a
  -- table, boolean or null to the namespace), and is reported by the general reader.
  -- A number or an object gets through as a value no put stores, or none: the client,
  -- which decodes every record it is sent, refuses both.
  local at = 0
  local ok = pcall(function()
    for i = 1, #found do
      at = i
      local _, refs, _, _, format = plain_header(found[i][3])
      if format ~= JSON_REFS then
        return error('not plain')
      end
      list_refs(i, cjson.decode(refs))
    end
  end)
  -- The rest of the page, from the record that stopped the pass, by the general reader
  -- (the older format, a header written otherwise, or damage, which it reports).
  if not ok then
    for i = at, #found do
      local entry = found[i]
      local _, refs = record_header(entry[3], entry[1] .. entry[2])
      list_refs(i, refs)
    end
  end
  local indexes = hmget(KEYS[4], index_fields)
  -- A checkpoint without writes is usual (a thread's newest, for one); whether the
  -- writes key should be there is asked of KEYS[3] in the same HMGET as the values:
  -- its writes mark and the namespace's checkpoint count (see check_writes_present).
  local unwritten
  for i = 1, #found do
    local index = indexes[i]
    if not index then
      if not unwritten then
        unwritten = found[i][1]
        blob_fields[nb + 1] = WRITES_MARK
        blob_fields[nb + 2] = '=' .. unwritten
      end
    elseif string.byte(index, 1) == 43 then
      indexes[i] = full_index(index_fields[i], index)
    end
  end
  local blobs = hmget(KEYS[3], blob_fields)
  if unwritten then
    local marked, counted = blobs[nb + 1], blobs[nb + 2]
    blob_fields[nb + 1], blob_fields[nb + 2], blobs[nb + 1], blobs[nb + 2] = nil, nil, nil, nil
    -- No writes mark, and the namespace counted: no write was stored, nothing is lost.
    if marked or not counted then
      check_writes_present(unwritten)
    end
  end
  for slot = 1, nb do
    if not blobs[slot] then
      check_value_present(blob_fields[slot], blob_owner[slot])
    end
  end
  local write_fields, write_span, nw = {}, {}, 0
  for i = 1, #found do
    local base = index_fields[i]
    local first = nw + 1
    local subs = split_netstrings(indexes[i] or nil, 'write index', base, KEYS[4])
    for k = 1, #subs do
      nw = nw + 1
      write_fields[nw] = base .. subs[k]
    end
    write_span[i] = {first, nw}
  end
  local writes = hmget(KEYS[4], write_fields)
  -- The content of composed values and writes is gathered together: one HMGET per
  -- level of nesting for both.
  local values, fields, keys = {}, {}, {}
  for i = 1, nb do
    values[i], fields[i], keys[i] = blobs[i], blob_fields[i], KEYS[3]
  end
  for i = 1, nw do
    values[nb + i], fields[nb + i], keys[nb + i] = writes[i], write_fields[i], KEYS[4]
  end
  local _, flat = gather_content(values, nb + nw, fields, keys, held)
  local out = {}
  for i = 1, #found do
    local entry, span, own_writes = found[i], write_span[i], {}
    for k = span[1], span[2] do
      own_writes[k - span[1] + 1] = writes[k]
    end
    out[i] = {entry[1], entry[2], entry[3], indexes[i] or '', own_writes}
  end
  return out, blobs, flat
end

-- Field of KEYS[3] counting the changes to the thread: the write generation. A reader
-- that needs several calls to read a thread (copy_thread, the CLI's export) reads it
-- before and after, and knows it saw one state when it did not move. Every script that
-- changes a thread calls this. It is dropped once the thread holds no records and no
-- writes, so it never keeps KEYS[3] alive on its own. A generation a call creates
-- starts from SEED, a random number every write sends (scripts do not read the clock):
-- a thread deleted (or expired, or copied over) and written again counts on from
-- somewhere else, so a process that last saw it at generation G does not find G again
-- after as many writes (but by a chance of about one in 2^40). Claims rely on it (see
-- claim_holds).
-- Its field is GENERATION ("=g"), a constant shared with the Python side.

-- Whether the client already has checkpoint NS..CID's record and values: `known` is
-- {cid, generation} of the checkpoint it last wrote or read whole, with the write
-- generation its own writes and reads left the thread at (their replies name it, so
-- the client knows nothing else changed in between); `generation` is the thread's now
-- (the GENERATION field of KEYS[3], nil when absent), read by the caller. The same
-- generation means no script has changed the thread since, so the record and values
-- are still the ones it holds. (A thread deleted and written again counts on from a new
-- random start, see above; even were it to meet the same generation, the record must
-- still be there under the same checkpoint id, which only a copy of that checkpoint
-- makes.)
local function client_has(cid, known, generation)
  if known[1] ~= cid then
    return false
  end
  local stored = tonumber(generation)
  return stored ~= nil and stored == tonumber(known[2])
end

-- Checkpoint NS..CID as load_checkpoint returns it (record "" and no values) for a
-- client that has its record and values but not its pending writes: the writes, and
-- the content they reach that `held` does not name, read as load_records reads them,
-- without it and the helpers only it needs (see the "-- warm:" line of
-- get_checkpoint.lua). A checkpoint without writes is checked as load_records checks
-- one (see check_writes_present).
local function confirmed_writes(ns, cid, held)
  local base = ns .. netstring(cid)
  local index = rcall('HGET', KEYS[4], base)
  if not index then
    check_writes_present(ns)
    return {cid, '', {}, '', {}, {}}
  end
  if string.byte(index, 1) == 43 then
    index = full_index(base, index)
  end
  local subs = split_netstrings(index, 'write index', base, KEYS[4])
  local fields = {}
  for k = 1, #subs do
    fields[k] = base .. subs[k]
  end
  local writes = hmget(KEYS[4], fields)
  local _, content = gather_content(writes, #writes, fields, KEYS[4], held)
  return {cid, '', {}, index, writes, content}
end

-- Checkpoint NS..CID as {cid, record, {blob...}, write index, {write...}, content} (see
-- load_records: the blobs are the record's distinct values, in the order it references
-- them), or false when it is absent. With `known` and `generation` (see client_has)
-- matching, the record is sent as "" and no values: the client has them; and when the
-- client also knows the checkpoint's pending writes (known[3] is "1": it has none; "2":
-- the client holds them), nothing else is read but, for "2", that the write index is
-- there (so an evicted KEYS[4] is noticed): the same generation means none was stored
-- since.
local function load_checkpoint(ns, cid, held, known, generation)
  if known and client_has(cid, known, generation) then
    if rcall('HEXISTS', KEYS[1], ns .. cid) == 0 then
      return false
    end
    local writes = known[3]
    if writes == '1' then
      return {cid, '', {}, '', {}, {}}
    elseif writes ~= '2' then
      return confirmed_writes(ns, cid, held)
    -- The write index's field, NS..netstring(CID): netstring is a warm helper, which
    -- this path does without.
    elseif rcall('HEXISTS', KEYS[4], ns .. #cid .. ':' .. cid) == 1 then
      return {cid, '', {}, '', {}, {}}
    end
    -- The writes the client holds are gone although nothing changed the thread (an
    -- evicted or damaged KEYS[4]): a full read, which reports what is missing.
  end
  local record = rcall('HGET', KEYS[1], ns .. cid)
  if not record then
    return false
  end
  local out, blobs, content = load_records({{ns, cid, record}}, held)
  local entry = out[1]
  return {cid, record, blobs, entry[4], entry[5], content}
end

-- Newest checkpoint id of namespace NS, or nil.
local function latest_id(ns)
  local top = rcall('ZREVRANGEBYLEX', KEYS[2], '(' .. ns .. '\255', '(' .. ns, 'LIMIT', 0, 1)
  if #top == 0 then
    return nil
  end
  return string.sub(top[1], #ns + 1)
end

-- Byte-wise string order. Lua's own '<' follows the server's locale.
local function bytes_less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

-- The count fields ("#"..NS..ref) of a record's blob refs.
local function count_fields(ns, refs)
  local out = {}
  for i, ref in ipairs(refs) do
    out[i] = '#' .. ns .. ref
  end
  return out
end

-- The fields adjust reads from KEYS[3], appended to `fields`: the checkpoint count of
-- namespace NS, the count fields in `counted` (of a record's channel values, see
-- count_fields), and the fields of `new_blobs` ({field, value, ...}). Returns `fields`
-- and the place of the first blob field in it.
local function adjust_fields(ns, counted, new_blobs, fields)
  fields[#fields + 1] = '=' .. ns
  for i = 1, #counted do
    fields[#fields + 1] = counted[i]
  end
  local first_blob = #fields + 1
  for i = 1, #new_blobs, 2 do
    fields[#fields + 1] = new_blobs[i]
  end
  return fields, first_blob
end

-- What adjust writes, from the values `current` of adjust_fields for `counted` and
-- `new_blobs` (at fields[offset + 1] and current[offset + 1] on): appends the counts
-- that stay above zero and the blobs not stored yet to `updates` (field, value, ...),
-- the count and value fields to delete to `dead`, and the freed value fields to `gone`;
-- keeps the namespace registry (KEYS[5]) in step.
local function adjust_rows(ns, counted, delta, new_blobs, fields, current, offset, updates, dead,
                           gone)
  local first_blob = offset + #counted + 2
  for i = offset + 1, first_blob - 1 do
    local n = (tonumber(current[i]) or 0) + delta
    if n > 0 then
      updates[#updates + 1] = fields[i]
      updates[#updates + 1] = n
    else
      dead[#dead + 1] = fields[i]
      if i > offset + 1 then
        local value = string.sub(fields[i], 2)  -- the value field, NS..ref
        dead[#dead + 1] = value
        gone[#gone + 1] = value
      end
    end
  end
  for i = first_blob, first_blob + #new_blobs / 2 - 1 do
    if not current[i] then
      updates[#updates + 1] = fields[i]
      updates[#updates + 1] = new_blobs[2 * (i - first_blob) + 2]
    end
  end
  local before = tonumber(current[offset + 1]) or 0
  if before <= 0 and before + delta > 0 then
    rcall('HSET', KEYS[5], ns, 1)
  elseif before > 0 and before + delta <= 0 then
    rcall('HDEL', KEYS[5], ns)
  end
end

-- Adds `delta` to the reference counts in `counted` (count fields of a record's channel
-- values, see count_fields) and to the checkpoint count of namespace NS, and stores the
-- blobs of `new_blobs` ({field, value, ...}) that are not stored yet. Frees values whose
-- count drops to zero and keeps the namespace registry (KEYS[5]) in step. One HMGET and
-- one HSET, whatever the number of channels: each call from Lua costs more than the
-- work it does.
local function adjust(ns, counted, delta, new_blobs)
  local fields = adjust_fields(ns, counted, new_blobs, {})
  local updates, dead, gone = {}, {}, {}
  adjust_rows(ns, counted, delta, new_blobs, fields, hmget(KEYS[3], fields), 0, updates, dead,
    gone)
  hset(KEYS[3], updates)
  release_values(KEYS[3], gone)
  hdel(KEYS[3], dead)
end

-- Number of checkpoints of namespace NS.
local function namespace_size(ns)
  local stored = rcall('HGET', KEYS[3], '=' .. ns) or '0'
  return tonumber(stored) or corrupt('checkpoint count', '=' .. ns, KEYS[3])
end

-- Stores record at NS..CID (replacing one with the same id), with the not yet stored
-- blobs of `new_blobs`, and keeps the order index, counts and registry right.
-- `counted` are the count fields of the record's blob refs when the caller has them
-- (made from the record if nil). Returns 1 if the checkpoint is new.
local function store_record(ns, cid, record, new_blobs, counted, uncounted)
  local field = ns .. cid
  if uncounted then
    counted = {}
  elseif not counted then
    local _, refs = record_header(record, field)
    counted = count_fields(ns, refs)
  end
  if rcall('HSETNX', KEYS[1], field, record) == 1 then
    adjust(ns, counted, 1, new_blobs)
    rcall('ZADD', KEYS[2], 0, field)
    return 1
  end
  local _, old_refs = record_header(rcall('HGET', KEYS[1], field), field)
  rcall('HSET', KEYS[1], field, record)
  if uncounted then
    -- What only the old record reached is garbage now.
    adjust(ns, counted, 0, new_blobs)
    rcall('HINCRBY', KEYS[3], GARBAGE, 1)
    return 0
  end
  adjust(ns, counted, 1, new_blobs)
  adjust(ns, count_fields(ns, old_refs), -1, {})
  return 0
end

-- Removes checkpoint NS..CID with its pending writes, its place in the order index and
-- its references to channel values (of an uncounted thread: leaving its values to a
-- collection). Returns 1 if it existed.
local function remove_checkpoint(ns, cid, uncounted)
  local field = ns .. cid
  local record = rcall('HGET', KEYS[1], field)
  if not record then
    return 0
  end
  local _, refs = record_header(record, field)
  local base = ns .. netstring(cid)
  local index = rcall('HGET', KEYS[4], base)
  -- Everything is parsed before the first change: a script's writes are not undone
  -- when it raises, so damaged data must stop it before it removes half a checkpoint.
  local fields = {}
  if index then
    fields = segment_fields(base, index)
    fields[#fields + 1] = base
    for _, sub in ipairs(split_netstrings(full_index(base, index), 'write index', base, KEYS[4])) do
      fields[#fields + 1] = base .. sub
    end
  end
  rcall('HDEL', KEYS[1], field)
  rcall('ZREM', KEYS[2], field)
  adjust(ns, uncounted and {} or count_fields(ns, refs), -1, {})
  if index then
    if not uncounted then
      release_values(KEYS[4], fields)
    end
    hdel(KEYS[4], fields)
    if not exists(KEYS[4]) then
      rcall('HDEL', KEYS[3], WRITES_MARK)
    end
  end
  return 1
end

-- Removes the oldest checkpoints of namespace NS beyond the newest `keep`, at most
-- `budget` of them, sparing every ancestor a kept checkpoint may still need to rebuild
-- its DeltaChannels (its depth, plus one for safety). Returns the number removed and
-- whether removable checkpoints remain.
local function keep_newest(ns, keep, budget, uncounted)
  local count = namespace_size(ns)
  if count <= keep or budget <= 0 then
    return 0, false
  end
  local kept = rcall('ZREVRANGEBYLEX', KEYS[2], '(' .. ns .. '\255', '(' .. ns, 'LIMIT', 0, keep)
  local protected = {}
  local reach = {}
  for _, member in ipairs(kept) do
    local record = rcall('HGET', KEYS[1], member)
    local parent, _, depth = record_header(record, member)
    local left = depth > 0 and depth + 1 or 0
    while parent and left > 0 and (reach[parent] or -1) < left do
      reach[parent] = left
      protected[parent] = true
      record = rcall('HGET', KEYS[1], ns .. parent)
      if not record then
        break
      end
      parent = record_header(record, ns .. parent)
      left = left - 1
    end
  end
  local spared = 0
  for _ in pairs(protected) do
    spared = spared + 1
  end
  local take = math.min(count - keep, budget + spared)
  local oldest = rcall('ZRANGEBYLEX', KEYS[2], '(' .. ns, '(' .. ns .. '\255', 'LIMIT', 0, take)
  local removed = 0
  for _, member in ipairs(oldest) do
    local cid = string.sub(member, #ns + 1)
    if not protected[cid] and removed < budget then
      removed = removed + remove_checkpoint(ns, cid, uncounted)
    end
  end
  return removed, removed >= budget
end

-- The write generation that follows `stored` (its field's value, false if none).
local function next_generation(stored)
  if not stored then
    return SEED
  end
  return (tonumber(stored) or corrupt('write generation', GENERATION, KEYS[3])) + 1
end

local function bump_generation(live)
  if not live and not exists(KEYS[1]) and not exists(KEYS[4]) then
    rcall('HDEL', KEYS[3], GENERATION)
    return
  end
  local generation = rcall('HINCRBY', KEYS[3], GENERATION, 1)
  if generation == 1 and SEED ~= 1 then  -- created just now
    rcall('HSET', KEYS[3], GENERATION, SEED)
    return SEED
  end
  return generation
end

-- Claims. A write to an uncounted thread need not look for the content its composed
-- values reference when its client claims it stored: the claim (a write's argument,
-- "" for none) is a write generation P of the thread at or after which the client saw
-- each piece it does not send stored (its own writes stored or found it). KEPT_SINCE
-- ("=k" in KEYS[3]) is the generation since which no content was deleted from the
-- thread: a collection (repair_thread) moves it; a thread deleted whole, evicted or
-- expired loses it, and a write that checks the content sets it again when it is
-- missing. So when KEPT_SINCE <= P <= the generation now, nothing was deleted since the
-- client saw it all, and the claim holds. A thread written again after a delete counts
-- its generations on from a new random seed, so a claim from before does not fall
-- between the two but by a chance of about one in 2^40 / the writes since.
-- A claim that fails makes the write look for the content after all, and its reply
-- says so: the client then starts its record over (see Composer.proved). The claim
-- "*" says the write sends all the content its values reference: nothing to look for.
local function claim_holds(claim, kept, stored)
  if claim == '*' then
    return true
  end
  local p, k, g = tonumber(claim), tonumber(kept), tonumber(stored)
  return p and k and g and k <= p and p <= g or false
end

-- UNCOUNTED ("=u" in KEYS[3]): a thread created by a saver that composes values keeps
-- no reference counts ("#" fields): its writes store what is new and count nothing, its
-- removals delete records and writes and add what they removed to GARBAGE ("=x"), and
-- the values and content nothing reaches any more stay until a collection (the client's
-- generation-guarded repair_thread) deletes them. Retention in a put asks for one when
-- GARBAGE reaches half the thread's checkpoints, at least GARBAGE_FLOOR: the collection
-- reads the live thread, so its work per removal stays bounded; prune and
-- delete_for_runs (maintenance) ask after every thread they removed from. Threads
-- without the mark (release 0.1's, or those of a saver with reference_counts=True or
-- compose_values=False) keep their counts; every script takes either path.

-- Whether the thread keeps no counts, and whether this call makes it so: a thread
-- with neither checkpoints nor pending writes is new, and becomes uncounted when the
-- caller creates such threads; the caller then stores UNCOUNTED with its own writes
-- of KEYS[3] (a call refused later leaves nothing).
local function thread_uncounted()
  if rcall('HEXISTS', KEYS[3], UNCOUNTED) == 1 then
    return true, false
  end
  if CREATES_UNCOUNTED and not exists(KEYS[1]) and not exists(KEYS[4]) then
    return true, true
  end
  return false, false
end

-- Adds `n` removals to the garbage of an uncounted thread; returns whether a
-- collection is due.
local function add_garbage(n)
  local garbage = rcall('HINCRBY', KEYS[3], GARBAGE, n)
  return garbage >= math.max(GARBAGE_FLOOR, math.floor(rcall('ZCARD', KEYS[2]) / 2))
end
