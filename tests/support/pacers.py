"""A rate limiter of a user's own, for both clients, written to the rate_limiter= hook
before pacers could tell ``held_for()``: it gives every start at once and counts them."""

from __future__ import annotations

__all__ = ["LimiterWithoutHeldFor"]


class _Starts:
    def __init__(self) -> None:
        self.waits = 0


class _AsyncPacer:
    def __init__(self, starts: _Starts) -> None:
        self._starts = starts

    async def wait(self) -> None:
        self._starts.waits += 1

    async def pause(self, seconds: float) -> None:
        pass

    async def aclose(self) -> None:
        pass


class _Pacer:
    def __init__(self, starts: _Starts) -> None:
        self._starts = starts

    def wait(self) -> None:
        self._starts.waits += 1

    def pause(self, seconds: float) -> None:
        pass

    def close(self) -> None:
        pass


class LimiterWithoutHeldFor:
    """:attr:`made` counts the starts its pacers gave (``made.waits``)."""

    def __init__(self) -> None:
        self.made = _Starts()

    def async_pacer(self) -> _AsyncPacer:
        return _AsyncPacer(self.made)

    def pacer(self) -> _Pacer:
        return _Pacer(self.made)
