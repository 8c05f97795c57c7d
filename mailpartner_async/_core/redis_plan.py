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
from typing import Final

from .errors import ConfigurationError
from .secrets import Secret
from .settings import check_count, check_rate_limit

__all__ = [
    "PAUSE",
    "RESERVE",
    "RETRY_SECONDS",
    "SOCKET_TIMEOUT",
    "RedisHealth",
    "RedisPlan",
    "plan_redis",
]

# Seconds between two tries to reach Redis again while it is away.
RETRY_SECONDS: Final = 2.0
# Seconds a Redis call may take before Redis counts as away.
SOCKET_TIMEOUT: Final = 1.0
_SCHEMES: Final = ("redis://", "rediss://", "unix://")

# KEYS: next start, the last `limit` starts, paused until (all in Redis-clock µs).
# ARGV: limit, period µs, margin µs, a start reserved before (0: none).
# Returns {µs to wait, the start reserved}.
RESERVE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit, period, margin = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local reserved = tonumber(ARGV[4])
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
if reserved > 0 and paused <= reserved then
  return {math.max(reserved - now, 0), reserved}
end
local start = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'), paused)
if redis.call('LLEN', KEYS[2]) >= limit then
  start = math.max(start, tonumber(redis.call('LINDEX', KEYS[2], 0)) + period + margin)
end
local ttl = math.ceil((start - now + 2 * period) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', start + period / limit), 'PX', ttl)
redis.call('RPUSH', KEYS[2], string.format('%.0f', start))
redis.call('LTRIM', KEYS[2], -limit, -1)
redis.call('PEXPIRE', KEYS[2], ttl)
return {start - now, start}
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


@dataclasses.dataclass(frozen=True, slots=True)
class RedisPlan:
    """What the pacers of one shared budget run with: plain values, no client.

    ``keys`` are the budget's keys in Redis: the next free start, the last
    ``rate_limit`` starts, and the pause (its last one). ``reserve_args`` are the
    reserving script's first arguments: ``rate_limit``, ``period`` and the margin
    between a start and the one ``rate_limit`` places before it, in microseconds.
    ``fallback_per_minute`` paces a client on its own while Redis is away (the local
    pacer counts minutes). ``socket_timeout`` bounds each call to Redis, connecting
    included, before Redis counts as away; ``retry_seconds`` spaces the probes while
    it is. ``repr`` shows no part of ``url``.

    Example::

        plan = plan_redis("redis://localhost:6379/0", 2000, "mailpartner", 60.0, None)
        assert plan.keys[0] == "{mailpartner}:next"
    """

    url: Secret
    key: str
    keys: tuple[str, str, str]
    rate_limit: int
    period: float
    fallback_rate_limit: int
    fallback_per_minute: int
    reserve_args: tuple[int, int, int]
    socket_timeout: float
    retry_seconds: float

    def reserve_call(self, reserved: int) -> tuple[list[str], list[int]]:
        """:data:`RESERVE`'s keys and arguments; ``reserved``: a start to check again (0: none)."""
        return [*self.keys], [*self.reserve_args, reserved]

    def pause_call(self, seconds: float) -> tuple[list[str], list[int]]:
        """:data:`PAUSE`'s keys and arguments: the pause, in whole microseconds (rounded up)."""
        return [self.keys[2]], [math.ceil(seconds * 1e6)]


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
    fallback = limit if fallback is None else fallback
    tag = "{" + key + "}"  # one hash tag: a Redis Cluster keeps the keys in one slot
    period_us = round(seconds * 1e6)
    # As in the client's own pacing, 0.5 s at 60 s, and never under 50 ms: the jitter
    # between a start and its arrival must not put rate_limit + 1 starts in one window
    # of the server.
    margin_us = min(500_000, max(period_us // 120, 50_000))
    return RedisPlan(
        url=Secret(url),
        key=key,
        keys=(f"{tag}:next", f"{tag}:starts", f"{tag}:paused_until"),
        rate_limit=limit,
        period=seconds,
        fallback_rate_limit=fallback,
        fallback_per_minute=_per_minute(fallback, seconds, margin_us),
        reserve_args=(limit, period_us, margin_us),
        socket_timeout=SOCKET_TIMEOUT,
        retry_seconds=RETRY_SECONDS,
    )


def _per_minute(fallback: int, period: float, margin_us: int) -> int:
    """The local pacer's rate for ``fallback`` a ``period``: it counts minutes."""
    if period == 60.0:
        return fallback
    # Spaced (period + margin) / fallback apart: no closed period holds more than fallback.
    return max(1, math.floor(fallback * 60.0 / (period + margin_us / 1e6)))


def _checked(url: object, key: object, period: object) -> tuple[str, str, float]:
    """``url``, ``key`` and ``period`` when the limiter can use them."""
    if not isinstance(url, str) or not url.startswith(_SCHEMES):
        raise ConfigurationError("url must be a redis://, rediss:// or unix:// URL")
    if not isinstance(key, str) or not key.strip():
        raise ConfigurationError(f"key must be a non-blank string, got {key!r}")
    if (
        isinstance(period, bool)
        or not isinstance(period, int | float)
        or not (0 < period < math.inf)
    ):
        raise ConfigurationError(f"period must be a positive number of seconds, got {period!r}")
    return url, key, float(period)


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
