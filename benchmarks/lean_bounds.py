"""Two lower bounds on a write path, for :mod:`benchmarks.turn_floor`: what this saver's
requests would cost the server if they did only the essential work.

Neither is a saver. Each takes the keys and arguments this saver sends (see the headers
of ``put_checkpoint.lua``, ``put_writes.lua`` and ``get_checkpoint.lua``; the first
argument is the thread's expiry) and does a minimum of it on a shadow server, where the
turn floor benchmark measures the CPU:

- **lean scripts** (:data:`LEAN`): Lua without the shared helpers. ``put_checkpoint``
  checks that the content its new values reference without sending exists (one
  ``HMGET``; the digests come as one extra argument, 16 bytes each, computed by
  :func:`unsent_references`), then stores the record, its order entry and its new values
  and content: one ``HSET`` per key, one ``ZADD``. ``put_writes`` does the same check and
  stores the writes, their content and the appended write index (``HGET``, ``HSET``).
  ``get_checkpoint`` reads the newest record, its values, its writes and the content
  they reach that the client does not hold, one ``HMGET`` per level; ``list`` (:data:`LEAN_LIST`,
  measured by :mod:`.request_floor`) the same for a page of checkpoints, one ``HMGET``
  per kind of row for the whole page. Left out, and what
  a design would still have to pay for: reference counts or any other collection, the
  parent check, never replacing a stored value or write, retention, the write
  generation, the pending-writes mark, the expiry refresh and every eviction check.
- **plain transactions** (:func:`plain_transaction`): ``put_checkpoint`` and
  ``put_writes`` sent as ``MULTI``/``HSET``/``ZADD``/``EXEC`` of the same records, values
  and content, with no Lua and no check at all (a transaction cannot refuse missing
  content, and appending to the write index needs a read); ``get_checkpoint`` as the
  lean script, since its reads depend on what it reads. Both bounds keep a record's
  value references beside it (field ``<record field>\\0r``, the JSON array of count
  fields this saver's put sends), where the lean get finds them without parsing the
  record.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from plain_redis_saver import compose, scripts

_PRELUDE = "local unpack = unpack or table.unpack\n"

_CHECK_REFS = """
local refs = ARGV[#ARGV]
if #refs > 0 then
  local names = {}
  for i = 1, #refs, 16 do
    names[#names + 1] = '*' .. string.sub(refs, i, i + 15)
  end
  local got = redis.call('HMGET', KEYS[3], unpack(names))
  for i = 1, #names do
    if not got[i] then
      return redis.error_reply('missing content')
    end
  end
end
"""

# Replaces each recipe among the rows of ARGV from `first` (field "+"..digest, node
# items: literals and references to content of KEYS[3]) by the content row it stands for
# ("*"..digest, the items joined), as this saver's take_content does: the essential work
# of sending a run of pieces the server holds by reference.
_RECIPES = r"""
local function build_recipes(first)
  for i = first, #ARGV - 1, 2 do
    local f = ARGV[i]
    if string.byte(f, 1) == 43 then
      local s, pos, parts, names, at = ARGV[i + 1], 1, {}, {}, {}
      while pos <= #s do
        if string.byte(s, pos) == 1 then
          names[#names + 1] = '*' .. string.sub(s, pos + 1, pos + 16)
          parts[#parts + 1] = false
          at[#parts] = #names
          pos = pos + 17
        else
          local a, b, c, e = string.byte(s, pos + 1, pos + 4)
          local stop = pos + 4 + ((a * 256 + b) * 256 + c) * 256 + e
          parts[#parts + 1] = string.sub(s, pos + 5, stop)
          pos = stop + 1
        end
      end
      if #names > 0 then
        local got = redis.call('HMGET', KEYS[3], unpack(names))
        for k = 1, #parts do
          if parts[k] == false then
            parts[k] = got[at[k]] or error('missing content')
          end
        end
      end
      ARGV[i] = '*' .. string.sub(f, 2)
      ARGV[i + 1] = table.concat(parts)
    end
  end
end
"""

# The reads' helpers: `split` appends to `out` the field `prefix`..payload of each
# netstring of `s` that `slot` (field -> position in `out`) does not have yet, and
# `refs` the value field of each count field ("#"..field) of `s`, a JSON array (what
# this saver's put sends); `hmget` is HMGET of `fields` of `key`, {} for none.
_READS = r"""
local function add(field, out, slot)
  if not slot[field] then
    out[#out + 1] = field
    slot[field] = #out
  end
end
local function split(s, prefix, out, slot)
  local pos = 1
  while pos <= #s do
    local colon = string.find(s, ':', pos, true)
    local stop = colon + tonumber(string.sub(s, pos, colon - 1))
    add(prefix .. string.sub(s, colon + 1, stop), out, slot)
    pos = stop + 1
  end
end
local function refs(s, out, slot)
  if s ~= '' then
    for _, counted in ipairs(cjson.decode(s)) do
      add(string.sub(counted, 2), out, slot)
    end
  end
end
local function hmget(key, fields)
  if #fields == 0 then
    return {}
  end
  return redis.call('HMGET', key, unpack(fields))
end
"""

# Reads the content the composed values among `blobs` and `writes` reach that the
# client does not hold (`held`), one HMGET per level, into `flat` {digest, bytes, ...}.
_GATHER = r"""
local flat, pending, seen = {}, {}, {}
local function walk(s, pos)
  while pos <= #s do
    if string.byte(s, pos) == 1 then
      local d = string.sub(s, pos + 1, pos + 16)
      if not seen[d] then
        seen[d] = true
        local at = string.find(held, d, 1, true)
        if not (at and at % 16 == 1) then
          pending[#pending + 1] = d
        end
      end
      pos = pos + 17
    else
      local a, b, c, e = string.byte(s, pos + 1, pos + 4)
      pos = pos + 5 + ((a * 256 + b) * 256 + c) * 256 + e
    end
  end
end
for _, values in ipairs({blobs, writes}) do
  for _, v in ipairs(values) do
    if v and string.byte(v, 1) == 193 then
      walk(v, 2)
    end
  end
end
while #pending > 0 do
  local names, want = {}, pending
  for i, d in ipairs(want) do
    names[i] = '*' .. d
  end
  pending = {}
  local found = redis.call('HMGET', KEYS[3], unpack(names))
  for i, d in ipairs(want) do
    flat[#flat + 1] = d
    flat[#flat + 1] = found[i]
    local b = found[i] and string.byte(found[i], 1)
    if b == 0 or b == 1 then
      walk(found[i], 1)
    end
  end
end
"""

LEAN_PUT = (
    _PRELUDE
    + _CHECK_REFS
    + _RECIPES
    + r"""
build_recipes(9)
local ns, cid = ARGV[2], ARGV[3]
local field = ns .. cid
local rows = {}
for i = 9, #ARGV - 1, 2 do
  rows[#rows + 1] = ARGV[i]
  rows[#rows + 1] = ARGV[i + 1]
end
redis.call('HSET', KEYS[1], field, ARGV[4], field .. '\0r', ARGV[6])
redis.call('ZADD', KEYS[2], 0, field)
if #rows > 0 then
  redis.call('HSET', KEYS[3], unpack(rows))
end
return 1
"""
)

# A put_writes call's arguments: the content sent (`content`: field, bytes, ...) and
# the writes (`subs`: index as sent, `values`), for the task `task` of checkpoint `base`.
_WRITE_ARGS = r"""
local base, task = ARGV[2], ARGV[3]
local content, subs, values = {}, {}, {}
for i = 6, #ARGV - 1, 2 do
  local f = ARGV[i]
  if string.byte(f, 1) == 42 then
    content[#content + 1] = f
    content[#content + 1] = ARGV[i + 1]
  else
    subs[#subs + 1] = f
    values[#values + 1] = ARGV[i + 1]
  end
end
"""

LEAN_WRITES = (
    _PRELUDE
    + _CHECK_REFS
    + _RECIPES
    + "build_recipes(6)\n"
    + _WRITE_ARGS
    + r"""
local rows, added = {}, {}
for j = 1, #subs do
  rows[#rows + 1] = base .. task .. subs[j]
  rows[#rows + 1] = values[j]
  added[#added + 1] = (#task + #subs[j]) .. ':' .. task .. subs[j]
end
if #content > 0 then
  redis.call('HSET', KEYS[3], unpack(content))
end
local index = redis.call('HGET', KEYS[4], base) or ''
rows[#rows + 1] = base
rows[#rows + 1] = index .. table.concat(added)
redis.call('HSET', KEYS[4], unpack(rows))
return #added
"""
)

LEAN_GET = (
    _PRELUDE
    + _READS
    + r"""
local ns, cid, held = ARGV[2], ARGV[3], ARGV[4]
if cid == '' then
  local top = redis.call('ZREVRANGEBYLEX', KEYS[2], '(' .. ns .. '\255', '(' .. ns,
    'LIMIT', 0, 1)
  if #top == 0 then
    return false
  end
  cid = string.sub(top[1], #ns + 1)
end
local field = ns .. cid
local got = redis.call('HMGET', KEYS[1], field, field .. '\0r')
if not got[1] then
  return false
end
local fields, wfields = {}, {}
refs(got[2] or '', fields, {})
local blobs = hmget(KEYS[3], fields)
local base = ns .. #cid .. ':' .. cid
local index = redis.call('HGET', KEYS[4], base)
split(index or '', base, wfields, {})
local writes = hmget(KEYS[4], wfields)
"""
    + _GATHER
    + r"""
return {cid, got[1], blobs, index or '', writes, flat}
"""
)

# The reads of a list page are the get's, for up to `page` checkpoints at once: one
# ZREVRANGEBYLEX, then one HMGET each for the records (with their value references kept
# beside them), the values, the write indexes, the writes, and each level of content.
# ARGV as list_checkpoints (expiry first): NS, cursor, -, page size, -, held digests; one
# namespace only, no filter.
LEAN_LIST = (
    _PRELUDE
    + _READS
    + r"""
local ns, before, page, held = ARGV[2], ARGV[3], tonumber(ARGV[5]), ARGV[7]
local max = before == '' and ('(' .. ns .. '\255') or ('(' .. ns .. before)
local ids = redis.call('ZREVRANGEBYLEX', KEYS[2], max, '(' .. ns, 'LIMIT', 0, page)
if #ids == 0 then
  return {}
end
local fields = {}
for i, member in ipairs(ids) do
  fields[2 * i - 1] = member
  fields[2 * i] = member .. '\0r'
end
local records = redis.call('HMGET', KEYS[1], unpack(fields))
local blob_fields, blob_slot, bases = {}, {}, {}
for i, member in ipairs(ids) do
  refs(records[2 * i] or '', blob_fields, blob_slot)
  local cid = string.sub(member, #ns + 1)
  bases[i] = ns .. #cid .. ':' .. cid
end
local blobs = hmget(KEYS[3], blob_fields)
local indexes = hmget(KEYS[4], bases)
local write_fields, write_slot = {}, {}
for i = 1, #ids do
  split(indexes[i] or '', bases[i], write_fields, write_slot)
end
local writes = hmget(KEYS[4], write_fields)
"""
    + _GATHER
    + r"""
local out = {}
for i, member in ipairs(ids) do
  out[i] = {member, records[2 * i - 1]}
end
return {out, blobs, indexes, writes, flat}
"""
)

# The writes of the uncounted design (benchmarks/COLLECTION.md): the lean writes plus
# every check that design keeps, and no reference count. ARGV as this saver's scripts
# (expiry first), plus the digests referenced unsent (16 bytes each) as the last one.
# One HMGET of KEYS[3] reads the new values (a stored one is never replaced), the content
# referenced unsent (it must be there), the generation and the namespace's checkpoint
# count; the record is stored with HSETNX (a repeated put keeps the first), its value
# references beside it (for the lean reads), and a thread whose keys had no expiry is
# looked at with PTTL, as the real scripts do when sent "0" (or "u<seed>/0", from a
# saver creating uncounted threads).
UNCOUNTED_PUT = (
    _PRELUDE
    + _RECIPES
    + r"""
build_recipes(9)
local ns, cid, record, counted, parent = ARGV[2], ARGV[3], ARGV[4], ARGV[6], ARGV[7]
local field = ns .. cid
if parent ~= '' and redis.call('HEXISTS', KEYS[1], ns .. parent) == 0
    and redis.call('HEXISTS', KEYS[1], field) == 0 then
  local top = redis.call('ZREVRANGEBYLEX', KEYS[2], '(' .. ns .. '­', '(' .. ns,
    'LIMIT', 0, 1)
  if #top == 1 and top[1] > ns .. parent then
    return redis.error_reply('parent removed')
  end
end
local names, nvalues = {}, 0
for i = 9, #ARGV - 1, 2 do
  if string.byte(ARGV[i], 1) ~= 42 then
    nvalues = nvalues + 1
    names[nvalues] = ARGV[i]
  end
end
local refs = ARGV[#ARGV]
for i = 1, #refs, 16 do
  names[#names + 1] = '*' .. string.sub(refs, i, i + 15)
end
local at_generation = #names + 1
names[at_generation] = '=g'
names[at_generation + 1] = '=' .. ns
local got = redis.call('HMGET', KEYS[3], unpack(names))
for i = nvalues + 1, at_generation - 1 do
  if not got[i] then
    return redis.error_reply('missing content')
  end
end
local rows, k = {}, 0
for i = 9, #ARGV - 1, 2 do
  local f = ARGV[i]
  local is_value = string.byte(f, 1) ~= 42
  if is_value then
    k = k + 1
  end
  if not (is_value and got[k]) then
    rows[#rows + 1] = f
    rows[#rows + 1] = ARGV[i + 1]
  end
end
local created = redis.call('HSETNX', KEYS[1], field, record)
if created == 1 then
  redis.call('HSET', KEYS[1], field .. '\0r', counted)
  redis.call('ZADD', KEYS[2], 0, field)
  local count = tonumber(got[at_generation + 1]) or 0
  if count == 0 then
    redis.call('HSET', KEYS[5], ns, 1)
  end
  rows[#rows + 1] = '=' .. ns
  rows[#rows + 1] = count + 1
end
rows[#rows + 1] = '=g'
rows[#rows + 1] = (tonumber(got[at_generation]) or 0) + 1
redis.call('HSET', KEYS[3], unpack(rows))
if ARGV[1] == '0' or string.sub(ARGV[1], -2) == '/0' then
  redis.call('PTTL', KEYS[3])
end
return created
"""
)

UNCOUNTED_WRITES = (
    _PRELUDE
    + _RECIPES
    + "build_recipes(6)\n"
    + _WRITE_ARGS
    + r"""
local fields = {}
for j = 1, #subs do
  fields[j] = base .. task .. subs[j]
end
local n = #fields
fields[n + 1] = base
local current = redis.call('HMGET', KEYS[4], unpack(fields))
local rows, added = {}, {}
for j = 1, n do
  local special = tonumber(subs[j]) < 0
  if special or not current[j] then
    rows[#rows + 1] = fields[j]
    rows[#rows + 1] = values[j]
    if not current[j] then
      added[#added + 1] = (#task + #subs[j]) .. ':' .. task .. subs[j]
    end
  end
end
local names = {}
local refs = ARGV[#ARGV]
for i = 1, #refs, 16 do
  names[#names + 1] = '*' .. string.sub(refs, i, i + 15)
end
names[#names + 1] = '=g'
local got = redis.call('HMGET', KEYS[3], unpack(names))
for i = 1, #names - 1 do
  if not got[i] then
    return redis.error_reply('missing content')
  end
end
if #added > 0 then
  rows[#rows + 1] = base
  rows[#rows + 1] = (current[n + 1] or '') .. table.concat(added)
end
if #rows > 0 then
  redis.call('HSET', KEYS[4], unpack(rows))
end
content[#content + 1] = '=g'
content[#content + 1] = (tonumber(got[#names]) or 0) + 1
if #added > 0 and not current[n + 1] then
  content[#content + 1] = '=w'
  content[#content + 1] = 1
end
redis.call('HSET', KEYS[3], unpack(content))
if ARGV[1] == '0' or string.sub(ARGV[1], -2) == '/0' then
  redis.call('PTTL', KEYS[3])
  redis.call('PTTL', KEYS[1])
end
return #added
"""
)

#: The lean script standing in for each of this saver's scripts, by script name.
LEAN = {"put_checkpoint": LEAN_PUT, "put_writes": LEAN_WRITES, "get_checkpoint": LEAN_GET}
#: The uncounted design's scripts (its reads are the lean ones), by script name.
UNCOUNTED = {
    "put_checkpoint": UNCOUNTED_PUT,
    "put_writes": UNCOUNTED_WRITES,
    "get_checkpoint": LEAN_GET,
}

#: Where the field/value pairs start among the arguments (0-based, expiry included).
_PAIRS_FROM = {"put_checkpoint": 8, "put_writes": 5}


def _bytes(x: Any) -> bytes:
    return x.encode() if isinstance(x, str) else bytes(x)


def unsent_references(script: str, args: list[Any]) -> bytes:
    """The digests (16 bytes each, in first-reference order, once each) that the new
    composed values and content nodes among ``args`` (a ``put_checkpoint`` or
    ``put_writes`` call's arguments, keys excluded) reference without sending them."""
    sent: set[bytes] = set()
    refs: list[bytes] = []
    for i in range(_PAIRS_FROM[script], len(args) - 1, 2):
        field, value = _bytes(args[i]), _bytes(args[i + 1])
        if field[:1] == b"*":
            sent.add(field[1:])
            if compose.is_node(value):
                refs += compose.references(value, 0, "the arguments")
        elif field[:1] == b"+":  # a recipe: the content it names must be there
            sent.add(field[1:])
            refs += compose.references(value, 0, "the arguments")
        elif value[:1] == b"\xc1":
            refs += compose.references(value, 1, "the arguments")
    return b"".join(d for d in dict.fromkeys(refs) if d not in sent)


def keep_refs_beside(client: Any, numkeys: int, args: Any) -> None:
    """Stores beside the record of one ``put_checkpoint`` call (its keys and arguments,
    expiry first) the record's value references, in the field the lean scripts read."""
    keys, argv = args[:numkeys], args[numkeys:]
    client.hset(keys[0], _bytes(argv[1]) + _bytes(argv[2]) + b"\0r", argv[5])


@contextmanager
def refs_beside(client: Any) -> Iterator[None]:
    """While active, keeps beside each record this saver's puts store (through
    ``client``, a standalone redis-py client) its value references, in the field the
    lean scripts read (``<record field>\\0r``), so that they read a thread this saver
    wrote."""
    real = client.evalsha

    def evalsha(sha: str, numkeys: int, *args: Any) -> Any:
        reply = real(sha, numkeys, *args)
        if sha == scripts.PUT_CHECKPOINT.sha:
            keep_refs_beside(client, numkeys, args)
        return reply

    client.evalsha = evalsha
    try:
        yield
    finally:
        del client.evalsha


def plain_transaction(
    pipe: Any, script: str, keys: list[Any], args: list[Any], indexes: dict[bytes, bytes]
) -> bool:
    """Queues on ``pipe`` (a transaction) the plain writes standing in for a
    ``put_checkpoint`` or ``put_writes`` call; False for any other script. A transaction
    cannot read, so the pending-write index of each checkpoint is kept in ``indexes``
    (its field to its whole value) and written whole, as a client that knew it would."""
    if script == "put_checkpoint":
        ns, cid = _bytes(args[1]), _bytes(args[2])
        field = ns + cid
        rows = {}
        for i in range(_PAIRS_FROM[script], len(args) - 1, 2):
            rows[_bytes(args[i])] = args[i + 1]
        pipe.hset(keys[0], mapping={field: args[3], field + b"\0r": args[5]})
        pipe.zadd(keys[1], {field: 0})
        if rows:
            pipe.hset(keys[2], mapping=rows)
        return True
    if script == "put_writes":
        base, task = _bytes(args[1]), _bytes(args[2])
        writes, content = {}, {}
        added = b""
        for i in range(_PAIRS_FROM[script], len(args) - 1, 2):
            name = _bytes(args[i])
            if name[:1] in (b"*", b"+"):  # a recipe is stored as sent: no read here
                content[name] = args[i + 1]
            else:
                writes[base + task + name] = args[i + 1]
                added += b"%d:%s" % (len(task) + len(name), task + name)
        indexes[base] = indexes.get(base, b"") + added
        writes[base] = indexes[base]
        if content:
            pipe.hset(keys[2], mapping=content)
        pipe.hset(keys[3], mapping=writes)
        return True
    return False
