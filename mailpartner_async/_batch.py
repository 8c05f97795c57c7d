"""Batch cancellation: many ids, bounded concurrency, exactly one outcome per id.

``AsyncBatch`` (tasks) and ``Batch`` (threads) are hand-written twins: the client
methods ``cancel_iter`` and ``cancel_many`` are generated from the async client and
only swap one for the other. Both pull ids lazily (a window of ``concurrency`` ids
ahead of what the consumer has taken), so memory stays flat for millions of ids.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Generator,
    Iterable,
)
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeAlias

import anyio

from ._exceptions import (
    AlreadyCancelledError,
    AlreadySentError,
    CancellationTooLateError,
    ConfigurationError,
    MailPartnerError,
    MessageNotFoundError,
)
from ._models import CancelOutcome, CancelResult

# Imported where used: asyncio, concurrent.futures and anyio's memory streams cost
# tens of milliseconds at import, and a plain `cancel()` needs none of them.
if TYPE_CHECKING:
    import asyncio
    import concurrent.futures

    from anyio.streams.memory import MemoryObjectSendStream

__all__ = [
    "AsyncBatch",
    "AsyncIds",
    "Batch",
    "BatchProgress",
    "Ids",
    "MessageId",
    "ProgressCallback",
    "check_concurrency",
]

MessageId: TypeAlias = str | int
Ids: TypeAlias = Iterable[MessageId]
AsyncIds: TypeAlias = Iterable[MessageId] | AsyncIterable[MessageId]


@dataclasses.dataclass(frozen=True, slots=True)
class BatchProgress:
    """Counts after each outcome of a batch, for a progress bar or a summary.

    ``cancelled`` counts successes; ``already_cancelled``, ``too_late``,
    ``already_sent`` and ``not_found`` the matching control codes; ``failed``
    every other error (connection, rate limit, unexpected answers, bad ids).
    """

    done: int = 0
    cancelled: int = 0
    already_cancelled: int = 0
    too_late: int = 0
    already_sent: int = 0
    not_found: int = 0
    failed: int = 0

    def add(self, outcome: CancelOutcome) -> BatchProgress:
        """These counts with one more outcome."""
        field = _category(outcome.error)
        changes = {"done": self.done + 1, field: getattr(self, field) + 1}
        return dataclasses.replace(self, **changes)


ProgressCallback: TypeAlias = Callable[[BatchProgress], object]

_CATEGORIES: tuple[tuple[type[MailPartnerError], str], ...] = (
    (AlreadyCancelledError, "already_cancelled"),
    (CancellationTooLateError, "too_late"),
    (AlreadySentError, "already_sent"),
    (MessageNotFoundError, "not_found"),
)


def _category(error: MailPartnerError | None) -> str:
    if error is None:
        return "cancelled"
    for cls, name in _CATEGORIES:
        if isinstance(error, cls):
            return name
    return "failed"


def check_concurrency(concurrency: object, default: int) -> int:
    """``concurrency`` checked, or ``default`` when it is ``None``."""
    if concurrency is None:
        return default
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigurationError(f"concurrency must be an int >= 1, got {concurrency!r}")
    return concurrency


def _check_ids(ids: object) -> None:
    if isinstance(ids, str | bytes | int):
        raise ConfigurationError(
            f"ids must be an iterable of message ids, not a single {type(ids).__name__}: "
            "wrap one id in a list"
        )
    if not isinstance(ids, Iterable | AsyncIterable):
        raise ConfigurationError(f"ids must be an iterable of message ids, got {ids!r}")


def _outcome_for_exception(message_id: object, exc: Exception) -> CancelOutcome:
    if isinstance(exc, MailPartnerError):
        return CancelOutcome(str(message_id), error=exc)
    # A bug, ours or in a transport: still one outcome for this id, never a lost id.
    error = MailPartnerError(f"unexpected {type(exc).__name__}: {exc}", message_id=str(message_id))
    error.__cause__ = exc
    return CancelOutcome(str(message_id), error=error)


@dataclasses.dataclass(slots=True)
class _Failure:
    """The ids iterable itself raised: the batch stops and the consumer sees it."""

    error: BaseException


# --- async --------------------------------------------------------------------------


class _AsyncRun:
    """The workers of one batch, run in a task the consumer does not own.

    Kept apart from :class:`AsyncBatch` so that the handle can be garbage-collected
    (and so stop the run) when a consumer breaks out of ``async for``.
    """

    def __init__(
        self,
        call: Callable[[MessageId], Awaitable[CancelResult]],
        ids: AsyncIds,
        concurrency: int,
        send: MemoryObjectSendStream[tuple[int, CancelOutcome] | _Failure],
    ) -> None:
        self.call = call
        self.ids = ids
        self.concurrency = concurrency
        self.send = send
        self.counter = itertools.count()
        # Made by start(), inside the consumer's event loop.
        self.scope: anyio.CancelScope | None = None
        self.finished: anyio.Event | None = None

    def start(self) -> None:
        self.scope = anyio.CancelScope()
        self.finished = anyio.Event()
        _spawn(self.run)

    def stop(self) -> None:
        if self.scope is not None and self.finished is not None and not self.finished.is_set():
            self.scope.cancel()

    async def run(self) -> None:
        assert self.scope is not None
        assert self.finished is not None
        try:
            with self.scope:
                async with self.send, anyio.create_task_group() as group:
                    pull = self._puller()
                    for _ in range(self.concurrency):
                        group.start_soon(self._worker, pull, self.send.clone())
        finally:
            self.finished.set()

    def _puller(self) -> Callable[[], Awaitable[tuple[int, MessageId] | None]]:
        ids = self.ids
        lock = anyio.Lock()
        if isinstance(ids, AsyncIterable):
            iterator: AsyncIterator[MessageId] = aiter(ids)

            async def pull_async() -> tuple[int, MessageId] | None:
                async with lock:
                    try:
                        item = await anext(iterator)
                    except StopAsyncIteration:
                        return None
                    return next(self.counter), item

            return pull_async
        sync_iterator = iter(ids)

        async def pull_sync() -> tuple[int, MessageId] | None:
            async with lock:
                item = next(sync_iterator, _END)
                if item is _END:
                    return None
                return next(self.counter), item

        return pull_sync

    async def _worker(
        self,
        pull: Callable[[], Awaitable[tuple[int, MessageId] | None]],
        send: MemoryObjectSendStream[tuple[int, CancelOutcome] | _Failure],
    ) -> None:
        async with send:
            while True:
                try:
                    pulled = await pull()
                except Exception as exc:
                    await self._deliver(send, _Failure(exc))
                    self.stop()
                    return
                if pulled is None:
                    return
                index, message_id = pulled
                try:
                    outcome = CancelOutcome(str(message_id), result=await self.call(message_id))
                except Exception as exc:
                    outcome = _outcome_for_exception(message_id, exc)
                if not await self._deliver(send, (index, outcome)):
                    return

    async def _deliver(
        self,
        send: MemoryObjectSendStream[tuple[int, CancelOutcome] | _Failure],
        item: tuple[int, CancelOutcome] | _Failure,
    ) -> bool:
        try:
            await send.send(item)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            # The consumer is gone: nobody will read further outcomes.
            self.stop()
            return False
        return True


_END: Any = object()


def _spawn(run: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Start ``run`` as a task of the current event loop that nobody awaits."""
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        import trio  # only reached under trio, which is then installed

        trio.lowlevel.spawn_system_task(run)
    else:
        task = loop.create_task(run())
        _RUNNING.add(task)
        task.add_done_callback(_RUNNING.discard)


