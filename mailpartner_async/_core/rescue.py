"""Sans-I/O rescue arithmetic: cut-offs, deadline-first order, and the plan of a batch.

The API refuses a cancel less than five minutes before the email's send time
(code 6). Every cancel costs the same one request and the client starts at most
``rate_limit`` requests a minute, evenly spaced, so the order that cancels the most
emails in time is the order of their cut-offs (earliest deadline first), skipping
any message whose cut-off has passed: a request spent on it would be a slot lost
for the others. Nothing here reads a clock or does I/O: ``now`` is always given.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Final

from .errors import CancellationTooLateError, ConfigurationError, MailPartnerError
from .models import BatchItem, CancelCode, ScheduledMessage
from .settings import check_count

__all__ = [
    "CANCEL_CUTOFF",
    "DEADLINE_WINDOW",
    "Clock",
    "DeadlineQueue",
    "LateRetry",
    "RescuePlan",
    "check_window",
    "checked_now",
    "cutoff",
    "not_retried",
    "plan_rescue",
    "retry_past_cutoff",
    "start_offsets",
    "too_late",
    "too_late_error",
]

CANCEL_CUTOFF: Final = timedelta(minutes=5)
"""The API refuses a cancel when the send time is less than this far ahead."""

DEADLINE_WINDOW: Final = 100_000
"""How many scheduled messages a batch holds at most to order them (about 30 MB)."""

Clock = Callable[[], datetime]

LateRetry = Callable[[float], str | None]
"""Given how many seconds from now a retry cannot start before: why it is not to be
made (its id's cut-off would have passed), or None. A batch gives the client one for
each id whose send time it knows (see :func:`retry_past_cutoff`)."""


def checked_now(now: object) -> datetime:
    """``now`` as a batch's clock gave it: an aware ``datetime``, or a typed error.

    Called on every reading of the clock, so a clock that turns naive (or returns
    something else) half-way through a batch is caught where it happens.
    """
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise ConfigurationError(
            f"clock must return an aware datetime (with a tzinfo), it returned {now!r}"
        )
    return now


def check_window(window: object) -> int:
    """A batch's read-ahead ``window`` for scheduled messages: ``None`` for the default."""
    return DEADLINE_WINDOW if window is None else check_count("window", window, minimum=1)


def cutoff(send_at: datetime) -> datetime:
    """The last moment at which a cancel of an email sent at ``send_at`` is accepted.

    A send time within 5 minutes of the smallest ``datetime`` (year 1) has its
    cut-off at that smallest time: before every other, and long past.
    """
    try:
        return send_at - CANCEL_CUTOFF
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def too_late(send_at: datetime, now: datetime) -> bool:
    """True when the API would refuse the cancel at ``now`` (code 6 or 7)."""
    return send_at - now < CANCEL_CUTOFF


def too_late_error(message: ScheduledMessage, now: datetime) -> CancellationTooLateError:
    """The error on the outcome of a message the batch did not spend a request on."""
    late_by = now - cutoff(message.send_at)
    return CancellationTooLateError(
        f"not attempted: the send time {message.send_at.isoformat()} is less than 5 "
        f"minutes away (its cut-off passed {late_by.total_seconds():.0f} s ago)",
        code=CancelCode.TOO_LATE,
        message_id=str(message.message_id),
    )


def retry_past_cutoff(now: datetime, cutoff_at: datetime, wait: float) -> str | None:
    """Why a retry must not be made, or None when it may still start in time.

    ``wait`` is how many seconds from ``now`` the retry cannot start before (its
    backoff, a pause, the pacer's next free start): when that start falls after
    ``cutoff_at``, the API would refuse the cancel, so the retry is not made. A
    start exactly at the cut-off is in time, as :func:`too_late` has it.
    """
    left = (cutoff_at - now).total_seconds()
    if not wait > left:
        return None
    when = f"passed {-left:.1f} s ago" if left < 0 else f"{left:.1f} s from now"
    return (
        f"not retried: it could start {wait:.1f} s from now at the earliest, after the "
        f"cut-off at {cutoff_at.isoformat(timespec='seconds')} ({when})"
    )


def not_retried(error: MailPartnerError, reason: str) -> MailPartnerError:
    """``error``, the last attempt's, its message saying why no retry followed.

    The error keeps its class and every field but its message, so an outcome's
    ``ok`` and ``stopped`` read as they would after a last failed retry.
    """
    error.message = f"{error.message}; {reason}"
    error.args = (error.message, *error.args[1:])
    return error


class DeadlineQueue:
    """Scheduled messages held back to be started earliest cut-off first.

    Ties keep the input order. Each entry carries the position of its message in
    the input, for ``cancel_many``'s ordered results.
    """

    __slots__ = ("_heap",)

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, ScheduledMessage]] = []

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, index: int, message: ScheduledMessage) -> None:
        heapq.heappush(self._heap, (message.send_at, index, message))

    def pop(self) -> tuple[int, ScheduledMessage] | None:
        """The held message whose cut-off comes first, or None when none is held."""
        if not self._heap:
            return None
        _, index, message = heapq.heappop(self._heap)
        return index, message


