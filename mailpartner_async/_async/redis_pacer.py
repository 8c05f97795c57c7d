"""The pacer a RedisRateLimiter gives one client: the shared budget, else local pacing.

Needs the ``redis`` extra; only :mod:`mailpartner_async.redis` imports it.
"""

from __future__ import annotations

import collections
import logging
import uuid
from typing import Protocol

from .._compat import async_sleep, async_thread_lock, monotonic
from .._core.redis_plan import (
    MAX_CHECKS_PER_START,
    WIPED,
    RedisHealth,
    RedisPlan,
    RedisReplyError,
    Reservation,
)
from .._redis_calls import REDIS_ERRORS
from .pacer import AsyncPacer

__all__ = ["AsyncRedisPacer", "AsyncSharedBudget"]

logger = logging.getLogger("mailpartner_async")


class AsyncSharedBudget(Protocol):
    """What the pacer needs of Redis: the plan's scripts, each call raising one of
    ``REDIS_ERRORS`` when Redis is away or answers nonsense (``AsyncRedisScripts``,
    or a stand-in)."""

    async def reserve(self, args: list[int | str]) -> Reservation: ...

    async def pause(self, seconds: float) -> None: ...

    async def aclose(self) -> None: ...


class AsyncRedisPacer:
    """Waits for a start time handed out by Redis; paces locally while Redis is away.

    Each wait reserves a start in the shared log and sleeps until it; the start is
    checked again at its time: if a pause was set meanwhile (a 429 or ``Retry-After``
    met by any client of the key), or if the log no longer holds it (Redis was wiped
    or restarted), a new one is taken. When a call to Redis fails, or its answer is
    not one the script gives, the wait falls back to a local pacer at this member's
    share of the fleet (``rate_limit`` divided by the members whose heartbeat Redis
    saw in the last period), or at ``fallback_rate_limit`` when one was given, and
    Redis is tried again every few seconds: a start is never refused. On Redis's
    return the starts made meanwhile join the shared log, and for one probe interval
    the member keeps its local pace too, so that members not back yet still have
    their share. Each outage is logged once, as a WARNING on the ``mailpartner_async``
    logger, and so is its end, and a wiped budget.
    """

    def __init__(self, plan: RedisPlan, budget: AsyncSharedBudget) -> None:
        self._plan = plan
        self._budget = budget
        self._health = RedisHealth(plan.retry_seconds)
        self._guard = async_thread_lock()
        self._member = uuid.uuid4().hex
        self._members = 1
        self._local = AsyncPacer(plan.local_per_minute(1))
        self._last_seen = -float("inf")
        self._away_starts: collections.deque[float] = collections.deque()
        self._settle_until = -float("inf")
        self._spacing = plan.period / plan.rate_limit

    async def wait(self) -> None:
        while True:
            if monotonic() < self._settle_until:
                await self._local.wait()  # just back: members still away keep their share
            if await self._shared_wait():
                self._started(away=False)
                return
            await self._local.wait()
            if not self._health.up:
                self._started(away=True)
                return
            # Redis came back while this caller waited for its local start: the shared
            # budget does not count that start, so take a shared one instead (the
            # local one, given up, only makes the local pace stricter).

    async def _shared_wait(self) -> bool:
        """Wait for a start from Redis; False (at once) when Redis is away."""
        reserved = checks = 0
        while self._try_redis():
            try:
                if checks > MAX_CHECKS_PER_START:
                    raise RedisReplyError(f"start {reserved} still not due after {checks} checks")
                answer = await self._budget.reserve(self._reserve_call(reserved))
            except REDIS_ERRORS as exc:
                self._failed(exc)
                return False
            self._answered(answer)
            if answer.start:
                self._seen()
            checks = checks + 1 if answer.start and answer.start == reserved else 1
            reserved = answer.start
            if reserved and answer.delay_us == 0:
                return True
            delay = answer.delay_us / 1e6
            # The next period is fully booked: ask again no sooner than one spacing on.
            await async_sleep(delay if reserved else max(delay, self._spacing))
        return False

    def _reserve_call(self, reserved: int) -> list[int | str]:
        now = monotonic()
        with self._guard:
            away = self._away_starts if not self._health.up else ()
            starts = tuple(round((now - t) * 1e6) for t in away if now - t < self._plan.period)
        _, args = self._plan.reserve_call(
            reserved,
            alive=now - self._last_seen < self._plan.period,
            member=self._member,
            away_starts=starts,
        )
        return args

    def _seen(self) -> None:
        """The budget answered with a start: its keys exist for two periods."""
        with self._guard:
            self._last_seen = monotonic()

    def _started(self, *, away: bool) -> None:
        now = monotonic()
        with self._guard:
            self._last_seen = now
            if away:
                self._away_starts.append(now)
                while self._away_starts and now - self._away_starts[0] > self._plan.period:
                    self._away_starts.popleft()

    def held_for(self) -> float:
        """Seconds before a start could come, at the earliest, as far as this member
        knows without asking Redis: its local pace while Redis is away (or just back),
        else the pauses it set. The shared budget's next start is not asked for (a
        round trip to Redis for every retry); ``wait`` may still start later."""
        local = self._local
        now = monotonic()
        if self._health.up and now >= self._settle_until:
            return max(0.0, local.schedule.paused_until - now)
        return local.held_for()

    async def pause(self, seconds: float) -> None:
        await self._local.pause(seconds)
        if not self._try_redis():
            return
        try:
            await self._budget.pause(seconds)
        except REDIS_ERRORS as exc:
            self._failed(exc)
        else:
            self._back()

    async def aclose(self) -> None:
        await self._budget.aclose()

    def _try_redis(self) -> bool:
        with self._guard:
            return self._health.try_redis(monotonic())

    def _failed(self, exc: BaseException) -> None:
        now = monotonic()
        with self._guard:
            started = self._health.failed(now)
            if started:
                self._away_starts.clear()
                share = self._plan.local_per_minute(self._members)
                self._local = AsyncPacer(share)
                # Its first start one spacing on: the shared starts just made count.
                self._local.schedule.pause_until(now + 60.0 / share)
        if started:
            plan = self._plan
            logger.warning(
                "Redis rate limiter (key %r) unreachable (%s): pacing locally at %d "
                "requests per %g s (of %d members) until it is back",
                plan.key,
                f"{type(exc).__name__}: {exc}"
                if isinstance(exc, RedisReplyError)
                else type(exc).__name__,
                plan.local_rate_limit(self._members),
                plan.period,
                self._members,
            )

    def _answered(self, answer: Reservation) -> None:
        with self._guard:
            self._members = answer.members
        if answer.flags & WIPED:
            logger.warning(
                "Redis rate limiter (key %r): the budget's keys were gone (a FLUSHALL or "
                "a restart without persistence); the last period counted as full",
                self._plan.key,
            )
        self._back()

    def _back(self) -> None:
        with self._guard:
            ended = self._health.answered()
            if ended:
                self._away_starts.clear()
                self._settle_until = monotonic() + self._plan.retry_seconds
        if ended:
            logger.warning(
                "Redis rate limiter (key %r) is back: pacing on the shared budget",
                self._plan.key,
            )
