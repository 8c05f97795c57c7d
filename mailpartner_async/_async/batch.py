"""Batch cancellation, written once: many ids, bounded concurrency, one outcome per id.

The engine behind ``cancel_iter`` and ``cancel_many``. Workers pull ids lazily
from the input (at most ``concurrency`` ids taken ahead of the consumer, so memory
stays flat for millions of ids), call the client, and queue each outcome for the
consumer, who reads them in completion order. The workers run in a task group (a
group of threads in the sync client) that one background task hosts: a worker that
crashes fails the run, and the consumer gets a ``BatchError``.

How a batch ends, the same in the async and the sync client:

===============================  ======================================================
when ...                         the batch ...
===============================  ======================================================
the consumer reads every outcome ends when the ids run out and every call answered
the consumer closes it (or       starts no other id and no retry, drops the calls in
leaves ``with``)                 flight, and returns once no worker is left
the consumer breaks out of its   (without ``with``) is dropped: it is told to stop as
loop                             on close, without waiting
the consumer raises, is          inside ``with``: as on close; without: as on a break
cancelled, or gets Ctrl+C
the consumer calls               starts no other id; the calls in flight finish and
``stop_starting()``              their outcomes come, then the iteration ends
the ids iterable raises          starts no other id, delivers the outcome of every id
                                 already taken, then raises ``IdsSourceError``
the clock raises or turns naive  gives the id at hand an error outcome ("not sent: the
                                 clock failed"), starts no other id, delivers the
                                 outcomes in flight, then raises ``BatchError``
the journal cannot write a       as for the clock: that id is not sent and gets an
``start`` line (a full disk)     error outcome; then ``BatchError``
the journal cannot write a       the outcome is given as it is (a rerun asks again:
``final`` line                   it was never recorded); then as for the clock
the journal cannot encode an id  that id alone is not sent and gets an error outcome;
(not valid UTF-8 text)           the batch goes on
a worker crashes (a bug)         the calls in flight are dropped, the outcomes given
                                 are delivered, then ``BatchError``
===============================  ======================================================

``BatchError`` (and ``IdsSourceError``, one of its kind) carries the batch's
``progress``; ``cancel_many`` also puts every outcome given in its ``outcomes``.

Items may be plain ids or :class:`~mailpartner_async.ScheduledMessage`. Plain ids
start as they come. Scheduled messages are held in a queue of at most ``window``
(default 100,000: about 30 MB) and started earliest cut-off first; the input is
read ahead until the queue is full, so an input that fits is ordered exactly, and a
larger one in a sliding window. Just before a scheduled message starts, the batch
checks its cut-off against ``clock`` (default: the current time in UTC; a callable
returning an aware ``datetime``): a message already inside its last 5 minutes
gets a ``CancellationTooLateError`` outcome and costs no request; and the client
makes no retry of it whose start (after the backoff, a pause, the pacer's next
free start) would fall after its cut-off: the outcome keeps the last attempt's
error, its message saying why no retry followed. With a
``journal``, ids it holds as final are skipped (no outcome), a ``start`` line is
written before each request and each final outcome is recorded as it happens (only
what the server answered is final: a message skipped as too late is asked about
again by a rerun); the writes run in a worker thread, off the event loop.

Dropping a call in flight cancels it at once in the async batch. A sync worker
thread cannot be interrupted: once the batch stops it starts no new attempt and no
retry, and the stop shuts down the connection of its attempt in flight, so a read
blocked on a server that never answers ends at once (on a transport or an
``http_client`` of yours, the attempt ends within its time-out). Closing a batch
returns once its threads have ended.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Self

from .._compat import (
    AsyncCancelScope,
    AsyncEvent,
    AsyncLock,
    AsyncTaskGroup,
    async_iterate,
    async_join,
    async_run_sync,
    async_spawn,
    utc_now,
)
from .._core.errors import BatchError, ConfigurationError, IdsSourceError, MailPartnerError
from .._core.models import (
    BatchItem,
    BatchProgress,
    CancelOutcome,
    MessageId,
    ProgressCallback,
    ScheduledMessage,
)
from .._core.rescue import (
    Clock,
    DeadlineQueue,
    LateRetry,
    check_window,
    checked_now,
    cutoff,
    retry_past_cutoff,
    too_late,
    too_late_error,
)
from .._core.secrets import Secret
from .._journal import Journal
from .._telemetry import DEFAULT_OBSERVER, BatchObservation, Observer
from .channel import AsyncChannel
from .ids import ASYNC_ID_SOURCES, AsyncCancelCall, AsyncIds, AsyncStop

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
        journal: Journal | str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
        window: int | None = None,
        observer: Observer | None = None,
        secret: Secret | None = None,
    ) -> None:
        check_ids(ids)
        self._call = call
        self._ids = ids
        self._concurrency = concurrency
        self._on_progress = on_progress
        self._run: _AsyncRun | None = None
        self._closed = False
        self._rules = _Rules(_as_journal(journal), check_clock(clock), check_window(window))
        # secret: the client's key, masked in the batch's span (an error that ended
        # the batch may chain text that holds it).
        self._observation = BatchObservation(
            DEFAULT_OBSERVER if observer is None else observer, secret
        )
        self.progress = BatchProgress()

    @property
    def journal(self) -> Journal | None:
        """The batch's journal, if it has one."""
        return self._rules.journal

    def _started(self) -> _AsyncRun | None:
        if self._run is None and not self._closed:
            self._rules.open()
            self._observation.start(self._concurrency)
            self._run = _AsyncRun(
                self._call, self._ids, self._concurrency, self._rules, self._observation
            )
        return self._run

    def stop_starting(self) -> None:
        """Start no other id; the outcomes of the calls in flight still come."""
        if self._run is not None:
            self._run.source.stop()

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
            await self._finish(run)
            raise StopAsyncIteration
        self.progress = self.progress.add(item[1])
        if self._on_progress is not None:
            self._on_progress(self.progress)
        return item

    async def _finish(self, run: _AsyncRun) -> None:
        """Once the outcomes ran out: no worker left, the journal closed, and what
        ended the batch early, if anything, raised (once)."""
        self._closed = True
        await run.aclose()
        self._rules.close()
        error: BatchError | None = None
        if run.failure is not None:
            (what, cause), run.failure = run.failure, None
            error = BatchError(
                f"the batch stopped after {self.progress.done} outcomes: {what} "
                f"({type(cause).__name__}: {cause}); the ids it did not reach have no outcome",
                progress=self.progress,
            )
            error.__cause__ = cause
        elif run.source.failure is not None:
            failure, run.source.failure = run.source.failure, None
            error = IdsSourceError(
                f"the ids iterable raised {type(failure).__name__} after "
                f"{self.progress.done} ids; every id taken got its outcome",
                progress=self.progress,
            )
            error.__cause__ = failure
        self._observation.end(self.progress, error)
        if error is not None:
            raise error

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
        self._rules.close()
        self._observation.end(self.progress)

    def __del__(self) -> None:
        # No waiting: only tell the workers to stop (see _AsyncRun.stop).
        run = getattr(self, "_run", None)
        if run is not None:
            run.stop()


