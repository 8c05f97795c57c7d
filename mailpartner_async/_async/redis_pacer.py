"""The pacer a RedisRateLimiter gives one client: the shared budget, else local pacing.

Needs the ``redis`` extra; only :mod:`mailpartner_async.redis` imports it.
"""

from __future__ import annotations

import logging
from typing import Protocol

from .._compat import async_sleep, async_thread_lock, monotonic
from .._core.redis_plan import RedisHealth, RedisPlan
from .pacer import AsyncPacer
from .redis_scripts import REDIS_ERRORS

__all__ = ["AsyncRedisPacer", "AsyncSharedBudget"]

logger = logging.getLogger("mailpartner_async")


class AsyncSharedBudget(Protocol):
    """What the pacer needs of Redis: the plan's scripts, each call raising one of
    ``REDIS_ERRORS`` when Redis is away (``AsyncRedisScripts``, or a stand-in)."""

    async def reserve(self, reserved: int) -> tuple[int, int]: ...

    async def pause(self, seconds: float) -> None: ...

    async def aclose(self) -> None: ...


class AsyncRedisPacer:
    """Waits for a start time handed out by Redis; paces locally while Redis is away.

    Each wait reserves a start in the shared log and sleeps until it; if a pause was
    set meanwhile (a 429 or ``Retry-After`` met by any client of the key), the start
    is given up and a new one taken after the pause. When a call to Redis fails, the
    wait falls back to a local pacer at the limiter's ``fallback_rate_limit``, and
    Redis is tried again at most every few seconds: a start is never refused. Both
    hand-overs move the starts already promised: a shared start is checked again at
    its time, so Redis gone sends it to the local pacer, and a local start whose
    wait saw Redis return is exchanged for a shared one. Each outage is logged once,
    as a WARNING on the ``mailpartner_async`` logger, and so is its end.
    """

    def __init__(self, plan: RedisPlan, budget: AsyncSharedBudget) -> None:
        self._plan = plan
        self._budget = budget
        self._health = RedisHealth(plan.retry_seconds)
        self._guard = async_thread_lock()
        self._local = AsyncPacer(plan.fallback_per_minute)

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
        while self._try_redis():
            try:
                delay_us, reserved = await self._budget.reserve(reserved)
            except REDIS_ERRORS as exc:
                self._failed(exc)
                return False
            self._answered()
            if delay_us <= 0:
                return True
            await async_sleep(delay_us / 1e6)
        return False

    async def pause(self, seconds: float) -> None:
        await self._local.pause(seconds)
        if not self._try_redis():
            return
        try:
            await self._budget.pause(seconds)
        except REDIS_ERRORS as exc:
            self._failed(exc)
        else:
            self._answered()

    async def aclose(self) -> None:
        await self._budget.aclose()

    def _try_redis(self) -> bool:
        with self._guard:
            return self._health.try_redis(monotonic())

    def _failed(self, exc: BaseException) -> None:
        with self._guard:
            started = self._health.failed(monotonic())
        if started:
            plan = self._plan
            logger.warning(
                "Redis rate limiter (key %r) unreachable (%s): pacing locally at %d "
                "requests per %g s until it is back",
                plan.key,
                type(exc).__name__,
                plan.fallback_rate_limit,
                plan.period,
            )

    def _answered(self) -> None:
        with self._guard:
            ended = self._health.answered()
        if ended:
            logger.warning(
                "Redis rate limiter (key %r) is back: pacing on the shared budget",
                self._plan.key,
            )
