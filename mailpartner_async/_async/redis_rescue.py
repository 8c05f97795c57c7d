"""AsyncRedisRescue: one rescue shared by a fleet of workers through Redis.

A campaign's ids wait in a Redis sorted set scored by their cut-off (send time minus
5 minutes; ids without a send time first). ``work(client)`` leases the earliest
cut-offs atomically (a Lua script timed by Redis's ``TIME``), cancels them through
the client's own batch engine, and records each final outcome and frees its lease in
one atomic step that refuses a worker whose lease was taken back. The data layout,
the lease and outage rules are in ``docs/reference.md``. Needs the ``redis`` extra;
``_sync/redis_rescue.py`` (``RedisRescue``) is generated from this module.
"""

from __future__ import annotations

import math
import os
import socket
import urllib.parse
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from datetime import datetime
from typing import NoReturn, Self

from .._compat import async_iterate
from .._core.errors import ConfigurationError, InvalidRequestError
from .._core.models import BatchItem, BatchProgress, CancelOutcome, ScheduledMessage
from .._core.redis_plan import RedisReplyError
from .._core.redis_rescue import (
    RedisUnavailableError,
    RescueStatus,
    check_lease,
    check_ttl,
    read_leased,
    read_ledger_page,
    read_queue_page,
    read_status,
    rescue_keys,
)
from .._core.redis_rescue_lua import (
    LEASE,
    LEASED_PAGE,
    LEDGER_PAGE,
    QUEUE_PAGE,
    RECORD,
    RENEW,
    STATUS,
    SUBMIT,
)
from .._core.rescue import Clock, RescuePlan, checked_now, plan_rescue
from .._core.rescue_calls import WorkSettings
from .._core.rescue_ledger import QueueEntry, queue_entry
from .._core.secrets import Secret, redact
from .._redis_calls import REDIS_ERRORS
from .batch import check_clock, check_ids
from .client import AsyncMailPartner
from .rescue_redis import AsyncRescueRedis, usable_redis_url
from .rescue_work import AsyncRescueWork

__all__ = ["AsyncRedisRescue"]

_SCRIPTS = {
    "submit": SUBMIT,
    "lease": LEASE,
    "renew": RENEW,
    "record": RECORD,
    "status": STATUS,
    "queue_page": QUEUE_PAGE,
    "leased_page": LEASED_PAGE,
    "ledger_page": LEDGER_PAGE,
}
_SUBMIT_CHUNK = 1000  # ids per submitting script call
_PAGE = 5000  # entries per read when listing the queue or the ledger


