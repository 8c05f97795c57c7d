"""One run of ``work(client)``: lease from the campaign's queue, cancel through the
client's own batch engine, renew the leases held, record each final outcome.

The leased ids are the items of one ``cancel_iter`` batch (read one at a time, so
they start in the order leased: earliest cut-off first), so the client's retries,
concurrency, rate limiter and cut-off checks apply as to any batch. While Redis is
away the run leases nothing, finishes what it holds, and keeps the outcomes it
could not record; they are recorded when Redis is back. Needs the ``redis`` extra.
"""

from __future__ import annotations

import collections
import itertools
import logging
import uuid
from datetime import datetime, timedelta

from .._compat import (
    AsyncEvent,
    AsyncLock,
    AsyncTaskGroup,
    async_sleep,
    async_thread_lock,
    async_wait_for,
    monotonic,
    utc_now,
)
from .._core.errors import BatchError
from .._core.models import BatchItem, BatchProgress, CancelOutcome
from .._core.redis_plan import RedisHealth, RedisReplyError
from .._core.redis_rescue import (
    LeaseReply,
    RedisUnavailableError,
    read_flags,
    read_lease,
    read_recorded,
)
from .._core.rescue import checked_now
from .._core.rescue_calls import Held, Pending, WorkSettings
from .._core.rescue_ledger import (
    encode_outcome,
    from_ms,
    scheduled,
    settled_on_release,
    to_ms,
)
from .._redis_calls import REDIS_ERRORS
from .client import AsyncMailPartner
from .rescue_redis import AsyncRescueRedis

__all__ = ["AsyncRescueWork"]

logger = logging.getLogger("mailpartner_async")

_CHUNK = 500  # outcomes recorded (or leases renewed) by one script call, at most


