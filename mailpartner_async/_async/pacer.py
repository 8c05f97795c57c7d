"""The client's own pacer: waits for a start time from a :class:`RateSchedule`."""

from __future__ import annotations

from .._compat import async_sleep, async_thread_lock, monotonic
from .._core.pacing import RateSchedule

__all__ = ["AsyncPacer"]


class AsyncPacer:
    """Waits for a start time from a shared :class:`RateSchedule`.

    A pause set by any caller (a 429, a ``Retry-After``) holds back every caller
    that has not started yet, including those already waiting for their turn. The
    schedule is guarded for the threads of a sync client; the tasks of one event
    loop need no guard.
    """

    __slots__ = ("_guard", "schedule")

    def __init__(self, per_minute: int | None) -> None:
        self.schedule = RateSchedule(per_minute)
        self._guard = async_thread_lock()

    async def wait(self) -> None:
        schedule = self.schedule
        now = monotonic()
        with self._guard:
            start = schedule.reserve(now)
        while start > now:
            await async_sleep(start - now)
            now = monotonic()
            with self._guard:
                start = schedule.confirm(start, now)

    def held_for(self) -> float:
        """Seconds before a start could come, at the earliest, claiming none (0 when
        one could start now): a later wait never starts sooner."""
        now = monotonic()
        with self._guard:
            return max(0.0, self.schedule.earliest(now) - now)

    async def pause(self, seconds: float) -> None:
        with self._guard:
            self.schedule.pause_until(monotonic() + seconds)

    async def aclose(self) -> None:
        return None