class AsyncRedisRescue:
    """One campaign's rescue in Redis, shared by every worker given the same ``url`` and
    ``campaign``.

    ``lease`` is how many seconds a worker holds an id before another may take it
    back (renewed every third of it while the worker lives); ``ttl`` (seconds) makes
    every key of the campaign expire that long after its last write; ``clock`` (a
    callable returning an aware ``datetime``) decides which ids are inside their last
    5 minutes instead of Redis's ``TIME``; ``worker`` is this worker's name in
    :meth:`status` (default ``"<hostname>:<pid>:<4 hex>"``). Bad values are a
    :class:`~mailpartner_async.ConfigurationError`; a Redis that cannot be reached
    (or answers what the scripts never return) is a ``RedisUnavailableError``. Its
    ``repr`` and its errors never show the URL, which may hold a password.

    Example::

        async with AsyncRedisRescue(url, campaign="spring-promo") as rescue:
            await rescue.submit(messages)
            progress = await rescue.work(client)
    """

    def __init__(
        self,
        url: str,
        *,
        campaign: str,
        lease: float = 30.0,
        ttl: float | None = None,
        clock: Clock | None = None,
        worker: str | None = None,
    ) -> None:
        self._url = Secret(usable_redis_url(url))
        self._layout = rescue_keys(campaign)
        self._campaign = campaign
        self._lease = check_lease(lease)
        self._ttl = check_ttl(ttl)
        self._clock = None if clock is None else check_clock(clock)
        self._worker = _checked_worker(worker)
        self._redis = AsyncRescueRedis(self._url, _SCRIPTS)

    @property
    def campaign(self) -> str:
        """The campaign's name: its keys are ``{mailpartner-rescue:<campaign>}:...``."""
        return self._campaign

    @property
    def lease(self) -> float:
        """Seconds a worker holds an id before another worker may take it back."""
        return self._lease

    @property
    def worker(self) -> str:
        """This worker's name, as :meth:`status` lists it."""
        return self._worker

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(campaign={self._campaign!r}, lease={self._lease}, "
            f"worker={self._worker!r})"
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections to Redis (the campaign stays in Redis)."""
        await self._redis.aclose()

    @property
    def _ttl_ms(self) -> int:
        return 0 if self._ttl is None else math.ceil(self._ttl * 1000)

    async def submit(
        self,
        messages: Iterable[ScheduledMessage | str | int]
        | AsyncIterable[ScheduledMessage | str | int],
    ) -> int:
        """Queue ``messages`` (``ScheduledMessage`` items or plain ids, from any iterable);
        return how many were newly queued.

        Idempotent by id: an id the campaign already holds (queued, in flight or
        final) is not queued again. Ids are written 1000 to a script call; each is
        checked as the client checks it first, so a bad id raises
        :class:`~mailpartner_async.InvalidRequestError` before its chunk is written
        (the chunks before it stay queued: submitting again is safe).
        """
        check_ids(messages)
        added = 0
        chunk: list[QueueEntry] = []
        written = 0
        async for item in async_iterate(messages):
            try:
                chunk.append(queue_entry(item))
            except InvalidRequestError as exc:
                raise InvalidRequestError(
                    f"item {written + len(chunk)} of the submitted messages is not a message "
                    f"id ({exc.message}); the {written} before its chunk of {_SUBMIT_CHUNK} "
                    f"were submitted ({added} newly queued), none after",
                    code=exc.code,
                    message_id=exc.message_id,
                ) from None
            if len(chunk) == _SUBMIT_CHUNK:
                added += await self._submit_chunk(chunk)
                written += len(chunk)
                chunk = []
        if chunk:
            added += await self._submit_chunk(chunk)
        return added

    async def _submit_chunk(self, chunk: list[QueueEntry]) -> int:
        args: list[str | int] = [self._ttl_ms]
        for entry in chunk:
            args += [entry.message_id, entry.sends, entry.score]
        reply = await self._script("submit", args)
        if type(reply) is not int or not 0 <= reply <= len(chunk):
            self._unavailable(RedisReplyError(f"not a count of new ids: {type(reply).__name__}"))
        return reply

    async def work(self, client: AsyncMailPartner) -> BatchProgress:
        """Cancel the campaign's ids with ``client`` until nothing is left to start or in
        flight anywhere in the fleet; return the progress of the outcomes this worker
        recorded.

        Ids are leased earliest cut-off first, about as many as ``client`` has in
        flight (its ``max_concurrency``), and cancelled through its batch engine: its
        retries, limits and rate limiter apply. An id already inside its last 5
        minutes gets no request. While Redis is away, the worker leases nothing,
        finishes what it holds, keeps the outcomes it could not record, and records
        them once Redis answers (one WARNING each way on the ``mailpartner_async``
        logger).
        """
        if not isinstance(client, AsyncMailPartner):
            raise ConfigurationError(
                f"work() takes an AsyncMailPartner, got {type(client).__name__}"
            )
        settings = WorkSettings(
            campaign=self._campaign,
            keys=self._layout.all,
            lease_ms=math.ceil(self._lease * 1000),
            ttl_ms=self._ttl_ms,
            clock=self._clock,
            worker=self._worker,
        )
        return await AsyncRescueWork(self._redis, settings, client).run()

    async def status(self) -> RescueStatus:
        """The campaign's progress across the fleet, as Redis holds it now."""
        reply = await self._script("status", [0])
        try:
            return read_status(reply, self._campaign)
        except (RedisReplyError, ValueError) as exc:
            self._unavailable(exc)

    def outcomes(self) -> AsyncIterator[CancelOutcome]:
        """Every final outcome recorded in the campaign's ledger, each once, in no set
        order (read a page at a time)."""
        return self._outcomes()

    async def _outcomes(self) -> AsyncIterator[CancelOutcome]:
        seen: set[str] = set()
        cursor = b"0"
        while True:
            args: list[str | int] = [0, cursor.decode(), _PAGE]
            reply = await self._script("ledger_page", args)
            try:
                cursor, decoded = read_ledger_page(reply)
            except RedisReplyError as exc:
                self._unavailable(exc)
            for outcome in decoded:
                if outcome.message_id not in seen:
                    seen.add(outcome.message_id)
                    yield outcome
            if cursor == b"0":
                return

    async def plan(self, *, pools: int = 1, rate_limit: int = 2000) -> RescuePlan:
        """The offline optimum for what is left (queued and in flight) with ``pools``
        budgets of ``rate_limit`` a minute (see :func:`plan_rescue`), now (Redis's
        time, or the rescue's ``clock``)."""
        redis_now, items = await self._left()
        now = redis_now if self._clock is None else checked_now(self._clock())
        return plan_rescue(items, now=now, rate_limit=rate_limit, pools=pools)

    async def _left(self) -> tuple[datetime, list[BatchItem]]:
        """Redis's time, and the ids queued or in flight (read a page at a time, by a
        cursor: ids popped meanwhile are then leased, or final; each counts once)."""
        items: dict[str, BatchItem] = {}
        now: datetime | None = None
        cursor = b"0"
        try:
            while True:
                args: list[str | int] = [0, cursor.decode(), _PAGE]
                reply = await self._script("queue_page", args)
                page_now, cursor, page = read_queue_page(reply)
                now = page_now if now is None else now
                items.update((_text_of(item), item) for item in page)
                if cursor == b"0":
                    break
            reply = await self._script("leased_page", [0])
            items.update((_text_of(item), item) for item in read_leased(reply))
        except RedisReplyError as exc:
            self._unavailable(exc)
        return now, list(items.values())

    async def delete(self) -> None:
        """Remove every key of the campaign: its queue, leases, ledger and counts."""
        await self._command("DEL", *self._layout.all)

    async def _script(self, name: str, args: list[str | int] | list[int]) -> object:
        """The reply of the script ``name`` on the campaign's keys; a Redis error
        raised as ours."""
        try:
            return await self._redis.script(name, self._layout.all, args)
        except REDIS_ERRORS as exc:
            self._unavailable(exc)

    async def _command(self, *args: str) -> object:
        try:
            return await self._redis.command(*args)
        except REDIS_ERRORS as exc:
            self._unavailable(exc)

    def _unavailable(self, exc: BaseException) -> NoReturn:
        password = urllib.parse.urlsplit(self._url.reveal()).password
        detail = redact(f"{type(exc).__name__}: {exc}", password)
        raise RedisUnavailableError(
            f"the rescue's Redis (campaign {self._campaign!r}) is unreachable, too slow or "
            f"answered what the rescue never writes ({detail})"
        ) from None


def _checked_worker(worker: object) -> str:
    if worker is None:
        return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:4]}"
    if not isinstance(worker, str) or not worker or not worker.isprintable():
        raise ConfigurationError(f"worker must be a non-empty printable str, got {worker!r}")
    return worker


def _text_of(item: BatchItem) -> str:
    return str(item.message_id if isinstance(item, ScheduledMessage) else item)
