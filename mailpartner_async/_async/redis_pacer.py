"""The pacer a RedisRateLimiter gives one client: the shared budget, else local pacing.

Needs the ``redis`` extra; only :mod:`mailpartner_async.redis` imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._compat import async_sleep
from .._redis import REDIS_ERRORS, AsyncRedisScripts, Health
from .pacer import AsyncPacer

if TYPE_CHECKING:
    from .._core.redis_plan import RedisPlan

__all__ = ["AsyncRedisPacer"]


class AsyncRedisPacer:
    """Waits for a start time handed out by Redis; paces locally while Redis is away.

    Each wait reserves a start in the shared log and sleeps until it; if a pause was
    set meanwhile (a 429 or ``Retry-After`` met by any client of the key), the start
    is given up and a new one taken after the pause. When a call to Redis fails, the
    wait falls back to a local pacer at the limiter's ``fallback_rate_limit``, and
    Redis is tried again at most every few seconds: a start is never refused. Both
    hand-overs move the starts already promised: a shared start is checked again at
    its time, so Redis gone sends it to the local pacer, and a local start whose
    wait saw Redis return is exchanged for a shared one.
    """

    def __init__(self, plan: RedisPlan) -> None:
        self._health = Health(plan)
        self._local = AsyncPacer(plan.fallback_per_minute)
        self._scripts = AsyncRedisScripts(plan)

    async def wait(self) -> None:
        while True:
            if await self._shared_wait():
                return
            await self._local.wait()
            if not self._health.up:
                return
            # Redis came back while this caller waited for its local start: the shared
            # budget does not count that start, so take a shared one instead (the
            # local one, given up, only makes the local pace stricter).

    async def _shared_wait(self) -> bool:
        """Wait for a start from Redis; False (at once) when Redis is away."""
        reserved = 0
        while self._health.try_redis():
            try:
                delay_us, reserved = await self._scripts.reserve(reserved)
            except REDIS_ERRORS as exc:
                self._health.failed(exc)
                return False
            self._health.answered()
            if delay_us <= 0:
                return True
            await async_sleep(delay_us / 1e6)
        return False

    async def pause(self, seconds: float) -> None:
        await self._local.pause(seconds)
        if not self._health.try_redis():
            return
        try:
            await self._scripts.pause(seconds)
        except REDIS_ERRORS as exc:
            self._health.failed(exc)
        else:
            self._health.answered()

    async def aclose(self) -> None:
        await self._scripts.aclose()
