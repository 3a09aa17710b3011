-- store_get: one item, or nothing if it is absent or expired (an expired item found
-- here is removed with its index entries).
--
-- A[1]     ID of the item
-- A[2]     "1" to restart its TTL (refresh_on_read), else "0"
--
-- Reply: the record, or false.
--
-- A is the operation's arguments (store_batch.lua).
local function get_item(A)
  local id = A[1]
  local raw = rcall('HGET', KEYS[1], id)
  if not raw then
    return false
  end
  local r = record_of(id, raw)
  if expired(r) then
    remove_item(id, r, false)
    return false
  end
  if A[2] == '1' then
    refresh(id, r)
    return join(r)
  end
  return raw
end
