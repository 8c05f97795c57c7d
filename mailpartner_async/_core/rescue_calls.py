"""What a rescue worker hands the lease, renew and record scripts, sans-I/O: its
settings, the ids it holds, the outcomes it has yet to record, and each script's
arguments built from them (see :mod:`~mailpartner_async._core.redis_rescue_lua`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from .models import BatchItem, CancelOutcome
from .rescue import Clock
from .rescue_ledger import NO_SEND

__all__ = ["Held", "Pending", "WorkSettings"]

Args = list[str | int]


@dataclasses.dataclass(frozen=True, slots=True)
class WorkSettings:
    """What a run needs of its rescue: the campaign, its keys, lease and TTL in ms, the
    clock that decides the cut-offs (``None``: Redis's), and the worker's name."""

    campaign: str
    keys: tuple[str, ...]
    lease_ms: int
    ttl_ms: int
    clock: Clock | None
    worker: str

    @property
    def lease(self) -> float:
        """The lease, in seconds."""
        return self.lease_ms / 1000

    def lease_args(self, token: str, want: int, now_ms: int | None) -> Args:
        """:data:`LEASE`'s arguments: ``want`` ids for ``token``; ``now_ms`` decides the
        cut-offs (``None``: Redis's time)."""
        now = "" if now_ms is None else now_ms
        return [self.ttl_ms, now, self.lease_ms, token, want, self.worker, NO_SEND]

    def renew_args(self, held: Sequence[tuple[str, Held]]) -> Args:
        """:data:`RENEW`'s arguments for the ids ``held``."""
        args: Args = [self.ttl_ms, self.lease_ms, self.worker]
        for message_id, lease in held:
            args += [message_id, lease.token, lease.sends]
        return args

    def record_args(self, entries: Sequence[Pending]) -> Args:
        """:data:`RECORD`'s arguments for ``entries``."""
        args: Args = [self.ttl_ms]
        for e in entries:
            lenient = (2 if e.outcome.stopped else 1) if e.lenient else 0
            args += [e.message_id, e.token, lenient, e.category, e.json, e.sends]
        return args


@dataclasses.dataclass(slots=True)
class Held:
    """An id a worker holds: its lease's token, how many times it was leased, its
    sends value, the batch item, when its lease was last renewed (monotonic seconds),
    and whether the lease was found lost."""

    token: str
    times: int
    sends: str
    item: BatchItem
    renewed: float
    lost: bool = False


@dataclasses.dataclass(slots=True)
class Pending:
    """An outcome a worker has yet to record: the ledger's JSON and category of it, the
    lease's token, and ``lenient`` once a call to record it failed (kept through an
    outage) or when it came after its lease may have lapsed (see :data:`RECORD`: a
    lenient outcome that stopped the email wins over another worker's later lease)."""

    message_id: str
    token: str
    category: str
    json: str
    sends: str
    outcome: CancelOutcome
    lenient: bool = False
