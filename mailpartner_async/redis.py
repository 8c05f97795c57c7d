"""RedisRateLimiter: one rate limit shared by every client, in every process, through Redis;
AsyncRedisRescue and RedisRescue: one rescue shared by a fleet of workers (see
``mailpartner_async._async.redis_rescue``).

Needs the ``redis`` extra (``pip install -e '.[redis]'`` in a clone of the repository:
the package is not on PyPI yet); without it, importing this module raises a
``ConfigurationError`` (an ``ImportError`` too) saying so.

The budget lives in Redis and is spent by one Lua script, run atomically by the
server (``EVALSHA``) and timed by the server's own clock (``TIME``), so clients on
machines whose clocks disagree still share it exactly. The script hands out *start
times*, as the client's own pacing does (:mod:`mailpartner_async._core.pacing`): starts
are spaced ``period / rate_limit`` apart and, as a hard bound, a start never comes
before the one ``rate_limit`` places earlier is more than ``period`` old (plus a small
margin). The caller sleeps until its start; if a pause was set meanwhile (a 429 or a
``Retry-After`` seen by any client), it takes a new place after the pause.

Keys, for ``key="mailpartner"`` (one hash tag, so a Redis Cluster keeps them in one
slot): ``{mailpartner}:next`` (the next free start), ``{mailpartner}:starts`` (the
last ``rate_limit`` starts) and ``{mailpartner}:paused_until``; all expire on their
own when the fleet stops.

Each pacer also keeps a heartbeat in ``{mailpartner}:members`` (a sorted set, one
member per pacer), so that every member knows the fleet's size.

When Redis cannot be reached, answers what the scripts never return, or takes longer
than its deadline, each client paces itself at its share of the fleet
(``rate_limit`` divided by the members seen in the last period; ``fallback_rate_limit``
overrides it), logs one WARNING on the ``mailpartner_async`` logger, tries Redis
again every few seconds (a twentieth of the period, at most 2 s), and returns to the
shared budget when it answers: a cancel never fails because Redis is away. A Redis
wiped while the fleet runs (``FLUSHALL``, a restart without persistence) is detected:
one WARNING, start times it had handed out are taken again, and the last period is
counted as full, so no window holds more than ``rate_limit`` shared starts.
"""

from __future__ import annotations

from ._core.redis_plan import RedisPlan, plan_redis
from ._extras import missing_extra

try:
    import redis  # noqa: F401 - fail here, with the extra's name, when it is missing
except ImportError as exc:  # pragma: no cover - the extra is installed in tests
    raise missing_extra("mailpartner_async.redis", "redis") from exc

from ._async.redis_pacer import AsyncRedisPacer
from ._async.redis_rescue import AsyncRedisRescue
from ._async.redis_trio import AnyLoopRedisScripts
from ._async.rescue_redis import usable_redis_url
from ._core.redis_rescue import RedisUnavailableError, RescueStatus
from ._sync.redis_pacer import RedisPacer
from ._sync.redis_rescue import RedisRescue
from ._sync.redis_scripts import RedisScripts

__all__ = [
    "AsyncRedisRescue",
    "RedisRateLimiter",
    "RedisRescue",
    "RedisUnavailableError",
    "RescueStatus",
]


class RedisRateLimiter:
    """A rate limit shared by every client given a limiter on the same Redis and ``key``.

    No more than ``rate_limit`` requests start in any ``period`` seconds (default 60)
    among all of them together, in any process on any machine; a 429 or a
    ``Retry-After`` met by one pauses all. Pass it as ``rate_limiter=`` to
    :class:`~mailpartner_async.AsyncMailPartner` (asyncio through ``redis.asyncio``;
    trio through a worker thread) or ``MailPartner`` (any number of threads); the
    client's own ``rate_limit`` is then unused. Every limiter sharing a ``key`` must
    be given the same ``rate_limit`` and ``period``.

    While Redis is away, each client paces itself at its share of the fleet: the
    limiters' heartbeats tell it how many members Redis saw in the last period, and
    it takes ``rate_limit`` divided by that; ``fallback_rate_limit``, when given, is
    its pace instead. It returns to the shared budget once Redis answers. The URL is
    checked here: one redis-py cannot use is a ``ConfigurationError``.

    Example::

        limiter = RedisRateLimiter("redis://localhost:6379/0", rate_limit=2000)
        async with AsyncMailPartner(rate_limiter=limiter) as client:
            await client.cancel("300")

    The limiter holds no connection itself: each client's pacer opens its own and
    closes it with the client. Its ``repr`` never shows the URL, which may hold a
    password.
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
        self._plan: RedisPlan = plan_redis(url, rate_limit, key, period, fallback_rate_limit)
        usable_redis_url(self._plan.url.reveal())

    @property
    def url(self) -> str:
        """The Redis URL, as given."""
        return self._plan.url.reveal()

    @property
    def rate_limit(self) -> int:
        """Requests that may start in any ``period`` seconds, among all clients."""
        return self._plan.rate_limit

    @property
    def key(self) -> str:
        """The shared budget's name: limiters with the same ``key`` share one budget."""
        return self._plan.key

    @property
    def period(self) -> float:
        """The window of ``rate_limit``, in seconds."""
        return self._plan.period

    @property
    def fallback_rate_limit(self) -> int | None:
        """Each client's own pace, per ``period``, while Redis is away (``None``: its
        share of the fleet)."""
        return self._plan.fallback_rate_limit

    def __repr__(self) -> str:
        return (
            f"RedisRateLimiter(rate_limit={self.rate_limit}, key={self.key!r}, "
            f"period={self.period})"
        )

    def async_pacer(self) -> AsyncRedisPacer:
        """A pacer for one :class:`~mailpartner_async.AsyncMailPartner`."""
        return AsyncRedisPacer(self._plan, AnyLoopRedisScripts(self._plan, RedisScripts))

    def pacer(self) -> RedisPacer:
        """A pacer for one ``MailPartner``, shared by its threads."""
        return RedisPacer(self._plan, RedisScripts(self._plan))
