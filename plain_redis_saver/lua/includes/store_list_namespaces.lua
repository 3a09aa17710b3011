-- store_list_namespaces: namespaces holding live items, in LangGraph's tuple order,
-- matching prefix and suffix conditions ("*" matches any label), cut to max_depth
-- (duplicates removed), from a cursor, examining at most a budget per call.
--
-- A[1]     expired items to remove first, at most: until none is left, the call
--             answers "again" (an expired item's namespace must not be listed)
-- A[2]     lex range start (ZRANGEBYLEX form), A[3] lex range end
-- A[4]     max depth ("" for none)
-- A[5]     namespaces still to skip (offset), A[6] still wanted (limit)
-- A[7]     namespaces to examine in this call, at most
-- A[8]     the last namespace listed (after max_depth), "" for none
-- A[9..]   match conditions, all of which must hold: each is "prefix" or "suffix",
--             the number of its labels, and its labels
--
-- Reply: "again", or {{NS, ...}, still to skip, last listed, next range start or ""}.
--
-- A is the operation's arguments (store_batch.lua).
local function list_namespaces(A)
  if not sweep(tonumber(A[1])) then
    return 'again'
  end
  local depth = A[4] ~= '' and tonumber(A[4]) or nil
  local skip, wanted, budget, last = tonumber(A[5]), tonumber(A[6]), tonumber(A[7]), A[8]
  if wanted <= 0 then
    return { {}, skip, last, '' }
  end
  local conditions, at = {}, 9
  while at <= #A do
    local size = tonumber(A[at + 1])
    conditions[#conditions + 1] = { A[at], { unpack(A, at + 2, at + 1 + size) } }
    at = at + 2 + size
  end

  local function labels(ns)
    local out, pos = {}, 1
    while true do
      local cut = string.find(ns, '\0', pos, true)
      if not cut then
        out[#out + 1] = string.sub(ns, pos)
        return out
      end
      out[#out + 1] = string.sub(ns, pos, cut - 1)
      pos = cut + 1
    end
  end

  local function fits(parts)
    for _, condition in ipairs(conditions) do
      local path = condition[2]
      if #parts < #path then
        return false
      end
      local offset = condition[1] == 'suffix' and #parts - #path or 0
      for i, label in ipairs(path) do
        if label ~= '*' and parts[offset + i] ~= label then
          return false
        end
      end
    end
    return true
  end

  local found = {}
  local page = rcall('ZRANGEBYLEX', KEYS[3], A[2], A[3], 'LIMIT', 0, budget)
  for _, ns in ipairs(page) do
    local parts = labels(ns)
    if fits(parts) then
      local listed = ns
      if depth and #parts > depth then
        listed = table.concat(parts, '\0', 1, depth)
      end
      if listed ~= last then
        last = listed
        if skip > 0 then
          skip = skip - 1
        else
          found[#found + 1] = listed
          if #found >= wanted then
            return { found, skip, last, '' }
          end
        end
      end
    end
  end
  if #page < budget then
    return { found, skip, last, '' }
  end
  return { found, skip, last, '(' .. page[#page] }
end
