"""The fleet rescue's Lua scripts, run atomically by Redis on its own clock (``TIME``).

Every script takes the campaign's nine keys, in the order of
:attr:`~mailpartner_async._core.redis_rescue.RescueKeys.all` (one hash tag: one
cluster slot), and, first of its arguments, the TTL in milliseconds (0: none): a
script that writes gives every key of the campaign that TTL again, so each expires a
TTL after the campaign's last write. Times are Redis milliseconds since the epoch.

KEYS: 1 queue (zset id -> cut-off), 2 sends (hash id -> "cut-off send-time"),
3 leases (zset id -> lease expiry), 4 tokens (hash id -> lease token; "=<token>"
once final, the token that recorded it), 5 leased
(hash id -> times leased), 6 ledger (hash id -> final outcome, JSON), 7 counts (hash
outcome category -> count, and "done"), 8 recent (zset id -> when it became final),
9 workers (zset worker name -> last seen).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "LEASE",
    "LEASED_PAGE",
    "LEDGER_PAGE",
    "QUEUE_PAGE",
    "RECORD",
    "RENEW",
    "STATUS",
    "SUBMIT",
]

# Shared head: Redis's now, the TTL, and the helpers each script uses.
_HEAD: Final = """
local t = redis.call('TIME')
local rnow = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local function expire_all()
  if ttl > 0 then
    for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
-- A sends value is "cut-off send-time"; nil for one that is not (corrupt data must
-- not stop a script half-way: its writes before the error would stay).
local function cutoff_of(value)
  local space = value and string.find(value, ' ', 1, true)
  if not space then return nil end
  return tonumber(string.sub(value, 1, space - 1))
end
local function no_request(text)
  local decoded, fields = pcall(cjson.decode, text)
  return decoded and type(fields) == 'table' and (fields.late ~= nil or fields.asked == false)
end
local function final(id, json, category, at)
  redis.call('HSET', KEYS[6], id, json)
  redis.call('HINCRBY', KEYS[7], category, 1)
  redis.call('HINCRBY', KEYS[7], 'done', 1)
  redis.call('ZADD', KEYS[8], at, id)
  redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', rnow - 60000)
end
"""

# ARGV: ttl, then (id, "cut-off send-time", cut-off) for each id.
# An id the campaign already knows (queued, leased or final) is left as it is.
# Returns how many were newly queued.
SUBMIT: Final = (
    _HEAD
    + """
local added = 0
for i = 2, #ARGV, 3 do
  if redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('ZADD', KEYS[1], ARGV[i + 2], ARGV[i])
    added = added + 1
  end
end
expire_all()
return added
"""
)

# ARGV: ttl, now for the cut-offs ('' : Redis's), lease ms, token, how many to lease,
# worker name, the cut-off of an id without a send time.
# Expired leases go back to the queue first (unless final). Then the earliest
# cut-offs are leased; an id already past its cut-off (as the client's too_late has it)
# is made final at once
# ({"late": now, "send_at": ...}), without a lease (at most 5000 such per call).
# Returns {Redis now, newly late, queued left, leased now, submitted (ids the campaign
# knows), then for each leased id: id, times leased, "cut-off send-time"}.
LEASE: Final = (
    _HEAD
    + """
local now = rnow
if ARGV[2] ~= '' then now = tonumber(ARGV[2]) end
local lease, token, want = tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local nosend = tonumber(ARGV[7])
redis.call('ZADD', KEYS[9], rnow, ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[9], '-inf', rnow - 3600000)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', rnow, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  if redis.call('HEXISTS', KEYS[6], id) == 0 then
    -- Its cut-off unreadable (or its sends value gone): queued first, as an id
    -- without a send time; the provider's answer tells whether it was in time.
    redis.call('ZADD', KEYS[1], cutoff_of(redis.call('HGET', KEYS[2], id)) or nosend, id)
  end
