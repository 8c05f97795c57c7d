"""The shared budget in Redis, sans-I/O: the plan its pacers run with, its two Lua
scripts, and when to try Redis again while it is away.

:class:`RedisPlan` is what a :class:`~mailpartner_async.redis.RedisRateLimiter` hands
its pacers: the Redis URL (a :class:`~mailpartner_async._core.secrets.Secret`: it may
hold a password), the keys, the scripts' arguments and the local fallback's pace. It
holds no client: each pacer opens its own connection from it. :data:`RESERVE` and
:data:`PAUSE` run on the Redis server, atomically, on its clock. :class:`RedisHealth`
decides when a pacer tries Redis again; ``now`` is passed in.
"""

from __future__ import annotations

import dataclasses
import math
import urllib.parse
from typing import Final

from .errors import ConfigurationError
from .secrets import Secret
from .settings import check_count, check_rate_limit, check_seconds

__all__ = [
    "CALL_DEADLINE",
    "MAX_CHECKS_PER_START",
    "MAX_PAUSE",
    "PAUSE",
    "RESERVE",
    "RETRY_SECONDS",
    "SOCKET_TIMEOUT",
    "WIPED",
    "RedisHealth",
    "RedisPlan",
    "RedisReplyError",
    "Reservation",
    "check_redis_url",
    "fleet_share",
    "plan_redis",
    "read_reservation",
]

# Seconds between two tries to reach Redis again while it is away (at most; a short
# period probes more often, so that a fleet returns to the shared budget together).
RETRY_SECONDS: Final = 2.0
# Seconds one read or connect to Redis may take before Redis counts as away.
SOCKET_TIMEOUT: Final = 1.0
# Seconds one whole call to Redis may take, however its reply trickles in.
CALL_DEADLINE: Final = 2.0
# Checks of one reserved start that may still find it not due: a healthy Redis needs
# one, or a few when its clock runs ahead of ours. More is a Redis that keeps
# answering "not yet" (a fractional delay, say), which must not spin.
MAX_CHECKS_PER_START: Final = 8
# Seconds a shared pause may last, for a period shorter than this.
MAX_PAUSE: Final = 60.0
_SCHEMES: Final = ("redis://", "rediss://", "unix://")
# A reservation's flag: the budget's keys were gone while this fleet was running (a
# FLUSHALL, a restart without persistence), and the log was rebuilt for the worst case.
WIPED: Final = 1
_LOST: Final = 2  # the reservation checked again was not in the log: a new one was taken

# KEYS: next start, the last `limit` starts, paused until (all in Redis-clock µs),
# the members' heartbeats (a sorted set: member -> last call).
# ARGV: limit, period µs, margin µs, a start reserved before (0: none), whether this
# member saw the budget in the last period (1/0), the member's name, how far ahead a
# start may be handed out (µs), then starts made while Redis was away, as µs before
# now, to add to the log.
# Returns {µs to wait, the start reserved (0: none yet, ask again after the wait),
# flags, members seen in the last period}. No start is handed out further ahead than
# the horizon, so no healthy answer asks for a longer wait. The log keeps every start
# of the last period and every one still to come, and at least the last `limit`.
RESERVE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit, period, margin = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local reserved, alive = tonumber(ARGV[4]), tonumber(ARGV[5])
local spacing = period / limit
local horizon = now + tonumber(ARGV[7])
redis.call('ZADD', KEYS[4], now, ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - period)
redis.call('PEXPIRE', KEYS[4], math.ceil(2 * period / 1000) + 1000)
local members = redis.call('ZCARD', KEYS[4])
local flags = 0
local nxt = redis.call('GET', KEYS[1])
if not nxt and alive == 1 then
  -- Wiped while the fleet ran: the starts of the last period are unknown. Assume the
  -- worst the spacing allows, `limit` starts up to now, so no window overruns.
  redis.call('DEL', KEYS[2])
  for i = limit - 1, 0, -1 do
    redis.call('RPUSH', KEYS[2], string.format('%.0f', now - i * spacing))
  end
  nxt = string.format('%.0f', now + spacing)
  flags = 1
