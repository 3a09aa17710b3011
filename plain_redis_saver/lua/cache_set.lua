-- cache_set: store entries of one cache namespace and list them in its index.
--
-- KEYS[1]     the namespace's index (sorted set: entry key -> expiry in ms, inf for none)
-- KEYS[2..n]  entry keys (strings)
-- ARGV[1]     the runner's expiry slot, unused here (entries carry their own)
-- ARGV[2]     the client's clock, ms since the epoch
-- ARGV[3]     index members whose expiry is before this are dropped (their entries
--             expired: the server removed them itself)
-- ARGV[2i+2], ARGV[2i+3] for KEYS[i+1]: value, ttl in ms ("" for none, "0" for an
--             entry that is expired already: it is removed)
--
-- Reply: the number of entries written.
-- The index expires with its last entry, so a namespace whose entries all expired
-- leaves nothing behind but its field in the registry (removed by clear()).

local rcall = redis.call
local now = tonumber(ARGV[2])
rcall('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
for i = 2, #KEYS do
  local value, ttl = ARGV[2 * i], ARGV[2 * i + 1]
  if ttl == '0' then
    rcall('DEL', KEYS[i])
    rcall('ZREM', KEYS[1], KEYS[i])
  elseif ttl == '' then
    rcall('SET', KEYS[i], value)
    rcall('ZADD', KEYS[1], 'inf', KEYS[i])
  else
    rcall('SET', KEYS[i], value, 'PX', ttl)
    rcall('ZADD', KEYS[1], now + tonumber(ttl), KEYS[i])
  end
end
local last = rcall('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]
if last == nil then
  return #KEYS - 1
elseif last == 'inf' then
  rcall('PERSIST', KEYS[1])
else
  rcall('PEXPIRE', KEYS[1], math.max(1, math.ceil(tonumber(last) - now)))
end
return #KEYS - 1
