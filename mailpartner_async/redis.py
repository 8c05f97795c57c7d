"""RedisRateLimiter: one rate limit shared by every client, in every process, through Redis.

Needs the ``redis`` extra (``pip install '.[redis]'`` in a clone of the repository:
the package is not on PyPI yet).

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

When Redis cannot be reached, each client paces itself at ``fallback_rate_limit``
(default ``rate_limit``) a period, logs one WARNING on the ``mailpartner_async``
logger, tries Redis again at most every few seconds, and returns to the shared budget
when it answers: a cancel never fails because Redis is away.
"""

from __future__ import annotations

import math

from ._core.errors import ConfigurationError
from ._core.settings import check_count, check_rate_limit

try:
    import redis  # noqa: F401 - fail here, with the extra's name, when it is missing
except ImportError as exc:  # pragma: no cover - the extra is installed in tests
    raise ImportError(
        "mailpartner_async.redis needs the redis extra: "
        "pip install '.[redis]' in a clone of the repository (not on PyPI yet)"
    ) from exc

from ._async.redis_pacer import AsyncRedisPacer
from ._sync.redis_pacer import RedisPacer

__all__ = ["RedisRateLimiter"]


class RedisRateLimiter:
    """A rate limit shared by every client given a limiter on the same Redis and ``key``.

    No more than ``rate_limit`` requests start in any ``period`` seconds (default 60)
    among all of them together, in any process on any machine; a 429 or a
    ``Retry-After`` met by one pauses all. Pass it as ``rate_limiter=`` to
    :class:`~mailpartner_async.AsyncMailPartner` (asyncio through ``redis.asyncio``;
    trio through a worker thread) or ``MailPartner`` (any number of threads); the
    client's own ``rate_limit`` is then unused. Every limiter sharing a ``key`` must
    be given the same ``rate_limit`` and ``period``.

    While Redis is away, each client paces itself at ``fallback_rate_limit`` a
    period (default ``rate_limit``; with N processes, ``rate_limit // N`` keeps even
    an outage under the cap), and returns to the shared budget once Redis answers.

    Example::

        limiter = RedisRateLimiter("redis://localhost:6379/0", rate_limit=2000)
        async with AsyncMailPartner(rate_limiter=limiter) as client:
            await client.cancel("300")

    The limiter holds no connection itself: each client's pacer opens its own and
    closes it with the client.
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
        _check_arguments(url, key, period)
        self.url = url
        self.rate_limit = check_count("rate_limit", rate_limit, minimum=1)
        self.key = key
        self.period = float(period)
        fallback = check_rate_limit(fallback_rate_limit)
        self.fallback_rate_limit = self.rate_limit if fallback is None else fallback
        tag = "{" + key + "}"
        self._keys = [f"{tag}:next", f"{tag}:starts", f"{tag}:paused_until"]
        period_us = round(self.period * 1e6)
        # As in the client's own pacing, 0.5 s at 60 s, and never under 50 ms: the
        # jitter between a start and its arrival must not put rate_limit + 1 starts
        # in one window of the server.
        margin_us = min(500_000, max(period_us // 120, 50_000))
        self._reserve_args = [self.rate_limit, period_us, margin_us]

    def __repr__(self) -> str:
        return (
            f"RedisRateLimiter(rate_limit={self.rate_limit}, key={self.key!r}, "
            f"period={self.period})"
        )

    def async_pacer(self) -> AsyncRedisPacer:
        """A pacer for one :class:`~mailpartner_async.AsyncMailPartner`."""
        return AsyncRedisPacer(self)

    def pacer(self) -> RedisPacer:
        """A pacer for one ``MailPartner``, shared by its threads."""
        return RedisPacer(self)

    def _fallback_per_minute(self) -> int:
        """The local pacer's rate: it counts minutes, so another period is scaled."""
        if self.period == 60.0:
            return self.fallback_rate_limit
        # Spaced (period + margin) / rate apart: no closed period holds more than rate.
        margin = self._reserve_args[2] / 1e6
        return max(1, math.floor(self.fallback_rate_limit * 60.0 / (self.period + margin)))


def _check_arguments(url: object, key: object, period: object) -> None:
    """Refuse what the constructor cannot use (the counts go through ``_config``)."""
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError("url must be a redis://, rediss:// or unix:// URL")
    if not isinstance(key, str) or not key.strip():
        raise ConfigurationError(f"key must be a non-blank string, got {key!r}")
    if (
        isinstance(period, bool)
        or not isinstance(period, int | float)
        or not (0 < period < math.inf)
    ):
        raise ConfigurationError(f"period must be a positive number of seconds, got {period!r}")
