"""The fleet rescue in Redis, sans-I/O: a campaign's keys and settings, the checks of
every script reply, and :class:`RescueStatus`.

The Lua scripts are in :mod:`~mailpartner_async._core.redis_rescue_lua`, what is
stored for each id in :mod:`~mailpartner_async._core.rescue_ledger`. A reply that is
not one the script returns raises :class:`RedisReplyError`, which the rescue takes for
an unreachable Redis, as the rate limiter does.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Final

from .errors import ConfigurationError, MailPartnerError
from .models import BatchItem, BatchProgress, CancelOutcome, ScheduledMessage
from .redis_plan import RedisReplyError
from .rescue import CANCEL_CUTOFF
from .rescue_ledger import NO_SEND, decode_outcome, from_ms, scheduled
from .settings import check_seconds

__all__ = [
    "MAX_CAMPAIGN",
    "MIN_LEASE",
    "LeaseReply",
    "Leased",
    "RedisUnavailableError",
    "RescueKeys",
    "RescueStatus",
    "check_lease",
    "check_ttl",
    "read_flags",
    "read_lease",
    "read_leased",
    "read_ledger_page",
    "read_queue_page",
    "read_recorded",
    "read_status",
    "rescue_keys",
]

MAX_CAMPAIGN: Final = 200
# The shortest lease: longer than a lease call and a start take on a sound Redis. A
# lease at or under the 2 s call deadline still never lets two workers start one id
# (a worker counts its lease from before it asked), but a slow Redis can make it
# lapse in the asking, and the id goes back to the queue.
MIN_LEASE: Final = 1.0
_SUFFIXES: Final = (
    "queue",
    "sends",
    "leases",
    "tokens",
    "leased",
    "ledger",
    "counts",
    "recent",
    "workers",
)
_CATEGORIES: Final = ("cancelled", "already_cancelled", "too_late", "already_sent", "not_found")


class RedisUnavailableError(MailPartnerError):
    """The rescue's Redis could not be reached, was slower than the call's deadline, or
    answered what the rescue's scripts never return. The message never holds the URL."""


@dataclasses.dataclass(frozen=True, slots=True)
class RescueKeys:
    """The keys of one campaign: ``{mailpartner-rescue:<campaign>}:<name>``, one hash
    tag, so a Redis Cluster keeps them in one slot (and no two campaigns' keys meet:
    a name holds no ``}``)."""

    tag: str
    all: tuple[str, ...]


def rescue_keys(campaign: object) -> RescueKeys:
    """The keys of ``campaign``: a non-empty ``str``, at most 200 characters, without
    control characters; anything else is a :class:`ConfigurationError`."""
    if not isinstance(campaign, str) or not campaign:
        raise ConfigurationError(f"campaign must be a non-empty str, got {campaign!r}")
    if len(campaign) > MAX_CAMPAIGN:
        raise ConfigurationError(f"campaign must be at most {MAX_CAMPAIGN} characters long")
    if any(not ch.isprintable() for ch in campaign):
        raise ConfigurationError(f"campaign must hold no control characters, got {campaign!r}")
    tag = "{mailpartner-rescue:" + campaign + "}"
    return RescueKeys(tag, tuple(f"{tag}:{name}" for name in _SUFFIXES))


def check_lease(lease: object) -> float:
    """``lease``: a finite number of seconds, :data:`MIN_LEASE` or more."""
    seconds = check_seconds("lease", lease)
    if seconds < MIN_LEASE:
        raise ConfigurationError(
            f"lease must be at least {MIN_LEASE:g} s, got {lease!r}: a worker renews its "
            "leases every third of it, and starts no id whose lease may have lapsed, so a "
            "shorter one would lapse before its cancel starts"
        )
    return seconds


def check_ttl(ttl: object) -> float | None:
    """``ttl``: ``None``, or a finite number of seconds over 0."""
    return check_seconds("ttl", ttl, or_none=True)


@dataclasses.dataclass(frozen=True, slots=True)
class Leased:
    """One id :data:`LEASE` handed out: its text, how many times it was leased (this
    one included), and its sends value."""

    message_id: str
    times: int
    sends: str