class _AsyncRun:
    """The workers of one batch, and what they share.

    Kept apart from :class:`AsyncBatch`, and holding no reference to it, so that
    the handle is collected (and the run told to stop) when a consumer drops it.
    ``failure`` is what ended the run early: what failed, and the exception.
    """

    def __init__(
        self,
        call: AsyncCancelCall,
        ids: AsyncIds,
        concurrency: int,
        rules: _Rules,
        observation: BatchObservation,
    ) -> None:
        self.call = call
        self.rules = rules
        self.observation = observation
        self.source = _AsyncSource(ids, rules)
        self.outbox: AsyncChannel[tuple[int, CancelOutcome]] = AsyncChannel(concurrency)
        self.failure: tuple[str, BaseException] | None = None
        self.halt = AsyncStop()
        self._concurrency = concurrency
        self._scope = AsyncCancelScope()
        self._done = AsyncEvent()
        self._host = async_spawn(self._hosted)

    async def _hosted(self) -> None:
        """Run the workers in a task group; never raises (a worker's crash is kept)."""
        try:
            with self._scope:
                async with AsyncTaskGroup() as group:
                    for _ in range(self._concurrency):
                        group.start_soon(self._work)
        except Exception as exc:  # a worker crashed: a bug, but never a silent end
            self.fail("a worker crashed", _first_leaf(exc))
        finally:
            self.outbox.close_sending()
            self._done.set()

    async def _work(self) -> None:
        with self.observation.worker():  # its calls' spans nest under the batch's
            while not self.halt.is_set:  # a stopped batch starts no other id
                pulled = await self.source.pull()
                if pulled is None:
                    return
                index, item = pulled
                outcome = await self._outcome_of(item)
                if not await self.outbox.send((index, outcome)):
                    return

    async def _outcome_of(self, item: BatchItem) -> CancelOutcome:
        """Exactly one outcome for an item taken, whatever fails around its call."""
        message_id = _message_id(item)
        text = _id_text(message_id)
        late_retry: LateRetry | None = None
        clock_failed: list[Exception] = []
        if isinstance(item, ScheduledMessage):
            try:
                now = self.rules.now()
            except Exception as exc:
                return self._not_sent(text, "the clock failed", exc)
            skipped = _too_late_outcome(item, now)
            if skipped is not None:
                return await self._settled(skipped)
            late_retry = self._late_retry(item, clock_failed)
        try:
            await self.rules.started(text)
        except UnicodeEncodeError as exc:
            return _unrecordable(text, exc)
        except Exception as exc:
            return self._not_sent(text, "the journal could not record a start", exc)
        outcome = await _outcome(self.call, message_id, self.halt, late_retry)
        if clock_failed and outcome.error is not None:
            # Not retried as the clock failed: the error says so, and is caused by it
            # (a rescue takes such an outcome for not final).
            outcome.error.__cause__ = clock_failed[0]
        return await self._settled(outcome)

    def _late_retry(self, message: ScheduledMessage, clock_failed: list[Exception]) -> LateRetry:
        """What stops a retry of ``message`` whose start would fall after its cut-off,
        read on the batch's clock; a clock that fails (kept in ``clock_failed``) stops
        the retry and the batch."""
        cutoff_at = cutoff(message.send_at)

        def refused(wait: float) -> str | None:
            try:
                now = self.rules.now()
            except Exception as exc:
                clock_failed.append(exc)
                self.fail("the clock failed", exc)
                return f"not retried: the clock failed ({type(exc).__name__}: {exc})"
            return retry_past_cutoff(now, cutoff_at, wait)

        return refused

    async def _settled(self, outcome: CancelOutcome) -> CancelOutcome:
        """The outcome as the journal settles it; when it cannot be recorded, the
        outcome as it is (a rerun asks again), and the batch starts no other id."""
        try:
            return await self.rules.settle(outcome)
        except UnicodeEncodeError:
            return outcome
        except Exception as exc:
            self.fail("the journal could not record an outcome", exc)
            return outcome

    def _not_sent(self, text: str, what: str, exc: Exception) -> CancelOutcome:
        self.fail(what, exc)
        error = MailPartnerError(f"not sent: {what} ({type(exc).__name__}: {exc})", message_id=text)
        error.__cause__ = exc
        return CancelOutcome(text, error=error)

    def fail(self, what: str, exc: BaseException) -> None:
        """End the run early: start no other id; the first failure is the one kept."""
        if self.failure is None:
            self.failure = (what, exc)
        self.source.stop()

    def stop(self) -> None:
        """Start nothing more and drop what is in flight, waiting for nothing (safe in
        ``__del__``): the stop shuts the sockets of the attempts in flight down, which
        never blocks."""
        self.outbox.close_receiving()  # first: what the stop aborts is dropped, not given
        self.source.stop()
        self.halt.set()
        self._scope.cancel()

    async def aclose(self) -> None:
        self.stop()
        with AsyncCancelScope(shield=True):
            await self._done.wait()
        async_join(self._host)


