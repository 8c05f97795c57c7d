"""The fleet rescue's way to Redis: its scripts and a few reads, each within a deadline.

On asyncio, redis-py's asyncio client; under trio, which redis-py does not support,
the sync client in a worker thread (as the rate limiter's pacer does); the sync twin
calls the sync client itself. No retry inside redis-py: a failed call is an outage at
once, for the caller to handle. Needs the ``redis`` extra.
"""

# mypy: disable-error-code="unreachable"
# (the sync branch of the `if True:  # ASYNC` block)

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import anyio.to_thread
from redis import ConnectionPool as BlockingPool
from redis import Redis as BlockingRedis
from redis import RedisError
from redis.backoff import NoBackoff
from redis.retry import Retry as BlockingRetry

from .._core.errors import ConfigurationError, MailPartnerError
from .._core.redis_plan import CALL_DEADLINE, SOCKET_TIMEOUT, check_redis_url
from .._core.secrets import Secret
from .._redis_calls import call_within_deadline
from .loop_guard import AsyncLoopGuard, on_asyncio

if True:  # ASYNC: redis-py's asyncio client
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry

__all__ = ["AsyncRescueRedis", "usable_redis_url"]

Args = Sequence[str | int | float]


def usable_redis_url(url: object) -> str:
    """``url`` when redis-py can connect with it: a Redis URL (see
    :func:`~mailpartner_async._core.redis_plan.check_redis_url`) whose query options
    redis-py's connections take. Else a :class:`ConfigurationError` showing no part of
    the password. Nothing is opened: a connection is built, never connected."""
    url = check_redis_url(url)
    try:
        # An option redis-py does not know passes its parser and fails each call after.
        BlockingPool.from_url(url).make_connection()
    except (ValueError, RedisError) as exc:
        # redis-py's words name the option at fault (at most its value, never the
        # password's: that option is taken as it is).
        raise ConfigurationError(f"url is not a Redis URL redis-py can use: {exc}") from None
    except TypeError as exc:  # Python's words: the name of the keyword, no value
        raise ConfigurationError(f"url has a query option redis-py does not take ({exc})") from None
    return url


class _Blocking:
    """The sync client and its scripts; each call given up after the deadline (a
    blocking read cannot be cancelled: closing the pool's sockets ends it)."""

    def __init__(self, url: Secret, texts: Mapping[str, str]) -> None:
        self.client = BlockingRedis.from_url(
            url.reveal(),
            retry=BlockingRetry(NoBackoff(), 0),
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
        )
        self.scripts = {name: self.client.register_script(text) for name, text in texts.items()}

    def script(self, name: str, keys: Sequence[str], args: Args) -> object:
        return self._within_deadline(lambda: self.scripts[name](keys=keys, args=args))

    def command(self, *args: Any) -> object:
        return self._within_deadline(lambda: self.client.execute_command(*args))  # type: ignore[no-untyped-call]

    def _within_deadline(self, call: Any) -> object:
        pool = self.client.connection_pool
        try:
            return call_within_deadline(pool, CALL_DEADLINE, call)
        except Exception:
            # The idle connections died with the server too: drop them (after the
            # deadline, its timer has closed them all already).
            pool.disconnect(inuse_connections=False)
            raise

    def close(self) -> None:
        self.client.close()


if True:  # ASYNC

    class _OnLoop:
        """redis-py's asyncio client and its scripts, bound to one asyncio loop."""

        def __init__(self, url: Secret, texts: Mapping[str, str]) -> None:
            self.client = Redis.from_url(
                url.reveal(),
                retry=Retry(NoBackoff(), 0),
                socket_timeout=SOCKET_TIMEOUT,
                socket_connect_timeout=SOCKET_TIMEOUT,
            )
            self.scripts = {name: self.client.register_script(text) for name, text in texts.items()}

        async def within_deadline(self, call: Any) -> object:
            try:
                with anyio.fail_after(CALL_DEADLINE):
                    return await call()
            except Exception:
                # The idle connections died with the server too: drop them.
                await self.client.connection_pool.disconnect(inuse_connections=False)
                raise


class AsyncRescueRedis:
    """The named Lua ``texts`` and raw commands, on the Redis at ``url``. Building it
    opens nothing; connections open on the first call."""

    def __init__(self, url: Secret, texts: Mapping[str, str]) -> None:
        self._url = url
        self._texts = dict(texts)
        self._blocking: _Blocking | None = None
        if True:  # ASYNC
            self._on_loop: _OnLoop | None = None
            self._loop = AsyncLoopGuard()

    def _thread_client(self) -> _Blocking:
        if self._blocking is None:
            self._blocking = _Blocking(self._url, self._texts)
        return self._blocking

    async def script(self, name: str, keys: Sequence[str], args: Args) -> object:
        """The raw reply of the script ``name`` (unchecked: the caller reads it)."""
        if True:  # ASYNC
            if not on_asyncio():
                return await _in_thread(self._thread_client().script, name, keys, args)
            loop = self._loop_client()
            return await loop.within_deadline(
                lambda: loop.scripts[name](keys=list(keys), args=list(args))
            )
        return self._thread_client().script(name, keys, args)

    async def command(self, *args: Any) -> object:
        """The raw reply of one command (``ZRANGE``, ``HSCAN``, ``DEL``...)."""
        if True:  # ASYNC
            if not on_asyncio():
                return await _in_thread(self._thread_client().command, *args)
            loop = self._loop_client()
            return await loop.within_deadline(
                lambda: loop.client.execute_command(*args)  # type: ignore[no-untyped-call]
            )
        return self._thread_client().command(*args)

    if True:  # ASYNC

        def _loop_client(self) -> _OnLoop:
            if self._on_loop is None:
                self._on_loop = _OnLoop(self._url, self._texts)
                self._loop = AsyncLoopGuard()  # a new client: on the running loop
            elif self._loop.foreign():
                # Its connections belong to the loop it first ran on, maybe closed.
                raise MailPartnerError(
                    "this rescue was first used in another event loop; its Redis "
                    "connections cannot move between loops: open one rescue per event "
                    "loop (for example inside the asyncio.run), or aclose() it first"
                )
            self._loop.check()
            return self._on_loop

    async def aclose(self) -> None:
        blocking, self._blocking = self._blocking, None
        if blocking is not None:
            blocking.close()
        if True:  # ASYNC
            on_loop, self._on_loop = self._on_loop, None
            if on_loop is not None and not self._loop.foreign():
                await on_loop.client.aclose()


if True:  # ASYNC

    async def _in_thread(func: Any, *args: Any) -> object:
        """``func(*args)`` in a worker thread; its own deadline ends it, and this one
        frees the loop even if the thread is slow to notice."""
        with anyio.fail_after(CALL_DEADLINE + SOCKET_TIMEOUT):
            return await anyio.to_thread.run_sync(lambda: func(*args), abandon_on_cancel=True)
