"""Sans-I/O pacing: when may the next request start, under a per-minute cap.

``RateSchedule`` hands out start times. Requests are spaced evenly (``60 / limit``
seconds apart) and, as a hard bound, a request never starts until the one ``limit``
places before it is more than 60 seconds old: no 60-second window ever holds more
than ``limit`` starts, whatever the timing of the callers. A pause (after a 429
or a ``Retry-After``) holds back every later start of the same schedule.
"""

from __future__ import annotations

import collections
import math
from typing import Final, Protocol, runtime_checkable

from .errors import ConfigurationError

__all__ = [
    "WINDOW_SECONDS",
    "AsyncPacing",
    "Pacing",
    "RateLimiter",
    "RateSchedule",
    "check_rate_limiter",
]

WINDOW_SECONDS: Final = 60.0
# A start exactly one window after the start ``limit`` places before it would let a
# closed 60 s interval hold limit + 1 starts. The margin keeps the bound strict even
# when the network delays one request more than another (measured: with 1 ms, a
# 10,000-id batch at 2000 a minute met four 429s from a sliding-window server).
_MARGIN: Final = 0.5
# Past this the exact window log costs more memory than it is worth: slightly wider
# spacing alone then bounds every window.
_MAX_LOGGED: Final = 100_000


class RateSchedule:
    """Start times for requests under ``per_minute`` (``None``: no cap, pauses only).

    Not thread-safe: callers serialise ``reserve`` (the async client runs it without
    an ``await`` in between, the sync client under a lock).
    """

    __slots__ = ("_interval", "_next", "_recent", "paused_until", "per_minute")

    def __init__(self, per_minute: int | None) -> None:
        self.per_minute = per_minute
        self._interval = WINDOW_SECONDS / per_minute if per_minute else 0.0
        if per_minute and per_minute > _MAX_LOGGED:
            # No window log this large: spacing alone must keep any closed window
            # to ``per_minute`` starts.
            self._interval = (WINDOW_SECONDS + _MARGIN) / per_minute
        self._recent: collections.deque[float] | None = (
            collections.deque(maxlen=per_minute)
            if per_minute and per_minute <= _MAX_LOGGED
            else None
        )
        self._next = -math.inf
        self.paused_until = -math.inf

    def reserve(self, now: float) -> float:
        """Claim the next start time, at or after ``now``; the caller waits until then."""
        start = max(now, self._next, self.paused_until)
        recent = self._recent
        if recent is not None and len(recent) == recent.maxlen:
            start = max(start, recent[0] + WINDOW_SECONDS + _MARGIN)
        self._next = start + self._interval
        if recent is not None:
            recent.append(start)
        return start

    def confirm(self, reserved: float, now: float) -> float:
        """The start for a caller who reserved ``reserved`` and woke at ``now``.

        Unchanged, unless a pause set after the reservation covers it: then the
        caller takes a new place in the queue, after the pause. Reusing the old
        times would start every such caller at the pause's end at once, and the
        window log, which holds the times handed out, would not see that burst; the
        abandoned time stays in the log, which only makes the bound stricter.
        """
        if self.paused_until > reserved:
            return self.reserve(now)
        return reserved

    def pause_until(self, when: float) -> None:
        """Hold back every start until ``when`` (a later pause wins)."""
        self.paused_until = max(self.paused_until, when)


# --- what a client waits on: its own pacer, or one shared by a rate limiter -----------


class AsyncPacing(Protocol):
    """What the async client needs of a pacer: :class:`AsyncPacer`, or a shared one."""

    async def wait(self) -> None:
        """Return once the next request may start."""

    async def pause(self, seconds: float) -> None:
        """Hold back every start (of everyone sharing the pace) for ``seconds``."""

    async def aclose(self) -> None:
        """Release what the pacer holds (connections); called when the client closes."""


class Pacing(Protocol):
    """The sync twin of :class:`AsyncPacing`: :class:`Pacer`, or a shared one."""

    def wait(self) -> None:
        """Return once the next request may start."""

    def pause(self, seconds: float) -> None:
        """Hold back every start (of everyone sharing the pace) for ``seconds``."""

    def close(self) -> None:
        """Release what the pacer holds (connections); called when the client closes."""


@runtime_checkable
class RateLimiter(Protocol):
    """The ``rate_limiter=`` hook of both clients: a pace shared beyond one client.

    Each client asks it for one pacer when it starts (and again in a forked
    child): :meth:`async_pacer` for :class:`AsyncMailPartner`, :meth:`pacer` for
    ``MailPartner``. The client waits on that pacer before every attempt, pauses it
    on a 429 or a ``Retry-After``, and closes it with the client; its own
    ``rate_limit`` pacing is then unused. See
    :class:`mailpartner_async.redis.RedisRateLimiter`.
    """

    def async_pacer(self) -> AsyncPacing:
        """A new pacer for one async client."""
        ...

    def pacer(self) -> Pacing:
        """A new pacer for one sync client, safe to share between its threads."""
        ...


def check_rate_limiter(rate_limiter: object) -> RateLimiter | None:
    """A client's ``rate_limiter=``: ``None``, or an object with the :class:`RateLimiter` hooks."""
    if rate_limiter is None or isinstance(rate_limiter, RateLimiter):
        return rate_limiter
    raise ConfigurationError(
        "rate_limiter must be a rate limiter with async_pacer() and pacer() "
        f"(such as mailpartner_async.redis.RedisRateLimiter) or None, got {rate_limiter!r}"
    )
