"""RedisRateLimiter: one rate limit shared by every client, in every process, through Redis.

Needs the ``redis`` extra (``pip install '.[redis]'`` in a clone of the repository:
the package is not on PyPI yet).

The budget lives in Redis and is spent by one Lua script, run atomically by the
server (``EVALSHA``) and timed by the server's own clock (``TIME``), so clients on
machines whose clocks disagree still share it exactly. The script hands out *start
times*, as the client's own pacing does (:mod:`mailpartner_async._pacing`): starts
are spaced ``period / rate_limit`` apart and, as a hard bound, a start never comes
before the one ``rate_limit`` places earlier is more than ``period`` old (plus a small
margin). The caller sleeps until its start; if a pause was set meanwhile (a 429 or a
``Retry-After`` seen by any client), it takes a new place after the pause.

Keys, for ``key="mailpartner"`` (one hash tag, so a Redis Cluster keeps them in one
slot): ``{mailpartner}:next`` (the next free start), ``{mailpartner}:starts`` (the
last ``rate_limit`` starts) and ``{mailpartner}:paused_until``; all expire on their
own when the fleet stops.

When Redis cannot be reached, each client paces itself at ``fallback_rate_limit``
(default ``rate_limit``) a period, logs one WARNING on the ``mailpartner_async``
logger, tries Redis again at most every few seconds, and returns to the shared budget
when it answers: a cancel never fails because Redis is away.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from typing import Any, Final

import anyio
import anyio.to_thread

from ._compat import AsyncPacer, Pacer, sleep
from ._config import check_count, check_rate_limit
from ._exceptions import ConfigurationError

try:
    import redis
    import redis.asyncio
    from redis.backoff import NoBackoff
except ImportError as exc:  # pragma: no cover - the extra is installed in tests
    raise ImportError(
        "mailpartner_async.redis needs the redis extra: "
        "pip install '.[redis]' in a clone of the repository (not on PyPI yet)"
    ) from exc

__all__ = ["RedisRateLimiter"]

logger = logging.getLogger("mailpartner_async")

# Seconds between two tries to reach Redis again while it is away.
RETRY_SECONDS: Final = 2.0
# Seconds a Redis call may take before Redis counts as away.
_SOCKET_TIMEOUT: Final = 1.0
_REDIS_ERRORS: Final = (redis.RedisError, OSError)

# KEYS: next start, the last `limit` starts, paused until (all in Redis-clock µs).
# ARGV: limit, period µs, margin µs, a start reserved before (0: none).
# Returns {µs to wait, the start reserved}.
_RESERVE: Final = """
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
_PAUSE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local pause = tonumber(ARGV[1])
if now + pause > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], string.format('%.0f', now + pause), 'PX',
             math.ceil(pause / 1000) + 1000)
end
return 0
"""


class RedisRateLimiter:
    """A rate limit shared by every client given a limiter on the same Redis and ``key``.

    No more than ``rate_limit`` requests start in any ``period`` seconds (default 60)
    among all of them together, in any process on any machine; a 429 or a
    ``Retry-After`` met by one pauses all. Pass it as ``rate_limiter=`` to
    :class:`~mailpartner_async.AsyncMailPartner` (asyncio through ``redis.asyncio``;
    trio through a worker thread) or ``MailPartner`` (any number of threads); the
    client's own ``rate_limit`` is then unused. Every limiter sharing a ``key`` must
    be given the same ``rate_limit`` and ``period``.

    While Redis is away, each client paces itself at ``fallback_rate_limit`` a
    period (default ``rate_limit``; with N processes, ``rate_limit // N`` keeps even
    an outage under the cap), and returns to the shared budget once Redis answers.

    Example::

        limiter = RedisRateLimiter("redis://localhost:6379/0", rate_limit=2000)
        async with AsyncMailPartner(rate_limiter=limiter) as client:
            await client.cancel("300")

    The limiter holds no connection itself: each client's pacer opens its own and
    closes it with the client.
    """

    def __init__(
        self,
        url: str,
        rate_limit: int = 2000,
        key: str = "mailpartner",
        *,
        period: float = 60.0,
        fallback_rate_limit: int | None = None,
    ) -> None:
        _check_arguments(url, key, period)
        self.url = url
        self.rate_limit = check_count("rate_limit", rate_limit, minimum=1)
        self.key = key
        self.period = float(period)
        fallback = check_rate_limit(fallback_rate_limit)
        self.fallback_rate_limit = self.rate_limit if fallback is None else fallback
        tag = "{" + key + "}"
        self._keys = [f"{tag}:next", f"{tag}:starts", f"{tag}:paused_until"]
        period_us = round(self.period * 1e6)
        # As in the client's own pacing, 0.5 s at 60 s, and never under 50 ms: the
        # jitter between a start and its arrival must not put rate_limit + 1 starts
        # in one window of the server.
        margin_us = min(500_000, max(period_us // 120, 50_000))
        self._reserve_args = [self.rate_limit, period_us, margin_us]

    def __repr__(self) -> str:
        return (
            f"RedisRateLimiter(rate_limit={self.rate_limit}, key={self.key!r}, "
            f"period={self.period})"
        )

    def async_pacer(self) -> _AsyncRedisPacer:
        """A pacer for one :class:`~mailpartner_async.AsyncMailPartner`."""
        return _AsyncRedisPacer(self)

    def pacer(self) -> _RedisPacer:
        """A pacer for one ``MailPartner``, shared by its threads."""
        return _RedisPacer(self)

    def _fallback_per_minute(self) -> int:
        """The local pacer's rate: it counts minutes, so another period is scaled."""
        if self.period == 60.0:
            return self.fallback_rate_limit
        # Spaced (period + margin) / rate apart: no closed period holds more than rate.
        margin = self._reserve_args[2] / 1e6
        return max(1, math.floor(self.fallback_rate_limit * 60.0 / (self.period + margin)))

    def _connection_options(self) -> dict[str, Any]:
        return {
            "socket_timeout": _SOCKET_TIMEOUT,
            "socket_connect_timeout": _SOCKET_TIMEOUT,
        }


