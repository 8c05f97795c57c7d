"""The too-late skip's clock, checked against the server's: a fast local clock skips nothing.

The batch spends no request on a message already inside its last 5 minutes, by this
machine's clock. A clock minutes fast would skip messages still in reach, so the
``cancel`` command gives the batch a :class:`ServerClock`:

- Until the first answer arrives, it skips nothing: the first ids (at most the
  concurrency) are asked, and the provider's own answer (code 6) says which are late.
  No probe is sent: the API's one endpoint cancels, and every request counts
  against the 2,000 a minute.
- Each answer's ``Date`` header (read with :func:`email.utils.parsedate_to_datetime`)
  gives the server's time, to the second. When this machine's clock is more than
  :data:`SKEW_WARNING` ahead of it or behind it, one warning line says so, and from
  then on the skip keeps a margin of the largest difference seen: it decides by
  ``now - margin``, so a message is skipped only when it is too late by both clocks.
- An answer without a ``Date`` header leaves the local clock trusted.

The skew measured includes the request's time in flight (the server stamps its
answer before it is received), which only widens the margin.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Final

from .. import CancelOutcome

__all__ = ["SKEW_WARNING", "ServerClock", "skew_warning"]

SKEW_WARNING: Final = timedelta(seconds=30)
_UNKNOWN: Final = timedelta(days=1)  # before any answer: no message is skipped


class ServerClock:
    """``now`` (default: this machine's, in UTC), less the margin the server's clock asks."""

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self._now = now or (lambda: datetime.now(UTC))
        self.margin: timedelta | None = None  # None: no answer read yet
        self.skew = timedelta()  # this machine's clock minus the server's, the largest seen
        self._warned = False

    def __call__(self) -> datetime:
        return self._now() - (_UNKNOWN if self.margin is None else self.margin)

    def observe(self, outcome: CancelOutcome) -> str | None:
        """Read the server's clock off ``outcome``'s answer; the warning to print, once."""
        response = outcome.result.response if outcome.result is not None else None
        if response is None and outcome.error is not None:
            response = outcome.error.response
        if response is None:
            return None  # decided here (too late, not sent): no answer to read
        return self.observe_date(response.headers.get("date"))

    def observe_date(self, header: str | None) -> str | None:
        """Read one ``Date`` header (None: the answer had none)."""
        server = _parsed(header)
        if server is None:
            self.margin = self.margin or timedelta()
            return None
        skew = self._now() - server
        if abs(skew) > abs(self.skew):
            self.skew = skew
        if abs(self.skew) <= SKEW_WARNING:
            self.margin = self.margin or timedelta()
            return None
        self.margin = abs(self.skew)
        if self._warned:
            return None
        self._warned = True
        return skew_warning(self.skew)


def skew_warning(skew: timedelta) -> str:
    """The warning for a local clock ``skew`` ahead of the server's (behind if negative)."""
    way = "ahead of" if skew > timedelta() else "behind"
    size = _duration(abs(skew))
    return (
        f"plan: warning: this machine's clock is {size} {way} the server's (its Date header);"
        f" the too-late skip keeps a {size} margin, so it never skips a reachable message"
    )


def _parsed(header: str | None) -> datetime | None:
    if not header:
        return None
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds}s"