elseif #ARGV > 7 then
  -- Back from an outage: the starts made meanwhile join the log, in order.
  local log = redis.call('LRANGE', KEYS[2], 0, -1)
  for i = 8, #ARGV do log[#log + 1] = string.format('%.0f', now - tonumber(ARGV[i])) end
  table.sort(log, function(a, b) return tonumber(a) < tonumber(b) end)
  redis.call('DEL', KEYS[2])
  for i = 1, #log do redis.call('RPUSH', KEYS[2], log[i]) end
end
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
if reserved > 0 and flags == 0 and paused <= reserved then
  if redis.call('LPOS', KEYS[2], string.format('%.0f', reserved)) then
    return {math.max(reserved - now, 0), reserved, 0, members}
  end
  flags = 2
end
local start = math.max(now, tonumber(nxt or '0'), paused)
if redis.call('LLEN', KEYS[2]) >= limit then
  start = math.max(start, tonumber(redis.call('LINDEX', KEYS[2], -limit)) + period + margin)
end
if start > horizon then
  return {start - horizon, 0, flags, members}
end
local ttl = math.ceil((start - now + 2 * period) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', start + spacing), 'PX', ttl)
redis.call('RPUSH', KEYS[2], string.format('%.0f', start))
while redis.call('LLEN', KEYS[2]) > limit
    and tonumber(redis.call('LINDEX', KEYS[2], 0)) < now - period - margin do
  redis.call('LPOP', KEYS[2])
end
redis.call('PEXPIRE', KEYS[2], ttl)
return {start - now, start, flags, members}
"""

# KEYS: paused until. ARGV: µs to pause. A later pause wins.
PAUSE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local pause = tonumber(ARGV[1])
if now + pause > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], string.format('%.0f', now + pause), 'PX',
             math.ceil(pause / 1000) + 1000)
end
return 0
"""


class RedisReplyError(Exception):
    """Redis (or something in front of it) answered what the scripts never return.

    The pacer treats it as Redis being away: local pacing, one WARNING.
    """


@dataclasses.dataclass(frozen=True, slots=True)
class Reservation:
    """:data:`RESERVE`'s answer, checked: wait ``delay_us``, then start at ``start``
    (Redis clock; 0: none yet, ask again after the wait). ``flags`` has :data:`WIPED`
    when this call found the budget wiped; ``members``: the fleet's size."""

    delay_us: int
    start: int
    flags: int
    members: int


def read_reservation(reply: object, max_delay_us: int) -> Reservation:
    """The :data:`RESERVE` ``reply``, or :class:`RedisReplyError` if it is not one.

    A healthy budget never asks for a wait over ``max_delay_us`` (one period and the
    margin): a longer one comes from a broken Redis (its clock stepped back, say).
    """
    if (
        not isinstance(reply, list)
        or len(reply) != 4
        or not all(type(item) is int for item in reply)
    ):
        raise RedisReplyError(f"not a reservation: {_shape(reply)}")
    delay_us, start, flags, members = reply
    if not 0 <= delay_us <= max_delay_us:
        raise RedisReplyError(f"a wait of {delay_us} µs, outside 0..{max_delay_us}")
    if start < 0 or flags not in (0, WIPED, _LOST) or members < 1:
        raise RedisReplyError(f"an impossible reservation: {reply!r}")
    return Reservation(delay_us, start, flags, members)


def _shape(reply: object) -> str:
    """What ``reply`` is, briefly (its type, and its length when it has one)."""
    if isinstance(reply, list | tuple | dict | bytes | str):
        return f"{type(reply).__name__} of {len(reply)}"
    return type(reply).__name__


def fleet_share(rate_limit: int, members: int) -> int:
    """One member's share of ``rate_limit`` while Redis is away: an equal part."""
    return max(1, rate_limit // max(1, members))


@dataclasses.dataclass(frozen=True, slots=True)
class RedisPlan:
    """What the pacers of one shared budget run with: plain values, no client.

    ``keys`` are the budget's keys in Redis: the next free start, the last
    ``rate_limit`` starts, the pause (its last one) and the members' heartbeats.
    ``reserve_args`` are the reserving script's first arguments: ``rate_limit``,
    ``period`` and the margin between a start and the one ``rate_limit`` places before
    it, in microseconds. While Redis is away a client paces itself at
    ``fallback_rate_limit`` a period when one was given, else at its share of the
    fleet (:meth:`local_per_minute`: the local pacer counts minutes).
    ``socket_timeout`` bounds each read and connect, ``call_deadline`` each whole call
    to Redis, before Redis counts as away; ``retry_seconds`` spaces the probes while it
    is. ``repr`` shows no part of ``url``.

    Example::

        plan = plan_redis("redis://localhost:6379/0", 2000, "mailpartner", 60.0, None)
        assert plan.keys[0] == "{mailpartner}:next"
    """

    url: Secret
    key: str
    keys: tuple[str, str, str, str]
    rate_limit: int
    period: float
    fallback_rate_limit: int | None
    reserve_args: tuple[int, int, int]
    socket_timeout: float
    call_deadline: float
    retry_seconds: float

    @property
    def max_pause(self) -> float:
        """The longest shared pause: one period, or a minute for a shorter period (the
        provider's ``Retry-After`` for its per-minute cap is at most that)."""
        return max(self.period, MAX_PAUSE)

    @property
    def max_delay_us(self) -> int:
        """The longest wait a healthy budget asks for: the longest pause or one period,
        and the margin."""
        return math.ceil(self.max_pause * 1e6) + self.reserve_args[2]

    def local_rate_limit(self, members: int) -> int:
        """A client's own pace, per period, while Redis is away, in a fleet of ``members``."""
        if self.fallback_rate_limit is not None:
            return self.fallback_rate_limit
        return fleet_share(self.rate_limit, members)

    def local_per_minute(self, members: int) -> int:
        """:meth:`local_rate_limit` for the local pacer, which counts minutes."""
        return _per_minute(self.local_rate_limit(members), self.period, self.reserve_args[2])

    def reserve_call(
        self, reserved: int, *, alive: bool, member: str, away_starts: tuple[int, ...] = ()
    ) -> tuple[list[str], list[int | str]]:
        """:data:`RESERVE`'s keys and arguments.

        ``reserved``: a start to check again (0: none); ``alive``: this member saw the
        budget (a start, shared or local) in the last period; the horizon is
        :attr:`max_delay_us`; ``away_starts``: its starts while Redis was away,
        as µs before now.
        """
        horizon = self.max_delay_us
        return [*self.keys], [
            *self.reserve_args,
            reserved,
            int(alive),
            member,
            horizon,
            *away_starts,
        ]

    def pause_call(self, seconds: float) -> tuple[list[str], list[int]]:
        """:data:`PAUSE`'s keys and arguments: the pause, in whole microseconds (rounded
        up), at most :attr:`max_pause`."""
        return [self.keys[2]], [math.ceil(min(seconds, self.max_pause) * 1e6)]


def plan_redis(
    url: object,
    rate_limit: object,
    key: object,
    period: object,
    fallback_rate_limit: object,
) -> RedisPlan:
    """The plan of a budget, from a ``RedisRateLimiter``'s arguments, each checked.

    A value the limiter cannot use is a :class:`~mailpartner_async.ConfigurationError`.
    """
    url, key, seconds = _checked(url, key, period)
    limit = check_count("rate_limit", rate_limit, minimum=1)
    fallback = check_rate_limit(fallback_rate_limit)
    tag = "{" + key + "}"  # one hash tag: a Redis Cluster keeps the keys in one slot
    period_us = round(seconds * 1e6)
    # As in the client's own pacing, 0.5 s at 60 s, and never under 50 ms: the jitter
    # between a start and its arrival must not put rate_limit + 1 starts in one window
    # of the server.
    margin_us = min(500_000, max(period_us // 120, 50_000))
    return RedisPlan(
        url=Secret(url),
        key=key,
        keys=(f"{tag}:next", f"{tag}:starts", f"{tag}:paused_until", f"{tag}:members"),
        rate_limit=limit,
        period=seconds,
        fallback_rate_limit=fallback,
        reserve_args=(limit, period_us, margin_us),
        socket_timeout=SOCKET_TIMEOUT,
        call_deadline=CALL_DEADLINE,
        # A twentieth of the period at most: members probe often enough to come back
        # to the shared budget nearly together.
        retry_seconds=min(RETRY_SECONDS, seconds / 20),
    )


def _per_minute(fallback: int, period: float, margin_us: int) -> int:
    """The local pacer's rate for ``fallback`` a ``period``: it counts minutes."""
    if period == 60.0:
        return fallback
    # Spaced (period + slack) / fallback apart: no closed period holds more than
    # fallback, even when the network delays one start a tenth of the period more
    # than the next (measured: with the 50 ms margin alone, a 1 s period met 5 starts
    # in one window of 4 on a loaded machine). An outage paces a little under budget.
    slack = max(margin_us / 1e6, period / 10)
    return max(1, math.floor(fallback * 60.0 / (period + slack)))


def _checked(url: object, key: object, period: object) -> tuple[str, str, float]:
    """``url``, ``key`` and ``period`` when the limiter can use them."""
    url = check_redis_url(url)
    if not isinstance(key, str) or not key.strip():
        raise ConfigurationError(f"key must be a non-blank string, got {key!r}")
    return url, key, check_seconds("period", period)


# What urllib.parse.urlsplit says of a URL it cannot split, when it quotes nothing.
_UNQUOTING_SPLIT_ERRORS: Final = frozenset({"Invalid IPv6 URL", "Port out of range 0-65535"})
_UNREADABLE_ADDRESS: Final = (
    "its host or port cannot be read (a port must be a number; a password holding "
    "'/', '?', '#' or '@' must be percent-encoded)"
)


def check_redis_url(url: object) -> str:
    """``url`` when it is a redis://, rediss:// or unix:// URL whose host, port and
    database read; else a :class:`ConfigurationError` that shows no part of it (its
    query options are redis-py's, checked where redis-py is at hand)."""
    if not isinstance(url, str) or not url.startswith(_SCHEMES):
        raise ConfigurationError("url must be a redis://, rediss:// or unix:// URL")
    _check_address(url)
    return url


def _check_address(url: str) -> None:
    """A ``ConfigurationError`` naming what is wrong with ``url``'s host, port or
    database."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # reading it checks it: a number in 0..65535
    except ValueError as exc:  # an unclosed "[", a port that is not a number
        # The parser's words only when they quote nothing: its "port" (or netloc) may
        # be a piece of a password holding a "/" (redis://:pa/ss@host).
        said = str(exc) if str(exc) in _UNQUOTING_SPLIT_ERRORS else _UNREADABLE_ADDRESS
        raise ConfigurationError(f"url is not a Redis URL: {said}") from None
    if parts.scheme == "unix":
        return
    if port == 0:
        raise ConfigurationError("url's port must be in 1..65535, got 0")
    database = urllib.parse.unquote(parts.path).strip("/")
    if database and not (database.isascii() and database.isdigit()):
        raise ConfigurationError(
            f"url's path must be a database number (redis://host:6379/0), got {database!r}"
        )


class RedisHealth:
    """Whether Redis answers, and when a pacer tries it again while it does not.

    Decisions only: ``now`` (monotonic seconds) is passed in, and the caller logs
    what :meth:`failed` and :meth:`answered` report. Not thread-safe: the pacer
    guards it.

    Example::

        health = RedisHealth(retry_seconds=2.0)
        assert health.failed(now=10.0)  # the outage starts: log it
        assert not health.try_redis(now=11.0) and health.try_redis(now=12.0)
    """

    __slots__ = ("_retry_at", "_retry_seconds", "up")

    def __init__(self, retry_seconds: float) -> None:
        self.up = True
        self._retry_seconds = retry_seconds
        self._retry_at = -math.inf

    def try_redis(self, now: float) -> bool:
        """True when Redis is up, or when this caller should probe it again."""
        if self.up:
            return True
        if now < self._retry_at:
            return False
        self._retry_at = now + self._retry_seconds  # one probe at a time
        return True

    def failed(self, now: float) -> bool:
        """A call failed at ``now``; True when that starts an outage."""
        self._retry_at = now + self._retry_seconds
        started, self.up = self.up, False
        return started

    def answered(self) -> bool:
        """A call was answered; True when that ends an outage."""
        ended, self.up = not self.up, True
        return ended