def _check_arguments(url: object, key: object, period: object) -> None:
    """Refuse what the constructor cannot use (the counts go through ``_config``)."""
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError("url must be a redis://, rediss:// or unix:// URL")
    if not isinstance(key, str) or not key.strip():
        raise ConfigurationError(f"key must be a non-blank string, got {key!r}")
    if (
        isinstance(period, bool)
        or not isinstance(period, int | float)
        or not (0 < period < math.inf)
    ):
        raise ConfigurationError(f"period must be a positive number of seconds, got {period!r}")


class _Health:
    """Whether Redis answers: says when to try it, logs each outage once. Thread-safe."""

    def __init__(self, limiter: RedisRateLimiter) -> None:
        self._limiter = limiter
        self._lock = threading.Lock()
        self._up = True
        self._retry_at = 0.0

    def try_redis(self) -> bool:
        """True when Redis is up, or when this caller should probe it again."""
        with self._lock:
            if self._up:
                return True
            now = time.monotonic()
            if now < self._retry_at:
                return False
            self._retry_at = now + RETRY_SECONDS  # one probe at a time
            return True

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self._retry_at = time.monotonic() + RETRY_SECONDS
            if not self._up:
                return
            self._up = False
        limiter = self._limiter
        logger.warning(
            "Redis rate limiter (key %r) unreachable (%s): pacing locally at %d requests "
            "per %g s until it is back",
            limiter.key,
            type(exc).__name__,
            limiter.fallback_rate_limit,
            limiter.period,
        )

    def answered(self) -> None:
        with self._lock:
            if self._up:
                return
            self._up = True
        logger.warning(
            "Redis rate limiter (key %r) is back: pacing on the shared budget", self._limiter.key
        )


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _AsyncRedisPacer:
    """The async client's pacer: ``redis.asyncio`` on asyncio, a worker thread on trio."""

    def __init__(self, limiter: RedisRateLimiter) -> None:
        self._limiter = limiter
        self._health = _Health(limiter)
        self._local = AsyncPacer(limiter._fallback_per_minute())
        self._async_client: redis.asyncio.Redis | None = None
        self._sync: _RedisPacer | None = None  # under trio

    def _scripts(self) -> tuple[Any, Any]:
        if self._async_client is None:
            self._async_client = redis.asyncio.Redis.from_url(
                self._limiter.url,
                retry=redis.asyncio.retry.Retry(NoBackoff(), 0),
                **self._limiter._connection_options(),
            )
            self._reserve = self._async_client.register_script(_RESERVE)
            self._pause = self._async_client.register_script(_PAUSE)
        return self._reserve, self._pause

    async def _call(self, which: int, args: list[int]) -> list[int]:
        limiter = self._limiter
        if _on_asyncio():
            script = self._scripts()[which]
            keys = limiter._keys if which == 0 else limiter._keys[2:]
            result: list[int] = await script(keys=keys, args=args)
            return result
        if self._sync is None:
            self._sync = _RedisPacer(limiter)
        return await anyio.to_thread.run_sync(self._sync._call, which, args, abandon_on_cancel=True)

    async def wait(self) -> None:
        reserved = 0
        while self._health.try_redis():
            try:
                delay_us, reserved = await self._call(0, [*self._limiter._reserve_args, reserved])
            except _REDIS_ERRORS as exc:
                self._health.failed(exc)
                break
            self._health.answered()
            if delay_us <= 0:
                return
            await anyio.sleep(delay_us / 1e6)
        await self._local.wait()

    async def pause(self, seconds: float) -> None:
        await self._local.pause(seconds)
        if self._health.try_redis():
            try:
                await self._call(1, [math.ceil(seconds * 1e6)])
            except _REDIS_ERRORS as exc:
                self._health.failed(exc)
            else:
                self._health.answered()

    async def aclose(self) -> None:
        client, self._async_client = self._async_client, None
        if client is not None:
            await client.aclose()
        if self._sync is not None:
            self._sync.close()


class _RedisPacer:
    """The sync client's pacer: the sync Redis client, whose pool is thread-safe."""

    def __init__(self, limiter: RedisRateLimiter) -> None:
        self._limiter = limiter
        self._health = _Health(limiter)
        self._local = Pacer(limiter._fallback_per_minute())
        self._client = redis.Redis.from_url(
            limiter.url, retry=redis.retry.Retry(NoBackoff(), 0), **limiter._connection_options()
        )
        self._scripts = (
            self._client.register_script(_RESERVE),
            self._client.register_script(_PAUSE),
        )

    def _call(self, which: int, args: list[int]) -> list[int]:
        keys = self._limiter._keys if which == 0 else self._limiter._keys[2:]
        result: list[int] = self._scripts[which](keys=keys, args=args)
        return result

    def wait(self) -> None:
        reserved = 0
        while self._health.try_redis():
            try:
                delay_us, reserved = self._call(0, [*self._limiter._reserve_args, reserved])
            except _REDIS_ERRORS as exc:
                self._health.failed(exc)
                break
            self._health.answered()
            if delay_us <= 0:
                return
            sleep(delay_us / 1e6)
        self._local.wait()

    def pause(self, seconds: float) -> None:
        self._local.pause(seconds)
        if self._health.try_redis():
            try:
                self._call(1, [math.ceil(seconds * 1e6)])
            except _REDIS_ERRORS as exc:
                self._health.failed(exc)
            else:
                self._health.answered()

    def close(self) -> None:
        self._client.close()
