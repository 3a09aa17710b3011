-- store_batch: the operations of one store batch, in one call (the store lives in one
-- hash slot, so a batch never needs more than one script call, nor a pipeline).
--
-- KEYS[1..7]  the store's keys (see includes/store.lua)
-- ARGV[1]     the runner's expiry slot, unused (items carry their own TTL)
-- ARGV[2]     the client's clock, microseconds since the epoch
-- ARGV[3..]   operations, each: its name ("get", "write", "search", "list"), the number
--             N of its arguments, then those N arguments (see includes/store_<name>.lua)
--
-- Reply: the replies of the operations, in order. The store's reads come before its
-- writes in a batch, so a read that raises (a filter's float() error) writes nothing.

local OPERATIONS = {
  get = get_item,
  write = write_items,
  search = search_items,
  list = list_namespaces,
}
local replies, at = {}, 3
while at <= #ARGV do
  local size = tonumber(ARGV[at + 1])
  replies[#replies + 1] = OPERATIONS[ARGV[at]]({ unpack(ARGV, at + 2, at + 1 + size) })
  at = at + 2 + size
end
return replies
