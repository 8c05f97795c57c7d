"""The Redis side of RedisRateLimiter: its Lua scripts, the clients running them, outages.

Nothing here waits for a start time: the pacers that do (``_async/redis_pacer.py``
and its generated twin) call :class:`AsyncRedisScripts` or :class:`RedisScripts`,
which only run one script and return its answer.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any, Final

import anyio.to_thread
import redis
import redis.asyncio
from redis.backoff import NoBackoff

if TYPE_CHECKING:
    from ._core.redis_plan import RedisPlan

__all__ = [
    "REDIS_ERRORS",
    "AsyncRedisScripts",
    "Health",
    "RedisScripts",
]

logger = logging.getLogger("mailpartner_async")

REDIS_ERRORS: Final = (redis.RedisError, OSError)

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


def _connection_options(plan: RedisPlan) -> dict[str, Any]:
    # No retry inside redis-py: a failed call counts as an outage at once, and the
    # pacer falls back to local pacing instead of waiting on Redis.
    return {
        "socket_timeout": plan.socket_timeout,
        "socket_connect_timeout": plan.socket_timeout,
    }


class Health:
    """Whether Redis answers: says when to try it, logs each outage once. Thread-safe."""

    def __init__(self, plan: RedisPlan) -> None:
        self._plan = plan
        self._lock = threading.Lock()
        self._up = True
        self._retry_at = 0.0

    @property
    def up(self) -> bool:
        """Whether the last call to Redis was answered."""
        with self._lock:
            return self._up

    def try_redis(self) -> bool:
        """True when Redis is up, or when this caller should probe it again."""
        with self._lock:
            if self._up:
                return True
            now = time.monotonic()
            if now < self._retry_at:
                return False
            self._retry_at = now + self._plan.retry_seconds  # one probe at a time
            return True

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self._retry_at = time.monotonic() + self._plan.retry_seconds
            if not self._up:
                return
            self._up = False
        plan = self._plan
        logger.warning(
            "Redis rate limiter (key %r) unreachable (%s): pacing locally at %d requests "
            "per %g s until it is back",
            plan.key,
            type(exc).__name__,
            plan.fallback_rate_limit,
            plan.period,
        )

    def answered(self) -> None:
        with self._lock:
            if self._up:
                return
            self._up = True
        logger.warning(
            "Redis rate limiter (key %r) is back: pacing on the shared budget", self._plan.key
        )


class RedisScripts:
    """The two scripts on the sync Redis client, whose pool is thread-safe."""

    def __init__(self, plan: RedisPlan) -> None:
        self._plan = plan
        self._client = redis.Redis.from_url(
            plan.url.reveal(), retry=redis.retry.Retry(NoBackoff(), 0), **_connection_options(plan)
        )
        self._reserve = self._client.register_script(RESERVE)
        self._pause = self._client.register_script(PAUSE)

    def reserve(self, reserved: int) -> tuple[int, int]:
        """µs to wait for a start, and that start (Redis clock); ``reserved`` re-checks one."""
        plan = self._plan
        try:
            delay_us, start = self._reserve(keys=[*plan.keys], args=[*plan.reserve_args, reserved])
        except REDIS_ERRORS:
            self._drop_connections()
            raise
        return int(delay_us), int(start)

    def pause(self, seconds: float) -> None:
        """Hold back every start of the key for ``seconds`` (a later pause wins)."""
        try:
            self._pause(keys=[*self._plan.keys[2:]], args=[math.ceil(seconds * 1e6)])
        except REDIS_ERRORS:
            self._drop_connections()
            raise

    def _drop_connections(self) -> None:
        # The idle connections of the pool died with the server too: without this, the
        # calls right after a restart would take them, fail, and start a second outage.
        self._client.connection_pool.disconnect(inuse_connections=False)

    def close(self) -> None:
        self._client.close()


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class AsyncRedisScripts:
    """The two scripts from the async client: ``redis.asyncio`` on asyncio, a thread on trio.

    redis-py has no trio support, so under trio each call runs :class:`RedisScripts`
    in a worker thread. Connections open on the first call, inside the event loop.
    """

    def __init__(self, plan: RedisPlan) -> None:
        self._plan = plan
        self._client: redis.asyncio.Redis | None = None
        self._scripts: tuple[Any, Any] | None = None
        self._threaded: RedisScripts | None = None

    def _on_loop(self) -> tuple[Any, Any]:
        if self._scripts is None:
            self._client = redis.asyncio.Redis.from_url(
                self._plan.url.reveal(),
                retry=redis.asyncio.retry.Retry(NoBackoff(), 0),
                **_connection_options(self._plan),
            )
            self._scripts = (
                self._client.register_script(RESERVE),
                self._client.register_script(PAUSE),
            )
        return self._scripts

    def _in_thread(self) -> RedisScripts:
        if self._threaded is None:
            self._threaded = RedisScripts(self._plan)
        return self._threaded

    async def reserve(self, reserved: int) -> tuple[int, int]:
        """As :meth:`RedisScripts.reserve`."""
        plan = self._plan
        if not _on_asyncio():
            return await anyio.to_thread.run_sync(
                self._in_thread().reserve, reserved, abandon_on_cancel=True
            )
        reserve = self._on_loop()[0]
        try:
            delay_us, start = await reserve(keys=[*plan.keys], args=[*plan.reserve_args, reserved])
        except REDIS_ERRORS:
            await self._drop_connections()
            raise
        return int(delay_us), int(start)

    async def pause(self, seconds: float) -> None:
        """As :meth:`RedisScripts.pause`."""
        if not _on_asyncio():
            await anyio.to_thread.run_sync(self._in_thread().pause, seconds, abandon_on_cancel=True)
            return
        pause = self._on_loop()[1]
        try:
            await pause(keys=[*self._plan.keys[2:]], args=[math.ceil(seconds * 1e6)])
        except REDIS_ERRORS:
            await self._drop_connections()
            raise

    async def _drop_connections(self) -> None:
        # As RedisScripts._drop_connections: the idle connections died with the server.
        if self._client is not None:
            await self._client.connection_pool.disconnect(inuse_connections=False)

    async def aclose(self) -> None:
        client, self._client, self._scripts = self._client, None, None
        if client is not None:
            await client.aclose()
        if self._threaded is not None:
            self._threaded.close()
