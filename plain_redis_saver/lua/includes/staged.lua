-- staged: the commit of a put or put_writes too large for one request. Pasted between
-- includes/common.lua and the script it commits (see plain_redis_saver.scripts).
--
-- KEYS[6]     the staging hash: the call's rows sent ahead (field -> value), in the
--             thread's hash tag
-- ARGV[1]     number of rows staged; removed from ARGV here, like the expiry, so the
--             script below reads the ARGV of its one-request form
--
-- The staged rows are appended to ARGV as field/value pairs: the script below then
-- stores the whole call in one atomic step, and nothing of it was visible before.
-- The staging hash is unlinked before anything else is written. Redis and Valkey
-- refuse a script over maxmemory only at its first write that may grow memory, and
-- UNLINK cannot: so once the rows are staged the commit either runs whole or (a
-- missing row) changes nothing. Committing grows memory by little: the staged copy is
-- freed as the rows land in the thread.

local expected = tonumber(table.remove(ARGV, 1))
local staged = rcall('HGETALL', KEYS[6])
if #staged ~= 2 * expected then
  return fail('plain_redis_saver: staged rows of ' .. KEYS[6] .. ': found ' .. (#staged / 2)
    .. ' of ' .. expected .. ' (the staging hash expired between two requests of the '
    .. 'call, or was deleted); nothing was stored, retry the call')
end
rcall('UNLINK', KEYS[6])
for i = 1, #staged do
  ARGV[#ARGV + 1] = staged[i]
end
