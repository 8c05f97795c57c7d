"""What a call to Redis raises, and a blocking call given up at its deadline.

Shared by the budget's scripts and the fleet rescue. The blocking call (their sync
twins', and the async ones' worker threads' under trio) is sync by nature (a thread's
read, a timer), so it is written once here rather than in ``_async/``. Needs the
``redis`` extra; only the redis modules import it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Final, TypeVar

from redis import ConnectionPool, RedisError

from ._core.redis_plan import RedisReplyError

__all__ = ["REDIS_ERRORS", "call_within_deadline"]

# What a call to Redis raises when Redis is away, too slow, or answers nonsense
# (TimeoutError, the deadline's, is an OSError).
REDIS_ERRORS: Final = (RedisError, OSError, RedisReplyError)

T = TypeVar("T")


def call_within_deadline(pool: ConnectionPool, deadline: float, call: Callable[[], T]) -> T:
    """``call()``, a blocking call on a connection of ``pool``, given up after
    ``deadline`` seconds however its reply trickles in (redis-py's socket time-out
    bounds each read, not the call): a :class:`TimeoutError` then.

    A blocking read cannot be cancelled: at the deadline a timer closes the pool's
    sockets, the idle ones and those in use (other threads' too), and that ends it.
    """
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        pool.disconnect(inuse_connections=True)

    watchdog = threading.Timer(deadline, expire)
    watchdog.start()
    try:
        return call()
    except Exception:
        # Whatever a read of a socket closed under it raises (redis-py may raise
        # ValueError on a closed file) is the deadline's doing.
        if expired.is_set():
            raise TimeoutError(f"no answer from Redis in {deadline:g} s") from None
        raise
    finally:
        watchdog.cancel()
