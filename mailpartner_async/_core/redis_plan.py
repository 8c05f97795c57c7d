"""The shared budget in Redis, sans-I/O: the plan its pacers run with, as plain values.

:class:`RedisPlan` is what a :class:`~mailpartner_async.redis.RedisRateLimiter` hands
its pacers: the Redis URL (a :class:`~mailpartner_async._core.secrets.Secret`: it may
hold a password), the keys, the scripts' arguments and the local fallback's pace. It
holds no client: each pacer opens its own connection from it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Final

from .errors import ConfigurationError
from .secrets import Secret
from .settings import check_count, check_rate_limit

__all__ = ["RETRY_SECONDS", "SOCKET_TIMEOUT", "RedisPlan", "plan_redis"]

# Seconds between two tries to reach Redis again while it is away.
RETRY_SECONDS: Final = 2.0
# Seconds a Redis call may take before Redis counts as away.
SOCKET_TIMEOUT: Final = 1.0
_SCHEMES: Final = ("redis://", "rediss://", "unix://")


@dataclasses.dataclass(frozen=True, slots=True)
class RedisPlan:
    """What the pacers of one shared budget run with: plain values, no client.

    ``keys`` are the budget's keys in Redis: the next free start, the last
    ``rate_limit`` starts, and the pause (its last one). ``reserve_args`` are the
    reserving script's first arguments: ``rate_limit``, ``period`` and the margin
    between a start and the one ``rate_limit`` places before it, in microseconds.
    ``fallback_per_minute`` paces a client on its own while Redis is away (the local
    pacer counts minutes). ``repr`` shows no part of ``url``.

    Example::

        plan = plan_redis("redis://localhost:6379/0", 2000, "mailpartner", 60.0, None)
        assert plan.keys[0] == "{mailpartner}:next"
    """

    url: Secret
    key: str
    keys: tuple[str, str, str]
    rate_limit: int
    period: float
    fallback_rate_limit: int
    fallback_per_minute: int
    reserve_args: tuple[int, int, int]
    socket_timeout: float
    retry_seconds: float


def plan_redis(
    url: object,
    rate_limit: object,
    key: object,
    period: object,
    fallback_rate_limit: object,
) -> RedisPlan:
    """The plan of a budget, from a ``RedisRateLimiter``'s arguments, each checked.

    A value the limiter cannot use is a :class:`~mailpartner_async.ConfigurationError`.
    """
    url, key, seconds = _checked(url, key, period)
    limit = check_count("rate_limit", rate_limit, minimum=1)
    fallback = check_rate_limit(fallback_rate_limit)
    fallback = limit if fallback is None else fallback
    tag = "{" + key + "}"  # one hash tag: a Redis Cluster keeps the keys in one slot
    period_us = round(seconds * 1e6)
    # As in the client's own pacing, 0.5 s at 60 s, and never under 50 ms: the jitter
    # between a start and its arrival must not put rate_limit + 1 starts in one window
    # of the server.
    margin_us = min(500_000, max(period_us // 120, 50_000))
    return RedisPlan(
        url=Secret(url),
        key=key,
        keys=(f"{tag}:next", f"{tag}:starts", f"{tag}:paused_until"),
        rate_limit=limit,
        period=seconds,
        fallback_rate_limit=fallback,
        fallback_per_minute=_per_minute(fallback, seconds, margin_us),
        reserve_args=(limit, period_us, margin_us),
        socket_timeout=SOCKET_TIMEOUT,
        retry_seconds=RETRY_SECONDS,
    )


def _per_minute(fallback: int, period: float, margin_us: int) -> int:
    """The local pacer's rate for ``fallback`` a ``period``: it counts minutes."""
    if period == 60.0:
        return fallback
    # Spaced (period + margin) / fallback apart: no closed period holds more than fallback.
    return max(1, math.floor(fallback * 60.0 / (period + margin_us / 1e6)))


def _checked(url: object, key: object, period: object) -> tuple[str, str, float]:
    """``url``, ``key`` and ``period`` when the limiter can use them."""
    if not isinstance(url, str) or not url.startswith(_SCHEMES):
        raise ConfigurationError("url must be a redis://, rediss:// or unix:// URL")
    if not isinstance(key, str) or not key.strip():
        raise ConfigurationError(f"key must be a non-blank string, got {key!r}")
    if (
        isinstance(period, bool)
        or not isinstance(period, int | float)
        or not (0 < period < math.inf)
    ):
        raise ConfigurationError(f"period must be a positive number of seconds, got {period!r}")
    return url, key, float(period)