# asyncio keeps only weak references to tasks: hold them until they finish.
_RUNNING: set[asyncio.Task[None]] = set()


class AsyncBatch:
    """Outcomes of a batch in completion order: ``async for outcome in batch``.

    Work starts at the first ``async for`` step (or ``async with``) and stops when
    the ids run out, on :meth:`aclose`, on leaving ``async with``, or when the
    consumer breaks out of the loop or is cancelled and drops this object.
    """

    def __init__(
        self,
        call: Callable[[MessageId], Awaitable[CancelResult]],
        ids: AsyncIds,
        *,
        concurrency: int,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        _check_ids(ids)
        send, self._receive = anyio.create_memory_object_stream[
            tuple[int, CancelOutcome] | _Failure
        ](max_buffer_size=concurrency)
        self._run: _AsyncRun | None = _AsyncRun(call, ids, concurrency, send)
        self._on_progress = on_progress
        self.progress = BatchProgress()

    def _start(self) -> None:
        if self._run is not None and self._run.scope is None:
            self._run.start()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> CancelOutcome:
        return (await self.next_indexed())[1]

    async def next_indexed(self) -> tuple[int, CancelOutcome]:
        """The next outcome with the position of its id in the input."""
        self._start()
        try:
            item = await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None
        if isinstance(item, _Failure):
            raise item.error
        self.progress = self.progress.add(item[1])
        if self._on_progress is not None:
            self._on_progress(self.progress)
        return item

    async def __aenter__(self) -> Self:
        self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the workers and wait until they are gone."""
        run, self._run = self._run, None
        self._receive.close()
        if run is not None and run.finished is not None:
            run.stop()
            with anyio.CancelScope(shield=True):
                await run.finished.wait()

    def __del__(self) -> None:
        # No I/O: only ask the run to stop (the consumer broke out of `async for`).
        run = getattr(self, "_run", None)
        if run is not None:
            run.stop()
            self._receive.close()


# --- sync ---------------------------------------------------------------------------


class Batch:
    """Outcomes of a batch in completion order: ``for outcome in batch``.

    Runs on a pool of ``concurrency`` threads. Work starts at the first step and
    stops when the ids run out, on :meth:`close`, on leaving ``with``, or when the
    loop is left early (the generator behind it is closed).
    """

    def __init__(
        self,
        call: Callable[[MessageId], CancelResult],
        ids: Ids,
        *,
        concurrency: int,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        _check_ids(ids)
        if not isinstance(ids, Iterable):
            raise ConfigurationError("the sync client takes a sync iterable of ids")
        self._on_progress = on_progress
        self.progress = BatchProgress()
        # A module-level generator: one holding `self` would make a reference cycle,
        # and leaving a loop early would then not stop the threads until gc ran.
        self._generator = _run_in_threads(call, ids, concurrency)

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> CancelOutcome:
        return self.next_indexed()[1]

    def next_indexed(self) -> tuple[int, CancelOutcome]:
        """The next outcome with the position of its id in the input."""
        index, outcome = next(self._generator)
        self.progress = self.progress.add(outcome)
        if self._on_progress is not None:
            self._on_progress(self.progress)
        return index, outcome

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop: ids not started are dropped, requests in flight finish."""
        self._generator.close()


def _outcome_in_thread(
    call: Callable[[MessageId], CancelResult], message_id: MessageId
) -> CancelOutcome:
    try:
        return CancelOutcome(str(message_id), result=call(message_id))
    except Exception as exc:
        return _outcome_for_exception(message_id, exc)


def _run_in_threads(
    call: Callable[[MessageId], CancelResult], ids: Ids, concurrency: int
) -> Generator[tuple[int, CancelOutcome]]:
    import concurrent.futures

    numbered = enumerate(ids)
    executor = concurrent.futures.ThreadPoolExecutor(
        concurrency, thread_name_prefix="mailpartner-batch"
    )
    pending: dict[concurrent.futures.Future[CancelOutcome], int] = {}
    try:
        exhausted = False
        while True:
            while not exhausted and len(pending) < concurrency:
                pulled = next(numbered, None)
                if pulled is None:
                    exhausted = True
                    break
                index, message_id = pulled
                pending[executor.submit(_outcome_in_thread, call, message_id)] = index
            if not pending:
                return
            done, _ = concurrent.futures.wait(
                pending, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in done:
                yield pending.pop(future), future.result()
    finally:
        for future in pending:
            future.cancel()
        executor.shutdown(wait=True, cancel_futures=True)