class _AsyncSource:
    """The items, numbered, taken by one worker at a time; keeps the iterable's error.

    Plain ids go out as they come; scheduled messages wait in a deadline queue,
    filled up to the window, and go out earliest cut-off first.
    """

    def __init__(self, ids: AsyncIds, rules: _Rules) -> None:
        self._iterator = async_iterate(ids)
        self._rules = rules
        self._lock = AsyncLock()
        self._queue = DeadlineQueue()
        self._taken = 0
        self._done = False
        self._stopped = False
        self.failure: Exception | None = None

    def stop(self) -> None:
        self._stopped = True

    async def pull(self) -> tuple[int, BatchItem] | None:
        async with self._lock:
            while not self._stopped and not self._done and len(self._queue) < self._rules.window:
                item = await self._next()
                if item is None:
                    break
                if not isinstance(item, ScheduledMessage):
                    self._taken += 1
                    return self._taken - 1, item
                self._queue.push(self._taken, item)
                self._taken += 1
            if self._stopped and self.failure is None:
                return None
            return self._queue.pop()

    async def _next(self) -> BatchItem | None:
        """The next item a run needs to start, or None at the end of the input."""
        while True:
            try:
                item = await anext(self._iterator)
            except StopAsyncIteration:
                self._done = True
                return None
            except Exception as exc:
                self._done = True
                self.failure = exc
                return None
            if not self._rules.already_final(item):
                return item


