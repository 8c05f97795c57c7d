"""Per-attempt deadlines: a cancel scope on the async side, a thread's published
deadline on the sync side (which the SDK's network streams clip every read to).

Transitional: the sync side is an emulation through thread-local state, to be
replaced by a deadline handed to the transport explicitly (issue 19, item 3).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import anyio

__all__ = ["AsyncDeadline", "Deadline", "deadline_remaining"]

_current = threading.local()


class AsyncDeadline:
    """``with AsyncDeadline(seconds) as deadline:`` cancels the block after ``seconds``
    (``None``: never); :attr:`expired` then says so. :meth:`check` is a no-op here:
    the cancel scope interrupts any wait."""

    __slots__ = ("_scope",)

    def __init__(self, seconds: float | None) -> None:
        self._scope = anyio.move_on_after(seconds if seconds is not None else math.inf)

    def __enter__(self) -> AsyncDeadline:
        self._scope.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> bool:
        return bool(self._scope.__exit__(*exc_info))

    @property
    def expired(self) -> bool:
        return self._scope.cancelled_caught

    def check(self) -> None:
        return None


class Deadline:
    """The thread's :class:`AsyncDeadline`: a blocking socket cannot be cancelled, so
    the block's deadline is published to the thread, and the SDK's network streams
    clip every read and write to what is left (:func:`deadline_remaining`).
    :meth:`check`, called between reads, ends the block once it is past."""

    __slots__ = ("_at", "_outer", "expired")

    def __init__(self, seconds: float | None) -> None:
        self._at = time.monotonic() + seconds if seconds is not None else None
        self._outer: float | None = None
        self.expired = False

    def __enter__(self) -> Deadline:
        self._outer = getattr(_current, "deadline", None)
        _current.deadline = self._at
        return self

    def __exit__(self, *exc_info: Any) -> bool:
        _current.deadline = self._outer
        if isinstance(exc_info[1], _DeadlinePassed):
            self.expired = True
            return True
        return False

    def check(self) -> None:
        if self._at is not None and time.monotonic() >= self._at:
            raise _DeadlinePassed


class _DeadlinePassed(Exception):
    """Ends a :class:`Deadline` block from :meth:`Deadline.check`."""


def deadline_remaining() -> float | None:
    """Seconds left before the calling thread's :class:`Deadline` (``None``: none)."""
    at: float | None = getattr(_current, "deadline", None)
    return None if at is None else at - time.monotonic()