@dataclasses.dataclass(frozen=True, slots=True)
class LeaseReply:
    """:data:`LEASE`'s answer: Redis's now (ms), ids made final as too late, queued and
    leased counts after the call, how many ids the campaign knows (``submitted``), and
    the ids leased, earliest cut-off first."""

    now_ms: int
    late: int
    queued: int
    leased: int
    submitted: int
    ids: tuple[Leased, ...]


def _text(value: object) -> str:
    if not isinstance(value, bytes):
        raise RedisReplyError(f"not a string: {type(value).__name__}")
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise RedisReplyError("a string that is not UTF-8") from None


def _count(value: object) -> int:
    if type(value) is not int or value < 0:
        raise RedisReplyError(f"not a count: {value!r}")
    return value


def read_lease(reply: object, want: int) -> LeaseReply:
    """The :data:`LEASE` ``reply`` of a call that asked for ``want`` ids, checked."""
    if not isinstance(reply, list) or len(reply) < 5 or (len(reply) - 5) % 3:
        raise RedisReplyError(f"not a lease: {type(reply).__name__}")
    now_ms, late, queued, leased, submitted = (_count(item) for item in reply[:5])
    ids = tuple(
        Leased(_text(reply[i]), _count(reply[i + 1]), _text(reply[i + 2]))
        for i in range(5, len(reply), 3)
    )
    if now_ms == 0 or len(ids) > want or any(item.times < 1 for item in ids):
        raise RedisReplyError("an impossible lease")
    if leased < len(ids):
        raise RedisReplyError("fewer leases than ids leased")
    return LeaseReply(now_ms, late, queued, leased, submitted, ids)


def read_flags(reply: object, expected: int) -> tuple[bool, ...]:
    """The 1/0 list :data:`RENEW` returns, ``expected`` long."""
    return tuple(flag == 1 for flag in _flags(reply, expected, (0, 1)))


def read_recorded(reply: object, expected: int) -> tuple[int, ...]:
    """The list :data:`RECORD` returns, ``expected`` long: 1 recorded by this worker,
    2 recorded before, the same, by another, 0 refused."""
    return _flags(reply, expected, (0, 1, 2))


def _flags(reply: object, expected: int, allowed: tuple[int, ...]) -> tuple[int, ...]:
    if not isinstance(reply, list) or len(reply) != expected:
        raise RedisReplyError(f"not {expected} flags: {type(reply).__name__}")
    if any(type(flag) is not int or flag not in allowed for flag in reply):
        raise RedisReplyError(f"a flag other than {' or '.join(map(str, allowed))}")
    return tuple(reply)


@dataclasses.dataclass(frozen=True)
class RescueStatus:
    """A campaign's progress across the fleet, as Redis holds it at ``now``.

    ``submitted`` ids queued in total; ``left`` not yet final (queued or in flight);
    ``in_flight`` leased now, ``in_flight_ids`` at most 100 of them; ``final`` the
    counts of the final outcomes; ``workers`` the worker names seen in the last 60 s;
    ``rate_per_minute`` the final outcomes recorded in the last 60 s.
    """

    campaign: str
    submitted: int
    left: int
    in_flight: int
    final: BatchProgress
    in_flight_ids: tuple[str, ...]
    workers: tuple[str, ...]
    rate_per_minute: float
    now: datetime

    @property
    def eta(self) -> timedelta | None:
        """``left`` at ``rate_per_minute``; ``None`` when the rate is 0."""
        if self.rate_per_minute <= 0:
            return None
        return timedelta(minutes=self.left / self.rate_per_minute)

    def as_dict(self) -> dict[str, object]:
        """The status as JSON-ready values (``status --json``)."""
        eta = self.eta
        return {
            "campaign": self.campaign,
            "submitted": self.submitted,
            "left": self.left,
            "in_flight": self.in_flight,
            "final": dataclasses.asdict(self.final),
            "stopped": self.final.stopped,
            "in_flight_ids": list(self.in_flight_ids),
            "workers": list(self.workers),
            "rate_per_minute": self.rate_per_minute,
            "eta_seconds": None if eta is None else eta.total_seconds(),
            "now": self.now.isoformat(),
        }


