"""FakeClock: a settable, thread-safe clock to drive the fake's 5-minute rule in tests."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

__all__ = ["FakeClock", "check_aware"]


def check_aware(value: datetime, what: str) -> datetime:
    """``value`` if it is a timezone-aware ``datetime``; a clear error otherwise."""
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be an aware datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{what} must be timezone-aware (naive datetimes are ambiguous), got {value!r}; "
            "for example datetime(2030, 1, 1, 12, 0, tzinfo=UTC)"
        )
    return value


class FakeClock:
    """A clock that stands still until told to move; pass it as ``FakeMailPartner(clock=)``.

    Calling it returns the current (aware) time. ``advance`` moves it forward (or
    back, with a negative delta) and ``set`` jumps to a given time. Safe to share
    between threads.

    Example::

        clock = FakeClock(datetime(2030, 1, 1, 12, 0, tzinfo=UTC))
        fake = FakeMailPartner(clock=clock)
        message_id = fake.schedule(timedelta(minutes=10))
        clock.advance(timedelta(minutes=6))  # now 4 minutes before: code 6
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = check_aware(start, "start") if start is not None else datetime.now(UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        """The clock's current time (the same until moved)."""
        with self._lock:
            return self._now

    def __repr__(self) -> str:
        return f"FakeClock({self():%Y-%m-%dT%H:%M:%S.%f%z})"

    def advance(self, delta: timedelta | float) -> datetime:
        """Move the clock by ``delta`` (a ``timedelta`` or seconds) and return the new time.

        Example::

            clock.advance(timedelta(minutes=5))
            clock.advance(-30)  # back 30 seconds
        """
        if not isinstance(delta, timedelta):
            if isinstance(delta, bool) or not isinstance(delta, int | float):
                raise TypeError(f"delta must be a timedelta or seconds, got {delta!r}")
            delta = timedelta(seconds=delta)
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (an aware ``datetime``); a naive one is a ``ValueError``.

        Example::

            clock.set(datetime(2030, 1, 1, 12, 0, tzinfo=UTC))
        """
        check_aware(when, "when")
        with self._lock:
            self._now = when
