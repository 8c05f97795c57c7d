"""Batch cancellation, written once: many ids, bounded concurrency, one outcome per id.

The engine behind ``cancel_iter`` and ``cancel_many``. Workers pull ids lazily
from the input (at most ``concurrency`` ids taken ahead of the consumer, so memory
stays flat for millions of ids), call the client, and queue each outcome for the
consumer, who reads them in completion order.

How a batch ends, the same in the async and the sync client:

=============================  =======================================================
the consumer ...               the batch ...
=============================  =======================================================
reads every outcome            ends when the ids run out and every call answered
closes it (or leaves ``with``)  starts no other id and no retry, drops the calls in
                               flight, and returns once no worker is left
breaks out of its loop         (without ``with``) is dropped: it is told to stop as on
                               close, without waiting
raises, is cancelled, Ctrl+C   inside ``with``: as on close; without: as on a break
the ids iterable raises        starts no other id, delivers the outcome of every id
                               already taken, then raises ``IdsSourceError``
=============================  =======================================================

Dropping a call in flight cancels it at once in the async batch; a sync worker
thread cannot be interrupted, so its attempt ends within its time-out and no retry
follows.
"""

from __future__ import annotations

from typing import Self

from .._compat import AsyncChannel, AsyncLock, AsyncWorkers, async_checkpoint, async_iterate
from .._exceptions import ConfigurationError, IdsSourceError, MailPartnerError
from .._models import (
    ASYNC_ID_SOURCES,
    AsyncCancelCall,
    AsyncIds,
    BatchProgress,
    CancelOutcome,
    MessageId,
    ProgressCallback,
)

__all__ = ["AsyncBatch", "check_ids"]


class AsyncBatch:
    """Outcomes of a batch in completion order: ``async for outcome in batch``.

    Work starts at the first step (or on entering ``async with``); see the module's
    table for how it ends. :attr:`progress` holds the counts so far.
    """

    def __init__(
        self,
        call: AsyncCancelCall,
        ids: AsyncIds,
        *,
        concurrency: int,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        check_ids(ids)
        self._call = call
        self._ids = ids
        self._concurrency = concurrency
        self._on_progress = on_progress
        self._run: _AsyncRun | None = None
        self._closed = False
        self.progress = BatchProgress()

    def _started(self) -> _AsyncRun | None:
        if self._run is None and not self._closed:
            self._run = _AsyncRun(self._call, self._ids, self._concurrency)
        return self._run

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> CancelOutcome:
        return (await self.next_indexed())[1]

    async def next_indexed(self) -> tuple[int, CancelOutcome]:
        """The next outcome with the position of its id in the input."""
        run = self._started()
        if run is None:
            raise StopAsyncIteration
        item = await run.outbox.receive()
        if item is None:
            self._closed = True
            run.stop()
            failure, run.source.failure = run.source.failure, None
            if failure is not None:
                raise IdsSourceError(
                    f"the ids iterable raised {type(failure).__name__} after "
                    f"{self.progress.done} ids; every id taken got its outcome"
                ) from failure
            raise StopAsyncIteration
        self.progress = self.progress.add(item[1])
        if self._on_progress is not None:
            self._on_progress(self.progress)
        return item

    async def __aenter__(self) -> Self:
        self._started()
        return self

    async def __aexit__(
        self,
        *exc_info: object,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the batch and wait until no worker is left (see the module's table)."""
        self._closed = True
        if self._run is not None:
            await self._run.aclose()

    def __del__(self) -> None:
        # No I/O and no waiting: only tell the workers to stop.
        run = getattr(self, "_run", None)
        if run is not None:
            run.stop()


class _AsyncRun:
    """The workers of one batch, and what they share.

    Kept apart from :class:`AsyncBatch`, and holding no reference to it, so that
    the handle is collected (and the run told to stop) when a consumer drops it.
    """

    def __init__(self, call: AsyncCancelCall, ids: AsyncIds, concurrency: int) -> None:
        self.call = call
        self.source = _AsyncSource(ids)
        self.outbox: AsyncChannel[tuple[int, CancelOutcome]] = AsyncChannel(concurrency)
        self.outbox.open()
        self.workers = AsyncWorkers()
        self.workers.start(concurrency, self._work, self.outbox.close_sending)

    async def _work(self) -> None:
        while True:
            await async_checkpoint()  # a stopped batch starts no other id
            pulled = await self.source.pull()
            if pulled is None:
                return
            index, message_id = pulled
            outcome = await _outcome(self.call, message_id)
            if not await self.outbox.send((index, outcome)):
                return

    def stop(self) -> None:
        self.workers.stop()
        self.outbox.close_receiving()

    async def aclose(self) -> None:
        self.stop()
        await self.workers.wait()


class _AsyncSource:
    """The ids, numbered, taken by one worker at a time; keeps the iterable's error."""

    def __init__(self, ids: AsyncIds) -> None:
        self._iterator = async_iterate(ids)
        self._lock = AsyncLock()
        self._taken = 0
        self._done = False
        self.failure: Exception | None = None

    async def pull(self) -> tuple[int, MessageId] | None:
        async with self._lock:
            if self._done:
                return None
            try:
                message_id = await anext(self._iterator)
            except StopAsyncIteration:
                self._done = True
                return None
            except Exception as exc:
                self._done = True
                self.failure = exc
                return None
            self._taken += 1
            return self._taken - 1, message_id


async def _outcome(call: AsyncCancelCall, message_id: MessageId) -> CancelOutcome:
    """One id's outcome; whatever goes wrong is on the outcome, never lost."""
    try:
        return CancelOutcome(_id_text(message_id), result=await call(message_id))
    except MailPartnerError as exc:
        return CancelOutcome(_id_text(message_id), error=exc)
    except Exception as exc:
        # A bug, ours or in a transport: still one outcome for this id.
        text = _id_text(message_id)
        error = MailPartnerError(
            f"unexpected {type(exc).__name__} while cancelling", message_id=text
        )
        error.__cause__ = exc
        return CancelOutcome(text, error=error)


def _id_text(message_id: object) -> str:
    try:
        return str(message_id)
    except Exception:
        return f"<unprintable {type(message_id).__name__}>"


def check_ids(ids: object) -> None:
    """Refuse a single id where an iterable of ids was expected."""
    if isinstance(ids, str | bytes | int):
        raise ConfigurationError(
            f"ids must be an iterable of message ids, not a single {type(ids).__name__}: "
            "wrap one id in a list"
        )
    if not isinstance(ids, ASYNC_ID_SOURCES):
        raise ConfigurationError(
            f"ids must be an iterable of message ids, got a {type(ids).__name__}"
        )
