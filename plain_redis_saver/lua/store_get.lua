-- store_get: one item, or nothing if it is absent or expired (an expired item found
-- here is removed with its index entries).
--
-- KEYS[1..7]  the store's keys (see includes/store.lua)
-- ARGV[1]     unused; ARGV[2] the client's clock (us)
-- ARGV[3]     ID of the item
-- ARGV[4]     "1" to restart its TTL (refresh_on_read), else "0"
--
-- Reply: the record, or false.

local id = ARGV[3]
local raw = rcall('HGET', KEYS[1], id)
if not raw then
  return false
end
local r = record_of(id, raw)
if expired(r) then
  remove_item(id, r, false)
  return false
end
if ARGV[4] == '1' then
  refresh(id, r)
  return join(r)
end
return raw
