"""A disk that fills and a clock that breaks: the bookkeeping failures a batch must
survive without losing an id, for the failure tests and the failure properties."""

from __future__ import annotations

import contextlib
import resource
import signal
from collections.abc import Iterator
from datetime import UTC, datetime

__all__ = ["BrokenClock", "disk_full_at"]


@contextlib.contextmanager
def disk_full_at(size: int) -> Iterator[None]:
    """Writes past ``size`` bytes of any file fail (EFBIG) instead of killing us, for
    the block only: whatever the test runner writes after it (its report, to a log
    file maybe larger than ``size``) is written as usual."""
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


class BrokenClock:
    """A clock that answers ``good`` times, then raises (``failure="raises"``) or turns
    naive (any other ``failure``)."""

    def __init__(self, good: int, failure: str) -> None:
        self.left = good
        self.failure = failure

    def __call__(self) -> datetime:
        self.left -= 1
        if self.left >= 0:
            return datetime.now(UTC)
        if self.failure == "raises":
            raise RuntimeError("the clock's source is gone")
        return datetime.now()