end
local out = {rnow, 0, 0, 0, 0}
local late, budget = 0, 5000
while #out < 5 + 3 * want and budget > 0 do
  local head = redis.call('ZPOPMIN', KEYS[1], 1)
  if #head == 0 then break end
  local id, cutoff = head[1], tonumber(head[2])
  local value = redis.call('HGET', KEYS[2], id)
  if not cutoff_of(value) then value = head[2] .. ' ' end
  if redis.call('HEXISTS', KEYS[6], id) == 1 then
    budget = budget - 1
  elseif cutoff ~= nosend and cutoff < now then
    local send_at = string.sub(value, string.find(value, ' ', 1, true) + 1)
    final(id, cjson.encode({late = now, send_at = send_at}), 'too_late', rnow)
    late = late + 1
    budget = budget - 1
  else
    redis.call('ZADD', KEYS[3], rnow + lease, id)
    redis.call('HSET', KEYS[4], id, token)
    out[#out + 1] = id
    out[#out + 1] = redis.call('HINCRBY', KEYS[5], id, 1)
    out[#out + 1] = value
  end
end
out[2] = late
out[3] = redis.call('ZCARD', KEYS[1])
out[4] = redis.call('ZCARD', KEYS[3])
out[5] = redis.call('HLEN', KEYS[2])
expire_all()
return out
"""
)

# ARGV: ttl, lease ms, worker name, then (id, token, "cut-off send-time") for each id
# the worker holds. A lease still held is extended; one the campaign no longer knows
# at all (its keys were wiped) is taken again; any other is lost.
# Returns one 1 (held) or 0 (lost) per id.
RENEW: Final = (
    _HEAD
    + """
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[9], rnow, ARGV[3])
local out = {}
for i = 4, #ARGV, 3 do
  local id, token = ARGV[i], ARGV[i + 1]
  local holder = redis.call('HGET', KEYS[4], id)
  local held = 0
  if holder == token then
    held = 1
  elseif not holder and redis.call('HEXISTS', KEYS[2], id) == 0
      and redis.call('HEXISTS', KEYS[6], id) == 0 then
    redis.call('HSET', KEYS[2], id, ARGV[i + 2])
    redis.call('HSET', KEYS[4], id, token)
    held = 1
  end
  if held == 1 then redis.call('ZADD', KEYS[3], rnow + lease, id) end
  out[#out + 1] = held
end
expire_all()
return out
"""
)

# ARGV: ttl, then (id, token, lenient 0/1/2, outcome category, outcome JSON,
# "cut-off send-time") for each outcome. An outcome is recorded when its token holds
# the lease, or the campaign no longer knows the id (wiped), or, lenient (kept through
# an outage, or come after its lease may have lapsed), when the id is neither final
# nor leased by a live other token; lenient 2 (an email stopped) even then: the id is
# cancelled, and the other lease's request can only find it so (code 5).
# Recording makes the id final and frees its lease, at once; the id's token becomes
# "=<token>", naming who recorded it.
# Returns per outcome: 1 recorded by this token (now, or by an earlier call whose
# answer was lost), 2 recorded before, the same, under another token (the worker does
# not count it as its own), 0 refused.
RECORD: Final = (
    _HEAD
    + """
local out = {}
for i = 2, #ARGV, 6 do
  local id, token, json = ARGV[i], ARGV[i + 1], ARGV[i + 4]
  local lenient, stopped = ARGV[i + 2] ~= '0', ARGV[i + 2] == '2'
  local known = redis.call('HGET', KEYS[6], id)
  local ok = false
  if known and known ~= json and no_request(known) then
    -- Too late with no request (marked by LEASE, or by a worker's own check), after a
    -- lease taken back while this worker's request was out: what the request did is
    -- the truth, and replaces it.
    redis.call('HINCRBY', KEYS[7], 'too_late', -1)
    redis.call('HINCRBY', KEYS[7], 'done', -1)
    final(id, json, ARGV[i + 3], rnow)
    redis.call('HSET', KEYS[4], id, '=' .. token)
    ok = true
  elseif known then
    if known == json then
      ok = redis.call('HGET', KEYS[4], id) == '=' .. token or 2
    end
  else
    local holder = redis.call('HGET', KEYS[4], id)
    if holder == token then
      ok = true
    elseif holder then
      ok = stopped or (lenient and tonumber(redis.call('ZSCORE', KEYS[3], id) or '0') <= rnow)
    else
      ok = lenient or redis.call('HEXISTS', KEYS[2], id) == 0
    end
    if ok then
      redis.call('HSETNX', KEYS[2], id, ARGV[i + 5])
      redis.call('ZREM', KEYS[1], id)
      redis.call('ZREM', KEYS[3], id)
      redis.call('HSET', KEYS[4], id, '=' .. token)
      final(id, json, ARGV[i + 3], rnow)
    end
  end
  if ok == 2 then out[#out + 1] = 2 else out[#out + 1] = ok and 1 or 0 end
end
expire_all()
return out
"""
)

# ARGV: ttl (unused: reads only). Returns {Redis now, submitted, queued, leased,
# final in the last 60 s, {category, count, ...}, up to 100 leased ids, workers seen
# in the last 60 s}.
STATUS: Final = (
    _HEAD
    + """
return {
  rnow,
  redis.call('HLEN', KEYS[2]),
  redis.call('ZCARD', KEYS[1]),
  redis.call('ZCARD', KEYS[3]),
  redis.call('ZCOUNT', KEYS[8], rnow - 60000, '+inf'),
  redis.call('HGETALL', KEYS[7]),
  redis.call('ZRANGE', KEYS[3], 0, 99),
  redis.call('ZRANGEBYSCORE', KEYS[9], rnow - 60000, '+inf'),
}
"""
)

# ARGV: ttl (unused), cursor, count. Returns {Redis now, next cursor, {id, cut-off,
# ...}}: a ZSCAN page, so that workers popping the queue meanwhile make the reader
# miss no id that stays queued (ranks would shift under it).
QUEUE_PAGE: Final = (
    _HEAD
    + """
local page = redis.call('ZSCAN', KEYS[1], ARGV[2], 'COUNT', ARGV[3])
return {rnow, page[1], page[2]}
"""
)

# ARGV: ttl (unused). Returns {id, "cut-off send-time"} for each id leased now.
LEASED_PAGE: Final = (
    _HEAD
    + """
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or ''
end
return out
"""
)

# ARGV: ttl (unused), cursor, count. Returns {next cursor, {id, outcome JSON, ...}}.
LEDGER_PAGE: Final = (
    _HEAD
    + """
return redis.call('HSCAN', KEYS[6], ARGV[2], 'COUNT', ARGV[3])
"""
)
