"""The shared budget's two scripts on one redis-py client: run one, return its answer.

Nothing here waits for a start time: the pacer (``redis_pacer.py``) does. One client,
so one pool, serves every caller of one pacer (redis-py's sync pool is thread-safe: a
sync client's threads share it too). The scripts, their keys and their arguments come
from the plan (:mod:`mailpartner_async._core.redis_plan`).
Needs the ``redis`` extra; only :mod:`mailpartner_async.redis` imports it.
"""

# mypy: disable-error-code="unreachable"
# (the sync branch of the `if True:  # ASYNC` block)

from __future__ import annotations

import anyio
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

if True:  # ASYNC: redis-py's asyncio client
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
else:
    from redis import Redis
    from redis.retry import Retry

from .._core.redis_plan import (
    PAUSE,
    RESERVE,
    RedisPlan,
    Reservation,
    read_reservation,
)
from .._redis_calls import REDIS_ERRORS, call_within_deadline

__all__ = ["AsyncRedisScripts"]


class AsyncRedisScripts:
    """:data:`RESERVE` and :data:`PAUSE` of ``plan``, on a redis-py client of its Redis.

    No retry inside redis-py: a failed call counts as an outage at once, and the pacer
    falls back to local pacing instead of waiting on Redis. Building it opens nothing;
    connections open on the first call.
    """

    def __init__(self, plan: RedisPlan) -> None:
        self._plan = plan
        self._client = Redis.from_url(
            plan.url.reveal(),
            retry=Retry(NoBackoff(), 0),
            socket_timeout=plan.socket_timeout,
            socket_connect_timeout=plan.socket_timeout,
        )
        self._reserve = self._client.register_script(RESERVE)
        self._pause = self._client.register_script(PAUSE)

    async def reserve(self, args: list[int | str]) -> Reservation:
        """The checked answer of :data:`RESERVE` with ``args`` (``plan.reserve_call``)."""
        keys = list(self._plan.keys)
        try:
            reply = await self._within_deadline(self._reserve, keys, args)
            return read_reservation(reply, self._plan.max_delay_us)
        except REDIS_ERRORS:
            await self._drop_connections()
            raise

    async def pause(self, seconds: float) -> None:
        """Hold back every start of the key for ``seconds`` (a later pause wins)."""
        keys, args = self._plan.pause_call(seconds)
        try:
            await self._within_deadline(self._pause, keys, args)
        except REDIS_ERRORS:
            await self._drop_connections()
            raise

    async def _within_deadline(
        self, script: AsyncScript, keys: list[str], args: list[int | str] | list[int]
    ) -> object:
        """``script`` run, given up after the plan's ``call_deadline`` however its reply
        trickles in (redis-py's socket time-out bounds each read, not the call)."""
        deadline = self._plan.call_deadline
        if True:  # ASYNC
            with anyio.fail_after(deadline):
                return await script(keys=keys, args=args)
        else:
            pool = self._client.connection_pool
            return call_within_deadline(pool, deadline, lambda: script(keys=keys, args=args))

    async def _drop_connections(self) -> None:
        # The idle connections of the pool died with the server too: without this, the
        # calls right after a restart would take them, fail, and start a second outage.
        await self._client.connection_pool.disconnect(inuse_connections=False)

    async def aclose(self) -> None:
        await self._client.aclose()
