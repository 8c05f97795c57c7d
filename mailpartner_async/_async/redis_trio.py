"""The async pacer's way to Redis on either loop: redis.asyncio on asyncio, and under
trio, which redis-py does not support, the sync scripts in a worker thread.

Async-only: a sync pacer has no loop to tell apart, and runs the sync scripts itself.
The sync scripts come in as a constructor (:class:`BlockingScripts`), so that this
module does not import the generated ``_sync`` tree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import anyio.to_thread

from .._core.redis_plan import RedisPlan, Reservation
from .loop_guard import on_asyncio
from .redis_scripts import AsyncRedisScripts

__all__ = ["AnyLoopRedisScripts", "BlockingScripts"]


class BlockingScripts(Protocol):
    """The sync scripts (``RedisScripts``, generated from :class:`AsyncRedisScripts`)."""

    def reserve(self, args: list[int | str]) -> Reservation: ...

    def pause(self, seconds: float) -> None: ...

    def close(self) -> None: ...


class AnyLoopRedisScripts:
    """:class:`AsyncRedisScripts` on asyncio; under trio, ``blocking(plan)`` in a thread.

    Each is built on the first call that needs it, inside the running loop, so nothing
    connects before a client's first request.
    """

    def __init__(self, plan: RedisPlan, blocking: Callable[[RedisPlan], BlockingScripts]) -> None:
        self._plan = plan
        self._blocking = blocking
        self._on_loop: AsyncRedisScripts | None = None
        self._in_thread: BlockingScripts | None = None

    def _loop_scripts(self) -> AsyncRedisScripts | None:
        """The scripts on the running loop; ``None`` under trio."""
        if not on_asyncio():
            return None
        if self._on_loop is None:
            self._on_loop = AsyncRedisScripts(self._plan)
        return self._on_loop

    def _thread_scripts(self) -> BlockingScripts:
        if self._in_thread is None:
            self._in_thread = self._blocking(self._plan)
        return self._in_thread

    async def reserve(self, args: list[int | str]) -> Reservation:
        """As :meth:`AsyncRedisScripts.reserve`."""
        scripts = self._loop_scripts()
        if scripts is not None:
            return await scripts.reserve(args)
        # The thread's scripts have their own deadline; this one frees the loop even if
        # the thread is slow to notice its own.
        with anyio.fail_after(self._plan.call_deadline + self._plan.socket_timeout):
            return await anyio.to_thread.run_sync(
                self._thread_scripts().reserve, args, abandon_on_cancel=True
            )

    async def pause(self, seconds: float) -> None:
        """As :meth:`AsyncRedisScripts.pause`."""
        scripts = self._loop_scripts()
        if scripts is not None:
            await scripts.pause(seconds)
            return
        with anyio.fail_after(self._plan.call_deadline + self._plan.socket_timeout):
            await anyio.to_thread.run_sync(
                self._thread_scripts().pause, seconds, abandon_on_cancel=True
            )

    async def aclose(self) -> None:
        on_loop, self._on_loop = self._on_loop, None
        in_thread, self._in_thread = self._in_thread, None
        if on_loop is not None:
            await on_loop.aclose()
        if in_thread is not None:
            in_thread.close()
