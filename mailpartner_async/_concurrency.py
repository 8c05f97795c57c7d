"""Paired concurrency primitives: the async one and its thread-safe sync twin.

The async client uses the ``Async*`` names and ``async_sleep``; the sync client is
generated from it by renaming them to their twins here, so both keep one shape.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

import anyio
import anyio.lowlevel

from ._exceptions import ConfigurationError, MailPartnerError
from ._pacing import RateSchedule

__all__ = [
    "AsyncLimiter",
    "AsyncLoopGuard",
    "AsyncPacer",
    "Limiter",
    "LoopGuard",
    "Pacer",
    "async_sleep",
    "sleep",
]


async def async_sleep(seconds: float) -> None:
    """Sleep without blocking the event loop (asyncio or trio)."""
    await anyio.sleep(seconds)


def sleep(seconds: float) -> None:
    """Block the calling thread."""
    time.sleep(seconds)


class AsyncLoopGuard:
    """Remembers the event loop a client first ran on and refuses any other.

    An httpx connection pool belongs to one event loop; used from another it hangs
    or fails obscurely, so the client fails first, with a clear message.
    """

    __slots__ = ("_token", "asyncio_only")

    def __init__(self) -> None:
        self._token: object = None
        self.asyncio_only = False

    def check(self) -> None:
        token = anyio.lowlevel.current_token()
        if self.asyncio_only and not token.backend_class.__module__.endswith("_asyncio"):
            raise ConfigurationError(
                "transport='aiohttp' runs on asyncio only; use the default httpx transport"
            )
        if self._token is None:
            self._token = token
        elif token != self._token:
            raise MailPartnerError(
                "this client was first used in another event loop; an HTTP connection "
                "pool cannot move between loops: create one client per event loop "
                "(for example in your app's lifespan)"
            )


class LoopGuard:
    """The sync twin: a sync client belongs to no event loop."""

    __slots__ = ("asyncio_only",)

    def __init__(self) -> None:
        self.asyncio_only = False

    def check(self) -> None:
        return None


class AsyncLimiter:
    """At most ``limit`` holders at once, FIFO; bound to the loop of its first use."""

    __slots__ = ("_limit", "_semaphore")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._semaphore: anyio.Semaphore | None = None

    async def __aenter__(self) -> None:
        semaphore = self._semaphore
        if semaphore is None:
            semaphore = self._semaphore = anyio.Semaphore(self._limit, fast_acquire=True)
        await semaphore.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._semaphore is not None
        self._semaphore.release()


class Limiter:
    """The thread-safe twin of :class:`AsyncLimiter`."""

    __slots__ = ("_semaphore",)

    def __init__(self, limit: int) -> None:
        self._semaphore = threading.BoundedSemaphore(limit)

    def __enter__(self) -> None:
        self._semaphore.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._semaphore.release()


class AsyncPacer:
    """Waits for a start time from a shared :class:`RateSchedule`.

    A pause set by any caller (a 429, a ``Retry-After``) holds back every caller
    that has not started yet, including those already waiting for their turn.
    """

    __slots__ = ("schedule",)

    def __init__(self, per_minute: int | None) -> None:
        self.schedule = RateSchedule(per_minute)

    async def wait(self) -> None:
        schedule = self.schedule
        now = time.monotonic()
        start = schedule.reserve(now)
        while start > now:
            await anyio.sleep(start - now)
            now = time.monotonic()
            start = schedule.paused_until

    def pause(self, seconds: float) -> None:
        self.schedule.pause_until(time.monotonic() + seconds)


class Pacer:
    """The thread-safe twin of :class:`AsyncPacer`."""

    __slots__ = ("_lock", "schedule")

    def __init__(self, per_minute: int | None) -> None:
        self.schedule = RateSchedule(per_minute)
        self._lock = threading.Lock()

    def wait(self) -> None:
        schedule = self.schedule
        now = time.monotonic()
        with self._lock:
            start = schedule.reserve(now)
        while start > now:
            time.sleep(start - now)
            now = time.monotonic()
            start = schedule.paused_until

    def pause(self, seconds: float) -> None:
        with self._lock:
            self.schedule.pause_until(time.monotonic() + seconds)
