"""Paired names for what waits, async and sync: thin aliases and wrappers, no algorithm.

Everything that waits is written once, in ``_async/``, against the ``Async*`` names
and ``async_*`` functions here; ``scripts/generate_sync.py`` renames them to their
sync twins to make ``_sync/``. The one difference the source handles itself: an
anyio cancel scope interrupts any await, a thread is never interrupted, so the sync
:class:`CancelScope` only records the request and the source checks its own stop.
The sync task group and cancel scope have a little logic of their own: they are in
:mod:`mailpartner_async._threads`, and named here with the rest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

from ._threads import CancelScope, TaskGroup

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
async_sleep = anyio.sleep
sleep = time.sleep
AsyncEvent = anyio.Event
Event = threading.Event
Lock = threading.Lock
Limiter = threading.BoundedSemaphore
thread_lock = threading.RLock
iterate = iter
AsyncCancelScope = anyio.CancelScope
AsyncTaskGroup = anyio.create_task_group


def utc_now() -> datetime:
    """The current time, aware, in UTC: the default clock of a batch."""
    return datetime.now(UTC)


def AsyncLock() -> anyio.Lock:
    """A lock taken without a trip round the event loop when it is free."""
    return anyio.Lock(fast_acquire=True)


def AsyncLimiter(limit: int) -> anyio.Semaphore:
    """At most ``limit`` holders at once, FIFO; bound to the loop of its first use."""
    return anyio.Semaphore(limit, fast_acquire=True)


def async_thread_lock() -> nullcontext[None]:
    """A guard for state threads share; the tasks of one loop need none."""
    return nullcontext()


async def async_checkpoint() -> None:
    """Raise here if the task was cancelled."""
    await anyio.lowlevel.checkpoint_if_cancelled()


def checkpoint() -> None:
    """A thread has no cancellation to deliver."""


async def async_wait_for(event: anyio.Event, seconds: float) -> None:
    """Wait until ``event`` is set, ``seconds`` at most."""
    with anyio.move_on_after(seconds):
        await event.wait()


def wait_for(event: threading.Event, seconds: float) -> None:
    event.wait(seconds)


async def async_run_sync(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in a worker thread, off the event loop (a blocking write)."""
    return await anyio.to_thread.run_sync(func, *args)


def run_sync(func: Callable[..., T], *args: Any) -> T:
    return func(*args)


def async_loop_token() -> object:
    """The running event loop, as anyio names it (comparable, with its backend)."""
    return anyio.lowlevel.current_token()


def loop_token() -> object:
    """A thread runs no event loop."""
    return None


class _AsyncOverSync(Generic[T]):
    """An async iterator over a sync one (a class: nothing to finalize if dropped)."""

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
    return aiter(items) if isinstance(items, AsyncIterable) else _AsyncOverSync(iter(items))


async_move_on_after = anyio.move_on_after


def move_on_after(seconds: float | None) -> CancelScope:
    """A thread's waits end by their own time-outs (see :class:`CancelScope`)."""
    return CancelScope()


def async_spawn(func: Callable[[], Any]) -> object:
    """Start ``func()`` as a task nobody awaits; hold the handle while it runs. Under
    trio it is a system task: ``func`` must not raise."""
    import asyncio

    try:
        return asyncio.get_running_loop().create_task(func())
    except RuntimeError:
        import trio  # only reached under trio, which is then installed

        trio.lowlevel.spawn_system_task(func)
        return None


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
