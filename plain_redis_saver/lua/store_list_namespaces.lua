-- store_list_namespaces: namespaces holding live items, in LangGraph's tuple order,
-- matching prefix and suffix conditions ("*" matches any label), cut to max_depth
-- (duplicates removed), from a cursor, examining at most a budget per call.
--
-- KEYS[1..7]  the store's keys (see includes/store.lua)
-- ARGV[1]     unused; ARGV[2] the client's clock (us)
-- ARGV[3]     expired items to remove first, at most: until none is left, the call
--             answers "again" (an expired item's namespace must not be listed)
-- ARGV[4]     lex range start (ZRANGEBYLEX form), ARGV[5] lex range end
-- ARGV[6]     max depth ("" for none)
-- ARGV[7]     namespaces still to skip (offset), ARGV[8] still wanted (limit)
-- ARGV[9]     namespaces to examine in this call, at most
-- ARGV[10]    the last namespace listed (after max_depth), "" for none
-- ARGV[11..]  match conditions, all of which must hold: each is "prefix" or "suffix",
--             the number of its labels, and its labels
--
-- Reply: "again", or {{NS, ...}, still to skip, last listed, next range start or ""}.

if not sweep(tonumber(ARGV[3])) then
  return 'again'
end
local depth = ARGV[6] ~= '' and tonumber(ARGV[6]) or nil
local skip, wanted, budget, last = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10]
local conditions, at = {}, 11
while at <= #ARGV do
  local size = tonumber(ARGV[at + 1])
  conditions[#conditions + 1] = { ARGV[at], { unpack(ARGV, at + 2, at + 1 + size) } }
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
local page = rcall('ZRANGEBYLEX', KEYS[3], ARGV[4], ARGV[5], 'LIMIT', 0, budget)
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