class AsyncRescueWork:
    """The state of one run: the ids held, the outcomes not yet recorded, and Redis's
    health. :meth:`run` returns the progress of the outcomes this run recorded."""

    def __init__(
        self, redis: AsyncRescueRedis, settings: WorkSettings, client: AsyncMailPartner
    ) -> None:
        self._redis = redis
        self._settings = settings
        self._client = client
        self.progress = BatchProgress()
        self._held: dict[str, Held] = {}
        self._buffer: collections.deque[str] = collections.deque()
        self._pending: list[Pending] = []
        self._guard = async_thread_lock()
        self._flush_lock = AsyncLock()
        self._health = RedisHealth(min(2.0, settings.lease / 4))
        self._done = AsyncEvent()
        self._settled = AsyncEvent()  # set (and replaced) each time outcomes are settled
        self._wake = AsyncEvent()  # set (and replaced) each time an outcome comes
        self._offset = timedelta(0)
        self._tokens = (f"{uuid.uuid4().hex[:12]}:{n}" for n in itertools.count())
        self._poll = min(1.0, max(0.05, settings.lease / 10))
        self._clock_failures: list[Exception] = []
        self._known = 0  # the most ids the campaign was seen to hold
        self._lost: str | None = None  # why the run stopped leasing: its data is gone

    async def run(self) -> BatchProgress:
        """Work until nothing is left; a run that fails tries once more to record the
        outcomes it holds, then raises one :class:`BatchError` carrying the rest."""
        try:
            async with AsyncTaskGroup() as group:
                group.start_soon(self._renew_until_done)
                group.start_soon(self._flush_until_done)
                try:
                    await self._consume()
                finally:
                    self._done.set()
                    with self._guard:
                        self._wake.set()
        except Exception as exc:
            raise await self._stopped(_first_leaf(exc)) from None
        if self._lost is not None:
            raise await self._stopped(RedisUnavailableError(self._lost), lost=True)
        return self.progress

    async def _stopped(self, cause: BaseException, *, lost: bool = False) -> BatchError:
        """The error a failed run raises, once its outcomes were given a last chance."""
        try:
            await self._flush()
        except Exception as exc:  # the cause stays the one reported
            logger.debug("rescue: the last recording of a failed run failed: %r", exc)
        with self._guard:
            unrecorded = [entry.outcome for entry in self._pending]
        if isinstance(cause, BatchError) and cause.__cause__ is not None:
            cause = cause.__cause__  # what stopped the batch, not the batch's summary
        left = (
            "submit the campaign again (submitting is idempotent) and run work again"
            if lost
            else "the ids it did not finish stay in the campaign for a worker to lease"
        )
        error = BatchError(
            f"the rescue's work (campaign {self._settings.campaign!r}) stopped after "
            f"{self.progress.done} outcomes recorded: {type(cause).__name__}: {cause}; "
            f"{len(unrecorded)} outcomes it could not record are in outcomes; {left}",
            outcomes=unrecorded,
            progress=self.progress,
        )
        error.__cause__ = cause
        return error

    def _now(self) -> datetime:
        """The batch's clock: the caller's, else Redis's time as last seen."""
        if self._settings.clock is not None:
            try:
                return checked_now(self._settings.clock())
            except Exception as exc:
                with self._guard:
                    self._clock_failures.append(exc)
                raise
        return utc_now() + self._offset

    async def _consume(self) -> None:
        concurrency = self._client.max_concurrency
        batch = self._client.cancel_iter(
            _AsyncFeed(self), concurrency=concurrency, clock=self._now, window=1
        )
        async with batch:
            async for outcome in batch:
                self._record(outcome)

    async def next_item(self) -> BatchItem | None:
        """The next leased id to cancel; ``None`` once nothing is left anywhere."""
        while True:
            item = self._take_buffered()
            if item is not None:
                return item
            await self._flush()
            with self._guard:
                settled = self._settled
            reply = await self._lease()
            if self._lost is not None:
                return None  # what is in flight finishes; the run then fails
            if reply is not None and reply.ids:
                continue
            if reply is not None and not (reply.queued or reply.leased or self._pending):
                return None
            # Ids in flight somewhere: ask again when one of ours is recorded, or soon.
            await async_wait_for(settled, self._poll)

    def _take_buffered(self) -> BatchItem | None:
        with self._guard:
            while self._buffer:
                key = self._buffer.popleft()
                held = self._held.get(key)
                if held is None:
                    continue
                if held.lost or monotonic() - held.renewed >= self._settings.lease:
                    # Maybe taken back already: never started, never recorded.
                    del self._held[key]
                    continue
                return held.item
        return None

    async def _lease(self) -> LeaseReply | None:
        """Lease up to the client's concurrency; ``None`` while Redis is away."""
        if not self._try_redis():
            return None
        settings = self._settings
        want = self._client.max_concurrency
        token = next(self._tokens)
        now = None if settings.clock is None else to_ms(self._now())
        args = settings.lease_args(token, want, now)
        # Redis starts the lease after it was asked for: counted from here, a lease is
        # taken for lapsed no later than it does, however slow the answer.
        leased_at = monotonic()
        try:
            reply = read_lease(await self._redis.script("lease", settings.keys, args), want)
            offset = from_ms(reply.now_ms) - utc_now()
        except (*REDIS_ERRORS, ValueError) as exc:
            self._failed(exc)
            return None
        self._answered()
        self._offset = offset
        self._lost = self._gone(reply.submitted)
        items = [scheduled(leased.message_id, leased.sends) for leased in reply.ids]
        with self._guard:
            for leased, item in zip(reply.ids, items, strict=True):
                held = self._held.get(leased.message_id)
                if held is not None:
                    # Ours already, from a lease that lapsed while Redis was away (its
                    # cancel buffered or in flight): the new lease carries on that one,
                    # and no second cancel of the id starts.
                    held.token, held.times, held.renewed = token, leased.times, leased_at
                    held.lost = False
                    continue
                self._held[leased.message_id] = Held(
                    token, leased.times, leased.sends, item, leased_at
                )
                self._buffer.append(leased.message_id)
        return reply

    def _gone(self, submitted: int) -> str | None:
        """Why the campaign's data is gone, if Redis now holds fewer ids than before (or
        none at all at the start); else ``None``."""
        known, self._known = self._known, max(self._known, submitted)
        if submitted >= known and submitted:
            return None
        if not known:
            return (
                f"Redis holds no ids for campaign {self._settings.campaign!r}: submit them "
                "first (or the campaign was deleted, its ttl ran out, or a Redis restarted "
                "without persistence lost it)"
            )
        return (
            f"Redis no longer holds the campaign's data: it knew {known} ids, now "
            f"{submitted} (a Redis restarted without persistence, a delete(), or a ttl "
            "shorter than the time between writes); the outcomes recorded before are gone "
            "with it, ids cancelled then answer already cancelled"
        )

    def _record(self, outcome: CancelOutcome) -> None:
        """Queue ``outcome`` for the flusher, which records what came meanwhile in one
        call (so the calls to Redis do not hold the batch back)."""
        with self._guard:
            held = self._held.get(outcome.message_id)
            by_the_clock = outcome.error is not None and any(
                outcome.error.__cause__ is exc for exc in self._clock_failures
            )
            if held is not None and by_the_clock:
                # Not sent, or not retried, as the clock failed: not final; its lease
                # lapses, and the id goes back to the queue for a worker to lease.
                del self._held[outcome.message_id]
                return
        if held is None:  # not leased by this run: nothing it may record
            logger.debug("rescue: an outcome for %r, which this worker does not hold", outcome)
            return
        outcome = settled_on_release(outcome, held.times)
        text, category = encode_outcome(outcome)
        entry = Pending(outcome.message_id, held.token, category, text, held.sends, outcome)
        # Not renewed for a lease's time (Redis away): another worker may hold it now.
        entry.lenient = monotonic() - held.renewed >= self._settings.lease
        with self._guard:
            self._pending.append(entry)
            self._wake.set()
            self._wake = AsyncEvent()

    async def _flush_until_done(self) -> None:
        """Record the outcomes as they come; once the batch is over, until none is
        left (while Redis is away, trying again every poll)."""
        while True:
            with self._guard:
                wake, pending = self._wake, bool(self._pending)
            if not pending:
                if self._done.is_set():
                    return
                await async_wait_for(wake, self._poll)
                continue
            await self._flush()
            with self._guard:
                stuck = bool(self._pending)
            if stuck:  # Redis is away
                await async_sleep(self._poll)

    async def _flush(self) -> None:
        """Record the outcomes not yet recorded, if Redis answers."""
        async with self._flush_lock:
            while True:
                with self._guard:
                    entries = self._pending[:_CHUNK]
                if not entries or not self._try_redis():
                    return
                args = self._settings.record_args(entries)
                try:
                    reply = await self._redis.script("record", self._settings.keys, args)
                    recorded = read_recorded(reply, len(entries))
                except REDIS_ERRORS as exc:
                    with self._guard:
                        for entry in self._pending:  # kept through an outage
                            entry.lenient = True
                    self._failed(exc)
                    return
                self._answered()
                self._settle(entries, recorded)

    def _settle(self, entries: list[Pending], recorded: tuple[int, ...]) -> None:
        with self._guard:
            self._settled.set()
            self._settled = AsyncEvent()
            del self._pending[: len(entries)]
            for entry, flag in zip(entries, recorded, strict=True):
                self._held.pop(entry.message_id, None)
                if flag == 1:
                    self.progress = self.progress.add(entry.outcome)
                elif flag == 2:
                    logger.debug(
                        "rescue: outcome of %r recorded already, the same, by another worker",
                        entry.message_id,
                    )
                else:
                    logger.debug(
                        "rescue: outcome of %r not recorded: its lease was lost to another "
                        "worker, which records its own",
                        entry.message_id,
                    )

    async def _renew_until_done(self) -> None:
        while True:
            await async_wait_for(self._done, self._settings.lease / 3)
            if self._done.is_set():
                return
            # Not behind a flush: a slow record call must not let the leases lapse.
            await self._renew()

    async def _renew(self) -> None:
        """Extend the leases held; a lease lost is never started (if not yet)."""
        if not self._try_redis():
            return
        settings = self._settings
        with self._guard:
            held = list(self._held.items())
        for start in range(0, max(1, len(held)), _CHUNK):
            part = held[start : start + _CHUNK]
            renewed_at = monotonic()
            try:
                reply = await self._redis.script("renew", settings.keys, settings.renew_args(part))
                kept = read_flags(reply, len(part))
            except REDIS_ERRORS as exc:
                self._failed(exc)
                return
            self._answered()
            with self._guard:
                for (key, lease), ok in zip(part, kept, strict=True):
                    if self._held.get(key) is lease:
                        lease.renewed = renewed_at if ok else lease.renewed
                        lease.lost = not ok

    def _try_redis(self) -> bool:
        with self._guard:
            return self._health.try_redis(monotonic())

    def _failed(self, exc: BaseException) -> None:
        with self._guard:
            started = self._health.failed(monotonic())
        if started:
            logger.warning(
                "Redis rescue (campaign %r) unreachable (%s): no new leases; the ids held "
                "are finished and their outcomes kept until it is back",
                self._settings.campaign,
                f"{type(exc).__name__}: {exc}"
                if isinstance(exc, RedisReplyError | ValueError)
                else type(exc).__name__,
            )

    def _answered(self) -> None:
        with self._guard:
            ended = self._health.answered()
            kept = len(self._pending)
        if ended:
            logger.warning(
                "Redis rescue (campaign %r) is back: leasing again, %d outcomes kept "
                "meanwhile being recorded",
                self._settings.campaign,
                kept,
            )


def _first_leaf(exc: BaseException) -> BaseException:
    """The first exception an exception group holds (``exc`` itself if not a group)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class _AsyncFeed:
    """The leased ids, as the batch's items (a class: nothing to finalize if dropped)."""

    def __init__(self, work: AsyncRescueWork) -> None:
        self._work = work

    def __aiter__(self) -> _AsyncFeed:
        return self

    async def __anext__(self) -> BatchItem:
        item = await self._work.next_item()
        if item is None:
            raise StopAsyncIteration
        return item