def start_offsets(rate_limit: int | None) -> Callable[[int], timedelta]:
    """When the ``n``-th request (from 0) starts, after the first, at an even pace."""
    interval = 0.0 if rate_limit is None else 60.0 / rate_limit
    return lambda n: timedelta(seconds=n * interval)


@dataclasses.dataclass(frozen=True, slots=True)
class RescuePlan:
    """What a deadline-first batch can do, computed before it starts.

    ``reachable`` ids can be started before their cut-off at ``rate_limit`` (ids
    without a send time count as reachable: they are started first); ``lost`` are
    already inside their last 5 minutes; ``unreachable`` are still in time now but
    come after the rate limit's last chance for them. ``last_start`` is when the
    last reachable id starts (None when none does). ``pools`` is how many budgets of
    ``rate_limit`` start requests side by side (a fleet leaving from that many
    addresses).
    """

    now: datetime
    rate_limit: int | None
    total: int
    reachable: int
    last_start: datetime | None
    lost: tuple[str, ...]
    unreachable: tuple[str, ...]
    pools: int = 1

    def describe(self, *, show: int = 5) -> str:
        """The plan in a few lines of text, for a terminal."""
        pace = "no rate limit" if self.rate_limit is None else f"{self.rate_limit}/min"
        if self.pools > 1 and self.rate_limit is not None:
            pace = f"{self.pools} x {pace}"
        lines = [f"plan: {self.reachable} of {self.total} ids can be cancelled in time at {pace}"]
        if self.last_start is not None:
            minutes = (self.last_start - self.now).total_seconds() / 60
            lines.append(
                f"plan: the last one starts at {self.last_start.isoformat(timespec='seconds')}"
                f" (in {minutes:.1f} min)"
            )
        for label, ids in (
            ("already inside their last 5 minutes", self.lost),
            ("out of reach at this rate", self.unreachable),
        ):
            if ids:
                more = f" and {len(ids) - show} more" if len(ids) > show else ""
                lines.append(f"plan: {len(ids)} {label}: {', '.join(ids[:show])}{more}")
        return "\n".join(lines)


def plan_rescue(
    items: Iterable[BatchItem],
    *,
    now: datetime,
    rate_limit: int | None = 2000,
    pools: int = 1,
) -> RescuePlan:
    """Simulate a deadline-first batch at an even pace of ``rate_limit`` a minute.

    This is also the offline optimum for one request per id: earliest deadline
    first, dropping what cannot make it, cancels the most ids in time. With
    ``pools`` budgets side by side (each its own ``rate_limit``, evenly paced, all
    starting at ``now``), ``pools`` requests start at each step of the pace: the
    ``n``-th start (from 0) is at step ``n // pools``, and the same order is optimal.

    Example::

        plan = plan_rescue(messages, now=datetime.now(UTC), rate_limit=2000)
        print(plan.reachable, "of", plan.total)
    """
    pools = check_count("pools", pools, minimum=1)
    queue = DeadlineQueue()
    total = started = 0
    for total, item in enumerate(items, start=1):
        if isinstance(item, ScheduledMessage):
            queue.push(total, item)
        else:
            started += 1  # an id without a send time is started first
    pace = start_offsets(rate_limit)

    def offset(n: int) -> timedelta:
        return pace(n // pools)

    lost: list[str] = []
    unreachable: list[str] = []
    while (entry := queue.pop()) is not None:
        message = entry[1]
        if too_late(message.send_at, now):
            lost.append(str(message.message_id))
        elif too_late(message.send_at, now + offset(started)):
            unreachable.append(str(message.message_id))
        else:
            started += 1
    return RescuePlan(
        now=now,
        rate_limit=rate_limit,
        total=total,
        reachable=started,
        last_start=now + offset(started - 1) if started else None,
        lost=tuple(lost),
        unreachable=tuple(unreachable),
        pools=pools,
    )
