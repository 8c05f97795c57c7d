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
from typing import Final

__all__ = ["WINDOW_SECONDS", "RateSchedule"]

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

    def earliest(self, now: float) -> float:
        """The start a ``reserve`` at ``now`` would be given, claiming nothing.

        It never moves earlier as ``now`` and the reservations go on, so it bounds
        from below when any later reservation can start.
        """
        start = max(now, self._next, self.paused_until)
        recent = self._recent
        if recent is not None and len(recent) == recent.maxlen:
            start = max(start, recent[0] + WINDOW_SECONDS + _MARGIN)
        return start

    def reserve(self, now: float) -> float:
        """Claim the next start time, at or after ``now``; the caller waits until then."""
        start = self.earliest(now)
        recent = self._recent
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
