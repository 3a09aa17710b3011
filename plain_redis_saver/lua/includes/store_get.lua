-- store_get: one item, or nothing if it is absent or expired (an expired item found
-- here is removed with its index entries).
--
-- A[1]     NS of the item, A[2] its key
-- A[3]     "1" to restart its TTL (refresh_on_read), else "0"
--
-- Reply: the record, or false.
--
-- A is the operation's arguments (store_batch.lua).
local function get_item(A)
  local at, raw = find(A[1], A[2])
  if not at then
    return false
  end
  local r = record_of(at[1], raw)
  if expired(r) then
    remove_item(at, r, false)
    return false
  end
  if A[3] == '1' then
    return refresh(at, r, raw)
  end
  return raw
end
