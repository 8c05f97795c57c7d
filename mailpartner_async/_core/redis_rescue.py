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
from .models import BatchProgress
from .redis_plan import RedisReplyError
from .rescue_ledger import from_ms
from .settings import check_seconds

__all__ = [
    "MAX_CAMPAIGN",
    "LeaseReply",
    "Leased",
    "RedisUnavailableError",
    "RescueKeys",
    "RescueStatus",
    "check_lease",
    "check_ttl",
    "read_flags",
    "read_lease",
    "read_status",
    "rescue_keys",
]

MAX_CAMPAIGN: Final = 200
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
    """``lease``: a finite number of seconds over 0."""
    return check_seconds("lease", lease)


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
    leased counts after the call, and the ids leased, earliest cut-off first."""

    now_ms: int
    late: int
    queued: int
    leased: int
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
    if not isinstance(reply, list) or len(reply) < 4 or (len(reply) - 4) % 3:
        raise RedisReplyError(f"not a lease: {type(reply).__name__}")
    now_ms, late, queued, leased = (_count(item) for item in reply[:4])
    ids = tuple(
        Leased(_text(reply[i]), _count(reply[i + 1]), _text(reply[i + 2]))
        for i in range(4, len(reply), 3)
    )
    if now_ms == 0 or len(ids) > want or any(item.times < 1 for item in ids):
        raise RedisReplyError("an impossible lease")
    return LeaseReply(now_ms, late, queued, leased, ids)


def read_flags(reply: object, expected: int) -> tuple[bool, ...]:
    """The 1/0 list :data:`RENEW` and :data:`RECORD` return, ``expected`` long."""
    if not isinstance(reply, list) or len(reply) != expected:
        raise RedisReplyError(f"not {expected} flags: {type(reply).__name__}")
    if any(type(flag) is not int or flag not in (0, 1) for flag in reply):
        raise RedisReplyError("a flag other than 0 or 1")
    return tuple(flag == 1 for flag in reply)


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
