"""The ``rate_limiter=`` hook: what a pace shared beyond one client offers both clients.

A client asks its rate limiter for one pacer when it starts (the async client for an
:class:`AsyncPacing`, the sync one for a :class:`Pacing`), waits on it before every
attempt, pauses it on a 429 or a ``Retry-After``, and closes it with the client.
:class:`mailpartner_async.redis.RedisRateLimiter` is the one the SDK ships.

A pacer may also tell ``held_for()``: the seconds before it could give a start, at
the earliest, so that a batch makes no retry that would start past an id's cut-off.
It is optional (:func:`held_for`): a pacer without it is taken to hold nothing.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ._core.errors import ConfigurationError

__all__ = ["AsyncPacing", "Pacing", "RateLimiter", "check_rate_limiter", "held_for"]


class AsyncPacing(Protocol):
    """What the async client waits on before each attempt: its pacer, or a shared one."""

    async def wait(self) -> None: ...
    async def pause(self, seconds: float) -> None: ...
    async def aclose(self) -> None: ...


class Pacing(Protocol):
    def wait(self) -> None: ...
    def pause(self, seconds: float) -> None: ...
    def close(self) -> None: ...


@runtime_checkable
class RateLimiter(Protocol):
    """The ``rate_limiter=`` hook of both clients: a pace shared beyond one client.

    Each client asks it for one pacer when it starts (and again in a forked child),
    waits on it before every attempt, pauses it on a 429 or a ``Retry-After``, and
    closes it with the client. See :class:`mailpartner_async.redis.RedisRateLimiter`.
    """

    def async_pacer(self) -> AsyncPacing: ...
    def pacer(self) -> Pacing: ...


def check_rate_limiter(rate_limiter: object) -> RateLimiter | None:
    if rate_limiter is None or isinstance(rate_limiter, RateLimiter):
        return rate_limiter
    raise ConfigurationError(
        "rate_limiter must be a rate limiter with async_pacer() and pacer() "
        f"(such as mailpartner_async.redis.RedisRateLimiter) or None, got {rate_limiter!r}"
    )


def held_for(pacer: AsyncPacing | Pacing) -> float:
    """The seconds before ``pacer`` could give a start, at the earliest: its own
    ``held_for()`` (the SDK's pacers all have one), else 0 (a pacer of yours written
    before there was one)."""
    method = getattr(pacer, "held_for", None)
    return float(method()) if callable(method) else 0.0