async def _outcome(
    call: AsyncCancelCall, message_id: MessageId, halt: AsyncStop, late_retry: LateRetry | None
) -> CancelOutcome:
    """One id's outcome; whatever goes wrong is on the outcome, never lost."""
    try:
        result = await call(message_id, halt, late_retry)
        return CancelOutcome(_id_text(message_id), result=result)
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


def _too_late_outcome(message: ScheduledMessage, now: datetime) -> CancelOutcome | None:
    """The outcome of a message already too late, given without a request; an error
    outcome when its send time cannot be compared with ``now`` (a broken datetime)."""
    try:
        if not too_late(message.send_at, now):
            return None
        error: MailPartnerError = too_late_error(message, now)
    except Exception as exc:
        error = MailPartnerError(
            f"not sent: its send time cannot be checked ({type(exc).__name__}: {exc})",
            message_id=_id_text(message.message_id),
        )
        error.__cause__ = exc
    return CancelOutcome(_id_text(message.message_id), error=error)


def _unrecordable(text: str, exc: UnicodeEncodeError) -> CancelOutcome:
    error = MailPartnerError(
        "not sent: the journal cannot record this id (it is not valid UTF-8 text); "
        "check how the ids were read",
        message_id=text.encode("utf-8", "backslashreplace").decode(),
    )
    error.__cause__ = exc
    return CancelOutcome(text, error=error)


class _Rules:
    """What a batch does around each call: skip, check the cut-off, journal."""

    def __init__(self, journal: Journal | None, clock: Clock, window: int) -> None:
        self.journal = journal
        self.clock = clock
        self.window = window
        self._opened = False

    def open(self) -> None:
        if self.journal is not None and not self._opened:
            self.journal.open()
            self._opened = True

    def close(self) -> None:
        if self._opened and self.journal is not None:
            self.journal.close()
            self._opened = False

    def already_final(self, item: BatchItem) -> bool:
        return self.journal is not None and self.journal.is_final(_id_text(_message_id(item)))

    def now(self) -> datetime:
        """The clock's time, checked on every reading (a clock may turn naive)."""
        return checked_now(self.clock())

    async def started(self, text: str) -> None:
        if self.journal is not None:
            await async_run_sync(self.journal.record_start, text)

    async def settle(self, outcome: CancelOutcome) -> CancelOutcome:
        if self.journal is None:
            return outcome
        return await async_run_sync(self.journal.settle, outcome)


def check_clock(clock: object) -> Clock:
    """A batch's ``clock``: ``None`` for the current time in UTC, else a callable
    giving an aware time.

    The clock is called once here, so a clock that gives a naive ``datetime`` (or no
    ``datetime``, or raises) is refused before the batch starts, not on its first
    message.
    """
    if clock is None:
        return utc_now
    if not callable(clock):
        raise ConfigurationError(f"clock must be a callable returning a datetime, got {clock!r}")
    try:
        now = clock()
    except Exception as exc:
        raise ConfigurationError(f"the clock raised {type(exc).__name__}: {exc}") from exc
    checked_now(now)
    return clock


def _message_id(item: BatchItem) -> MessageId:
    return item.message_id if isinstance(item, ScheduledMessage) else item


def _as_journal(journal: Journal | str | os.PathLike[str] | None) -> Journal | None:
    if journal is None or isinstance(journal, Journal):
        return journal
    return Journal(journal)


def _id_text(message_id: object) -> str:
    try:
        return str(message_id)
    except Exception:
        return f"<unprintable {type(message_id).__name__}>"


def _first_leaf(exc: BaseException) -> BaseException:
    """The first exception an (exception) group holds, however deep."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


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