def read_status(reply: object, campaign: str) -> RescueStatus:
    """The :data:`STATUS` ``reply``, checked, as a :class:`RescueStatus`; a
    :class:`RedisReplyError` if it is not one the script gives."""
    if not isinstance(reply, list) or len(reply) != 8:
        raise RedisReplyError(f"not a status: {type(reply).__name__}")
    now_ms, submitted, _queued, leased, recent = (_count(item) for item in reply[:5])
    counts, in_flight, workers = reply[5:]
    if not all(isinstance(part, list) for part in (counts, in_flight, workers)):
        raise RedisReplyError("a status without its lists")
    if len(counts) % 2:
        raise RedisReplyError("counts of odd length")
    by_name = {_text(counts[i]): _count_text(counts[i + 1]) for i in range(0, len(counts), 2)}
    done = by_name.get("done", 0)
    named = {name: by_name.get(name, 0) for name in _CATEGORIES}
    final = BatchProgress(done=done, failed=max(0, done - sum(named.values())), **named)
    return RescueStatus(
        campaign=campaign,
        submitted=submitted,
        left=max(0, submitted - done),
        in_flight=leased,
        final=final,
        in_flight_ids=tuple(_text(item) for item in in_flight),
        workers=tuple(_text(item) for item in workers),
        rate_per_minute=float(recent),
        now=_moment(now_ms),
    )


def _moment(ms: int) -> datetime:
    try:
        return from_ms(ms)
    except ValueError:
        raise RedisReplyError(f"a time out of range: {ms!r}") from None


def _count_text(value: object) -> int:
    text = _text(value)
    if not (text.isascii() and text.isdigit()):  # str.isdigit() takes "²", int() does not
        raise RedisReplyError(f"not a count: {text!r}")
    return int(text)


def read_ledger_page(reply: object) -> tuple[bytes, list[CancelOutcome]]:
    """The :data:`LEDGER_PAGE` ``reply``: the next cursor, and the outcomes of the page."""
    if not isinstance(reply, list) or len(reply) != 2:
        raise RedisReplyError("not an HSCAN page")
    cursor, page = reply
    if not isinstance(cursor, bytes) or not isinstance(page, list) or len(page) % 2:
        raise RedisReplyError("not an HSCAN page")
    outcomes = []
    for i in range(0, len(page), 2):
        key, value = _text(page[i]), _text(page[i + 1])
        try:
            outcomes.append(decode_outcome(key, value))
        except (ValueError, KeyError, TypeError, OverflowError) as exc:
            raise RedisReplyError(f"a ledger entry the rescue never writes ({exc!r})") from None
    return cursor, outcomes


def read_queue_page(reply: object) -> tuple[datetime, bytes, list[BatchItem]]:
    """The :data:`QUEUE_PAGE` ``reply``: Redis's now, the next cursor, and the queued
    items of the page (as submitted: plain ids, or scheduled at cut-off + 5 min)."""
    if not isinstance(reply, list) or len(reply) != 3:
        raise RedisReplyError("not a page of the queue")
    now_ms, cursor, page = reply
    if not isinstance(cursor, bytes) or not isinstance(page, list) or len(page) % 2:
        raise RedisReplyError("not a page of the queue")
    now = _moment(_count(now_ms))
    items: list[BatchItem] = []
    for i in range(0, len(page), 2):
        text, score = _text(page[i]), _text(page[i + 1])
        try:
            cut = float(score)
            items.append(
                text if cut == NO_SEND else ScheduledMessage(text, from_ms(cut) + CANCEL_CUTOFF)
            )
        except (ValueError, OverflowError):
            raise RedisReplyError(f"a cut-off the rescue never writes: {score!r}") from None
    return now, cursor, items


def read_leased(reply: object) -> list[BatchItem]:
    """The :data:`LEASED_PAGE` ``reply``: the ids leased now, as submitted."""
    if not isinstance(reply, list) or len(reply) % 2:
        raise RedisReplyError("not the leased ids")
    return [scheduled(_text(reply[i]), _text(reply[i + 1])) for i in range(0, len(reply), 2)]
