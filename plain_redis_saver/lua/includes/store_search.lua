-- store_search: items under a namespace prefix that pass a filter, in InMemoryStore's
-- order (namespaces in order of creation, items in order of insertion), examining at
-- most a budget of items per call; the client calls again from the returned cursor.
--
-- A[1]     "1" to restart the TTL of returned items, else "0"
-- A[2]     expired items to remove first, at most
-- A[3]     namespace prefix (NS; "" for the whole store)
-- A[4]     cursor: position (in KEYS[4]) of the namespace to resume in, "" to start
-- A[5]     cursor: last order member examined in it, "" for its start
-- A[6]     matches still to skip (offset)
-- A[7]     matches still wanted ("-1": all of them)
-- A[8]     items to examine in this call, at most
-- A[9]     "1" to return each match's vectors, else "0"
-- A[10..]   the filter: conditions of 4 arguments (kind, path, operand, the operand
--             as a legacy document holds it), all of which must hold, evaluated in
--             order (store_core.compile_filter)
--
-- Reply: {{NS .. "\0\0" .. key, record, vectors, ...}, matches still to skip, cursor
-- position, cursor member} with an empty cursor position when the search is complete.
--
-- A is the operation's arguments (store_batch.lua).
local function search_items(A)
  sweep(tonumber(A[2]))
  local refresh_read = A[1] == '1'
  local prefix, pos, after = A[3], A[4], A[5]
  local skip, wanted, budget = tonumber(A[6]), tonumber(A[7]), tonumber(A[8])
  local with_vectors = A[9] == '1'
  if wanted == 0 then
    return { {}, skip, '', '' }
  end
  local conditions = {}
  for i = 10, #A, 4 do
    conditions[#conditions + 1] = { A[i], A[i + 1], A[i + 2], A[i + 3] }
  end
  local NONE = { 's', 'n', '' }

  -- Nodes by path: {kind ("d", "l<n>", "s"), equality token, float token ("" when the
  -- script derives it)}. A token is "F" .. netstring(float token) .. equality token,
  -- or the equality token; a container's tells its kind: "hd..." or "hl<n>,...".
  local function document(field, r)
    local parts = split(r[6], field, KEYS[1])
    local doc = {}
    if r[9] then
      for i = 1, #parts, 4 do
        doc[parts[i]] = { parts[i + 1], parts[i + 2], parts[i + 3] }
      end
      return doc
    end
    for i = 1, #parts, 2 do
      local token, float = parts[i + 1], ''
      if string.sub(token, 1, 1) == 'F' then
        local inner, rest = split(token, field, KEYS[1], 2, 1)
        float, token = inner[1], string.sub(token, rest)
      end
      local kind = 's'
      if string.sub(token, 1, 2) == 'hd' then
        kind = 'd'
      elseif string.sub(token, 1, 2) == 'hl' then
        kind = 'l' .. string.match(token, '^hl(%d+),')
      end
      doc[parts[i]] = { kind, token, float }
    end
    return doc
  end

  -- float() of a token (store_core.float_token); raises its error for the client.
  local function number(token)
    local mark = string.sub(token, 1, 1)
    if mark == 'f' then
      return tonumber(string.sub(token, 2))
    elseif mark == 'N' then
      return 0 / 0
    end
    return fail('plain_redis_saver: filter ' .. token)
  end

  local function hex(s)
    return (string.gsub(s, '.', function(c)
      return string.format('%02x', string.byte(c))
    end))
  end

  -- float() of a node: its own token, or derived from its kind and equality token. A
  -- string's error names the string, which the document holds as a digest when long:
  -- the client takes it from the record (store_core.filter_error).
  local function node_number(node, path, raw)
    if node[3] ~= '' then
      return number(node[3])
    elseif node[1] == 'd' then
      return fail('plain_redis_saver: filter Tdict')
    elseif string.sub(node[1], 1, 1) == 'l' then
      return fail('plain_redis_saver: filter Tlist')
    end
    local mark, rest = string.sub(node[2], 1, 1), string.sub(node[2], 2)
    if mark == '#' then
      if rest == 'inf' then
        return 1 / 0
      elseif rest == '-inf' then
        return -1 / 0
      end
      return tonumber(rest)
    elseif mark == 'N' then
      return 0 / 0
    elseif mark == 's' or mark == 'S' then
      return fail('plain_redis_saver: filter W' .. hex(path) .. ':' .. hex(raw))
    end
    return fail('plain_redis_saver: filter TNoneType')
  end

  local function holds(c, doc, legacy, raw)
    local kind = c[1]
    if kind == 'err' then
      return fail('plain_redis_saver: filter ' .. c[3])
    end
    local node = doc[c[2]] or NONE
    local operand = legacy and c[4] or c[3]
    if kind == 'eq' then
      return node[2] == operand and operand ~= 'N'
    elseif kind == 'ne' then
      return not (node[2] == operand and operand ~= 'N')
    elseif kind == 'dict' then
      return node[1] == 'd'
    elseif kind == 'list' then
      return node[1] == c[3]
    end
    local left, right = node_number(node, c[2], raw), number(c[3])
    if kind == 'gt' then
      return left > right
    elseif kind == 'ge' then
      return left >= right
    elseif kind == 'lt' then
      return left < right
    end
    return left <= right
  end

  local function matches(field, r, raw)
    if #conditions == 0 then
      return true
    end
    local doc = document(field, r)
    for _, c in ipairs(conditions) do
      if not holds(c, doc, r[9], raw) then
        return false
      end
    end
    return true
  end

  -- Namespaces to visit, in order of creation, from the cursor on: {NS, position (a
  -- number), position (as stored)}, and
  -- the position to resume at when more namespaces may follow this page of them.
  local function namespaces()
    local from = pos == '' and '-inf' or pos
    local out = {}
    if prefix ~= '' then
      local lo, hi = '[' .. prefix, '(' .. prefix .. '\1'
      if rcall('ZLEXCOUNT', KEYS[3], lo, hi) <= 1000 then
        for _, ns in ipairs(rcall('ZRANGEBYLEX', KEYS[3], lo, hi)) do
          local at = rcall('ZSCORE', KEYS[4], ns)
          if at and (pos == '' or tonumber(at) >= tonumber(pos)) then
            out[#out + 1] = { ns, tonumber(at), at }
          end
        end
        table.sort(out, function(a, b)
          return a[2] < b[2]
        end)
        return out, nil
      end
    end
    local page = rcall('ZRANGEBYSCORE', KEYS[4], from, '+inf', 'WITHSCORES', 'LIMIT', 0, budget)
    for i = 1, #page, 2 do
      local ns = page[i]
      if prefix == '' or ns == prefix or string.sub(ns, 1, #prefix + 1) == prefix .. '\0' then
        out[#out + 1] = { ns, tonumber(page[i + 1]), page[i + 1] }
      end
    end
    if #page == 2 * budget then
      return out, tonumber(page[#page]) + 1
    end
    return out, nil
  end

  local found, examined = {}, 0
  local last_pos, last_member = '', ''

  -- Examines the members of one range of `order` (a namespace's legacy members, then
  -- its others) from `lo`, within the budget; returns the reply when the search stops
  -- in it (enough matches, or the budget spent before the range's end), else nil.
  local function walk(ns, entry, lo, hi, to_field)
    -- One member more than there is room for tells whether the range goes on.
    local room = budget - examined
    local members = rcall('ZRANGEBYLEX', KEYS[2], lo, hi, 'LIMIT', 0, room + 1)
    local more = #members > room
    if more then
      members[#members] = nil
    end
    -- Records (and vectors) are read 100 at a time: one HMGET instead of a call each.
    for first = 1, #members, 100 do
      local ats = {}
      local fields = {}
      for n = first, math.min(first + 99, #members) do
        local at = to_field(members[n])
        ats[#ats + 1] = at
        fields[#fields + 1] = at[1]
      end
      local raws = rcall('HMGET', KEYS[1], unpack(fields))
      local vectors = with_vectors and rcall('HMGET', KEYS[7], unpack(fields)) or {}
      for n, at in ipairs(ats) do
        examined = examined + 1
        local raw = raws[n]
        if raw then
          local r = record_of(at[1], raw)
          if not expired(r) and matches(at[1], r, raw) then
            if skip > 0 then
              skip = skip - 1
            else
              if refresh_read then
                raw = refresh(at, r, raw)
              end
              found[#found + 1] = ns .. '\0\0' .. at[3]
              found[#found + 1] = raw
              found[#found + 1] = vectors[n] or ''
              if wanted > 0 and #found / 3 >= wanted then
                return { found, skip, '', '' }
              end
            end
          end
        end
        last_pos, last_member = tostring(entry[2]), members[first + n - 1]
      end
    end
    if more then
      return { found, skip, last_pos, last_member }
    end
    return nil
  end

  local visit, more_from = namespaces()
  for _, entry in ipairs(visit) do
    if examined >= budget then
      return { found, skip, tostring(entry[2]), '' }
    end
    local ns, position = entry[1], entry[3]
    local own = '\0' .. position .. '\0'
    local resume = after ~= '' and tostring(entry[2]) == pos
    local in_own = resume and string.sub(after, 1, #own) == own
    local legacy_lo = resume and ('(' .. after) or ('[' .. ns .. '\0\0')
    local stop = not in_own
      and walk(ns, entry, legacy_lo, '(' .. ns .. '\0\1', function(member)
        return legacy_place(ns, string.sub(member, #ns + 19))
      end)
    if stop then
      return stop
    end
    local lo = in_own and ('(' .. after) or ('[' .. own)
    stop = walk(ns, entry, lo, '(' .. '\0' .. position .. '\1', function(member)
      local digits = string.byte(member, #own + 1) - 64
      return place(ns, position, string.sub(member, #own + 2 + digits))
    end)
    if stop then
      return stop
    end
    after = ''
  end
  if more_from then
    return { found, skip, tostring(more_from), '' }
  end
  return { found, skip, '', '' }
end
