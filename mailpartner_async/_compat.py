"""Paired names for what waits, async and sync: thin aliases and wrappers, no algorithm.

Everything that waits is written once, in ``_async/``, against the ``Async*`` names
and ``async_*`` functions here; ``scripts/generate_sync.py`` renames them to their
sync twins to make ``_sync/``. Each pair means the same, with one difference that
the one source handles explicitly: an anyio cancel scope interrupts any await,
while a sync thread is never interrupted. The sync :class:`CancelScope` does
nothing, so the source checks its own stop flag between steps, and a blocking read
ends by its time-out or by its connection being closed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import anyio
import anyio.to_thread

__all__ = [
    "AsyncCancelScope",
    "AsyncEvent",
    "AsyncLimiter",
    "AsyncLock",
    "AsyncTaskGroup",
    "CancelScope",
    "Event",
    "Limiter",
    "Lock",
    "TaskGroup",
    "async_checkpoint",
    "async_iterate",
    "async_join",
    "async_loop_token",
    "async_move_on_after",
    "async_run_sync",
    "async_sleep",
    "async_spawn",
    "async_thread_lock",
    "async_wait_for",
    "checkpoint",
    "iterate",
    "join",
    "loop_token",
    "monotonic",
    "move_on_after",
    "run_sync",
    "sleep",
    "spawn",
    "thread_lock",
    "utc_now",
    "wait_for",
]

T = TypeVar("T")

monotonic = time.monotonic


def utc_now() -> datetime:
    """The current time, aware, in UTC: the default clock of a batch."""
    return datetime.now(UTC)


# --- waiting ----------------------------------------------------------------------------

async_sleep = anyio.sleep
sleep = time.sleep


async def async_checkpoint() -> None:
    """Raise here if the task was cancelled (a cancelled consumer stops at once)."""
    from anyio.lowlevel import checkpoint_if_cancelled

    await checkpoint_if_cancelled()


def checkpoint() -> None:
    """A thread has no cancellation to deliver: nothing to do."""


async def async_wait_for(event: anyio.Event, seconds: float) -> None:
    """Wait until ``event`` is set, ``seconds`` at most."""
    with anyio.move_on_after(seconds):
        await event.wait()


def wait_for(event: threading.Event, seconds: float) -> None:
    """Block until ``event`` is set, ``seconds`` at most."""
    event.wait(seconds)


async def async_run_sync(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in a worker thread, off the event loop (a blocking write, fsync)."""
    return await anyio.to_thread.run_sync(func, *args)


def run_sync(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)``, in the calling thread: a sync caller blocks anyway."""
    return func(*args)


# --- locks, events, limits ----------------------------------------------------------------


def AsyncLock() -> anyio.Lock:
    """A lock for the tasks of one loop, taken without a trip round the loop when free."""
    return anyio.Lock(fast_acquire=True)


Lock = threading.Lock


AsyncEvent = anyio.Event
Event = threading.Event


def AsyncLimiter(limit: int) -> anyio.Semaphore:
    """At most ``limit`` holders at once, FIFO; bound to the loop of its first use."""
    return anyio.Semaphore(limit, fast_acquire=True)


Limiter = threading.BoundedSemaphore


def async_thread_lock() -> nullcontext[None]:
    """Guards state shared by threads; the tasks of one loop share no thread: nothing."""
    return nullcontext()


thread_lock = threading.RLock


def async_loop_token() -> object:
    """The running event loop (anyio's token for it, comparable, with its backend)."""
    from anyio.lowlevel import current_token  # not loaded with the SDK

    return current_token()


def loop_token() -> object:
    """A thread runs no event loop: ``None``."""
    return None


# --- iterating ------------------------------------------------------------------------------


class _AsyncOverSync(Generic[T]):
    """An async iterator over a sync iterator (a class, not an async generator:
    nothing to finalize when it is dropped half-way)."""

    __slots__ = ("_iterator",)

    def __init__(self, iterator: Iterator[T]) -> None:
        self._iterator = iterator

    def __aiter__(self) -> _AsyncOverSync[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return next(self._iterator)
        except StopIteration:
            raise StopAsyncIteration from None


def async_iterate(items: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    """An async iterator over a sync or an async iterable."""
    if isinstance(items, AsyncIterable):
        return aiter(items)
    return _AsyncOverSync(iter(items))


iterate = iter


# --- tasks ---------------------------------------------------------------------------------

AsyncCancelScope = anyio.CancelScope
AsyncTaskGroup = anyio.create_task_group


class CancelScope:
    """A thread cannot be cancelled: :meth:`cancel` only records that it was asked."""

    __slots__ = ("cancel_called",)

    def __init__(self, *, shield: bool = False) -> None:
        del shield  # nothing to shield from
        self.cancel_called = False

    def __enter__(self) -> CancelScope:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def cancel(self) -> None:
        self.cancel_called = True


class TaskGroup:
    """``with TaskGroup() as group: group.start_soon(func)``: one thread per call;
    leaving the block joins them all and raises what they raised, as an
    ``ExceptionGroup``, as an anyio task group does."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._errors: list[Exception] = []

    def __enter__(self) -> TaskGroup:
        return self

    def start_soon(self, func: Callable[[], object]) -> None:
        def run() -> None:
            try:
                func()
            except Exception as exc:
                self._errors.append(exc)

        thread = threading.Thread(target=run, name=f"mailpartner-{len(self._threads)}")
        self._threads.append(thread)
        thread.start()

    def __exit__(self, *exc_info: object) -> None:
        for thread in self._threads:
            thread.join()
        if self._errors:
            raise ExceptionGroup("unhandled errors in a TaskGroup", self._errors)


async_move_on_after = anyio.move_on_after


def move_on_after(seconds: float | None) -> CancelScope:
    """A thread's waits end by their own time-outs (see :class:`CancelScope`)."""
    return CancelScope()


def async_spawn(func: Callable[[], Any]) -> object:
    """Start ``func()`` as a task of the running loop that nobody awaits; hold the
    returned handle for as long as it runs (asyncio keeps only weak references).
    ``func`` must not raise: under trio it would end the whole run."""
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        import trio  # only reached under trio, which is then installed

        trio.lowlevel.spawn_system_task(func)
        return None
    return loop.create_task(func())


def spawn(func: Callable[[], Any]) -> object:
    """Start ``func()`` in a thread of its own; the handle is the thread."""
    thread = threading.Thread(target=func, name="mailpartner-batch")
    thread.start()
    return thread


def async_join(handle: object) -> None:
    """A task that said it is done is done: nothing to wait for."""


def join(handle: object) -> None:
    """Wait until the thread :func:`spawn` started has ended."""
    if isinstance(handle, threading.Thread):
        handle.join()
