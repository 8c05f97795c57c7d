"""The only hand-written async/sync pairs: sleep, lock, limiter, pacer, channel, workers.

Everything that waits is written once, in ``_async/``, against the ``Async*`` names
and ``async_*`` functions here; ``scripts/generate_sync.py`` renames them to their
twins to make ``_sync/``. Each pair has the same semantics, with one translation:
where the async side is cancelled (anyio cancel scopes), a sync worker thread is
*stopped*: every wait in this module (:func:`sleep`, :meth:`Pacer.wait`,
:meth:`Channel.send`) raises :class:`WorkerStopped` once its :class:`Workers` group
was told to stop, so a stopped thread starts no new attempt and no retry.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

import anyio

from ._exceptions import ConfigurationError, MailPartnerError
from ._pacing import RateSchedule

if TYPE_CHECKING:
    import asyncio

    from anyio.lowlevel import EventLoopToken


__all__ = [
    "AsyncChannel",
    "AsyncDeadline",
    "AsyncLimiter",
    "AsyncLock",
    "AsyncLoopGuard",
    "AsyncPacer",
    "AsyncPacing",
    "AsyncWorkers",
    "Channel",
    "Deadline",
    "Limiter",
    "Lock",
    "LoopGuard",
    "Pacer",
    "Pacing",
    "RateLimiter",
    "WorkerStopped",
    "Workers",
    "async_iterate",
    "async_sleep",
    "deadline_remaining",
    "iterate",
    "sleep",
]

T = TypeVar("T")
_Work = Callable[[], Coroutine[Any, Any, None]]


class WorkerStopped(BaseException):
    """Raised in a sync worker thread whose group was stopped: the thread's cancellation.

    A ``BaseException``, like anyio's cancellation, so that ``except Exception`` in
    the code it unwinds does not swallow it.
    """


_current = threading.local()


def _stop_event() -> threading.Event | None:
    event: threading.Event | None = getattr(_current, "stop", None)
    return event


# --- sleeping and iterating ------------------------------------------------------------


async def async_sleep(seconds: float) -> None:
    """Wait without blocking the event loop; a cancel scope interrupts it."""
    await anyio.sleep(seconds)


def sleep(seconds: float) -> None:
    """Block the calling thread; in a stopped worker thread, raise :class:`WorkerStopped`."""
    stop = _stop_event()
    if stop is None:
        time.sleep(seconds)
    elif stop.wait(max(seconds, 0.0)) or stop.is_set():
        raise WorkerStopped


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


def iterate(items: Iterable[T]) -> Iterator[T]:
    """An iterator over ``items`` (the sync twin of :func:`async_iterate`)."""
    return iter(items)


# --- deadlines -------------------------------------------------------------------------


class AsyncDeadline:
    """``with AsyncDeadline(seconds) as deadline:`` cancels the block after ``seconds``
    (``None``: never); :attr:`expired` then says so. :meth:`check` is a no-op here:
    the cancel scope interrupts any wait."""

    __slots__ = ("_scope",)

    def __init__(self, seconds: float | None) -> None:
        self._scope = anyio.move_on_after(seconds if seconds is not None else math.inf)

    def __enter__(self) -> AsyncDeadline:
        self._scope.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> bool:
        return bool(self._scope.__exit__(*exc_info))

    @property
    def expired(self) -> bool:
        return self._scope.cancelled_caught

    def check(self) -> None:
        return None


class Deadline:
    """The thread's :class:`AsyncDeadline`: a blocking socket cannot be cancelled, so
    the block's deadline is published to the thread, and the SDK's network streams
    clip every read and write to what is left (:func:`deadline_remaining`).
    :meth:`check`, called between reads, ends the block once it is past."""

    __slots__ = ("_at", "_outer", "expired")

    def __init__(self, seconds: float | None) -> None:
        self._at = time.monotonic() + seconds if seconds is not None else None
        self._outer: float | None = None
        self.expired = False

    def __enter__(self) -> Deadline:
        self._outer = getattr(_current, "deadline", None)
        _current.deadline = self._at
        return self

    def __exit__(self, *exc_info: Any) -> bool:
        _current.deadline = self._outer
        if isinstance(exc_info[1], _DeadlinePassed):
            self.expired = True
            return True
        return False

    def check(self) -> None:
        if self._at is not None and time.monotonic() >= self._at:
            raise _DeadlinePassed


class _DeadlinePassed(Exception):
    """Ends a :class:`Deadline` block from :meth:`Deadline.check`."""


def deadline_remaining() -> float | None:
    """Seconds left before the calling thread's :class:`Deadline` (``None``: none)."""
    at: float | None = getattr(_current, "deadline", None)
    return None if at is None else at - time.monotonic()


# --- locks and limits ------------------------------------------------------------------


class _Waiters:
    """Tasks waiting for something another task frees: the event is made by the first
    that has to wait, and set (and dropped) by :meth:`wake`, so nothing is made or
    set while nobody waits."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event: anyio.Event | None = None

    async def wait(self) -> None:
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()

    def wake(self) -> None:
        event, self._event = self._event, None
        if event is not None:
            event.set()


class AsyncLock:
    """A mutual-exclusion lock for the tasks of one event loop.

    Taken at once, without a trip round the loop, when it is free (a batch takes it
    for every id); a task that finds it held waits for its release.
    """

    __slots__ = ("_held", "_released")

    def __init__(self) -> None:
        self._held = False
        self._released = _Waiters()

    async def __aenter__(self) -> None:
        while self._held:
            await self._released.wait()
        self._held = True

    async def __aexit__(self, *exc_info: object) -> None:
        self._held = False
        self._released.wake()


class Lock:
    """A mutual-exclusion lock for threads."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


class AsyncLimiter:
    """At most ``limit`` holders at once, FIFO; bound to the loop of its first use."""

    __slots__ = ("_limit", "_semaphore")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._semaphore: anyio.Semaphore | None = None

    async def __aenter__(self) -> None:
        semaphore = self._semaphore
        if semaphore is None:
            semaphore = self._semaphore = anyio.Semaphore(self._limit, fast_acquire=True)
        await semaphore.acquire()

    async def __aexit__(
        self,
        *exc_info: object,
    ) -> None:
        assert self._semaphore is not None
        self._semaphore.release()


class Limiter:
    """At most ``limit`` threads hold it at once."""

    __slots__ = ("_semaphore",)

    def __init__(self, limit: int) -> None:
        self._semaphore = threading.BoundedSemaphore(limit)

    def __enter__(self) -> None:
        self._semaphore.acquire()

    def __exit__(
        self,
        *exc_info: object,
    ) -> None:
        self._semaphore.release()


class AsyncPacer:
    """Waits for a start time from a shared :class:`RateSchedule`.

    A pause set by any caller (a 429, a ``Retry-After``) holds back every caller
    that has not started yet, including those already waiting for their turn.
    """

    __slots__ = ("schedule",)

    def __init__(self, per_minute: int | None) -> None:
        self.schedule = RateSchedule(per_minute)

    async def wait(self) -> None:
        schedule = self.schedule
        now = time.monotonic()
        start = schedule.reserve(now)
        while start > now:
            await anyio.sleep(start - now)
            now = time.monotonic()
            start = schedule.confirm(start, now)

    async def pause(self, seconds: float) -> None:
        self.schedule.pause_until(time.monotonic() + seconds)

    async def aclose(self) -> None:
        return None


class Pacer:
    """The thread-safe :class:`AsyncPacer`; a stopped worker stops waiting."""

    __slots__ = ("_lock", "schedule")

    def __init__(self, per_minute: int | None) -> None:
        self.schedule = RateSchedule(per_minute)
        self._lock = threading.Lock()

    def wait(self) -> None:
        schedule = self.schedule
        now = time.monotonic()
        with self._lock:
            start = schedule.reserve(now)
        while start > now:
            sleep(start - now)
            now = time.monotonic()
            with self._lock:
                start = schedule.confirm(start, now)

    def pause(self, seconds: float) -> None:
        with self._lock:
            self.schedule.pause_until(time.monotonic() + seconds)

    def close(self) -> None:
        return None


class AsyncPacing(Protocol):
    """What the async client needs of a pacer: :class:`AsyncPacer`, or a shared one."""

    async def wait(self) -> None:
        """Return once the next request may start."""

    async def pause(self, seconds: float) -> None:
        """Hold back every start (of everyone sharing the pace) for ``seconds``."""

    async def aclose(self) -> None:
        """Release what the pacer holds (connections); called when the client closes."""


class Pacing(Protocol):
    """The sync twin of :class:`AsyncPacing`: :class:`Pacer`, or a shared one."""

    def wait(self) -> None:
        """Return once the next request may start."""

    def pause(self, seconds: float) -> None:
        """Hold back every start (of everyone sharing the pace) for ``seconds``."""

    def close(self) -> None:
        """Release what the pacer holds (connections); called when the client closes."""


@runtime_checkable
class RateLimiter(Protocol):
    """The ``rate_limiter=`` hook of both clients: a pace shared beyond one client.

    Each client asks it for one pacer when it starts (and again in a forked
    child): :meth:`async_pacer` for :class:`AsyncMailPartner`, :meth:`pacer` for
    ``MailPartner``. The client waits on that pacer before every attempt, pauses it
    on a 429 or a ``Retry-After``, and closes it with the client; its own
    ``rate_limit`` pacing is then unused. See
    :class:`mailpartner_async.redis.RedisRateLimiter`.
    """

    def async_pacer(self) -> AsyncPacing:
        """A new pacer for one async client."""
        ...

    def pacer(self) -> Pacing:
        """A new pacer for one sync client, safe to share between its threads."""
        ...


class AsyncLoopGuard:
    """Remembers the event loop a client first ran on and refuses any other.

    An HTTP connection pool belongs to one event loop; used from another it hangs
    or fails obscurely, so the client fails first, with a clear message.
    ``asyncio_only`` refuses trio (for transports built on asyncio).
    """

    __slots__ = ("_asyncio_only", "_token")

    def __init__(self, *, asyncio_only: bool = False) -> None:
        self._token: object = None
        self._asyncio_only = asyncio_only

    def check(self) -> None:
        token = _loop_token()
        if self._asyncio_only and not token.backend_class.__module__.endswith("_asyncio"):
            raise ConfigurationError("this transport runs on asyncio only; use transport='httpx'")
        if self._token is None:
            self._token = token
        elif token != self._token:
            raise MailPartnerError(
                "this client was first used in another event loop; an HTTP connection "
                "pool cannot move between loops: create one client per event loop "
                "(for example in your app's lifespan)"
            )

    def foreign(self) -> bool:
        """Whether the client already ran on an event loop other than this one."""
        return self._token is not None and _loop_token() != self._token


async def _checkpoint_if_cancelled() -> None:
    # Imported here, like the loop token: anyio.lowlevel is not loaded with the SDK.
    from anyio.lowlevel import checkpoint_if_cancelled

    await checkpoint_if_cancelled()


def _loop_token() -> EventLoopToken:
    # anyio.lowlevel is imported at the first call, not with the SDK.
    from anyio.lowlevel import current_token

    return current_token()


class LoopGuard:
    """A sync client belongs to no event loop: nothing to check."""

    __slots__ = ()

    def __init__(self, *, asyncio_only: bool = False) -> None:
        del asyncio_only  # the sync client has no async-only transport

    def check(self) -> None:
        return None

    def foreign(self) -> bool:
        return False


# --- a channel from workers to one consumer ---------------------------------------------


class AsyncChannel(Generic[T]):
    """A bounded queue from many producer tasks to one consumer.

    :meth:`send` waits while ``capacity`` items are queued and returns ``False``
    once the consumer closed its end. :meth:`receive` returns ``None`` once the
    producers closed theirs and the queue is drained. Neither yields to the event
    loop when it need not wait (a batch hands over thousands of outcomes a second,
    and each yield is a trip round the loop). :meth:`close_sending` and
    :meth:`close_receiving` do no I/O (safe in ``__del__``).
    """

    __slots__ = ("_capacity", "_items", "_readable", "_receiving", "_sending", "_writable")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: collections.deque[T] = collections.deque()
        self._sending = self._receiving = True
        self._readable = _Waiters()
        self._writable = _Waiters()

    async def send(self, item: T) -> bool:
        while self._receiving and len(self._items) >= self._capacity:
            await self._writable.wait()
        if not self._receiving:
            return False
        self._items.append(item)
        self._readable.wake()
        return True

    async def receive(self) -> T | None:
        # A cancelled consumer stops here even while outcomes are queued.
        await _checkpoint_if_cancelled()
        while not self._items and self._sending and self._receiving:
            await self._readable.wait()
        if not self._items or not self._receiving:
            return None
        item = self._items.popleft()
        self._writable.wake()
        return item

    def close_sending(self) -> None:
        self._sending = False
        self._readable.wake()

    def close_receiving(self) -> None:
        self._receiving = False
        self._items.clear()
        self._writable.wake()
        self._readable.wake()


class Channel(Generic[T]):
    """The thread-safe :class:`AsyncChannel`; a stopped producer stops waiting."""

    __slots__ = ("_capacity", "_changed", "_items", "_receiving", "_sending")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: collections.deque[T] = collections.deque()
        self._changed = threading.Condition()
        self._sending = self._receiving = True

    def send(self, item: T) -> bool:
        stop = _stop_event()
        with self._changed:
            while len(self._items) >= self._capacity and self._receiving:
                if stop is not None and stop.is_set():
                    raise WorkerStopped
                self._changed.wait(0.05 if stop is not None else None)
            if not self._receiving:
                return False
            self._items.append(item)
            self._changed.notify_all()
            return True

    def receive(self) -> T | None:
        with self._changed:
            while not self._items and self._sending and self._receiving:
                self._changed.wait()
            if not self._items or not self._receiving:
                return None
            item = self._items.popleft()
            self._changed.notify_all()
            return item

    def close_sending(self) -> None:
        with self._changed:
            self._sending = False
            self._changed.notify_all()

    def close_receiving(self) -> None:
        with self._changed:
            self._receiving = False
            self._items.clear()
            self._changed.notify_all()


# --- background workers ---------------------------------------------------------------


class AsyncWorkers:
    """``count`` copies of ``work`` in the background, in a task nobody awaits.

    The task belongs to no caller's task group, so a consumer that simply stops
    iterating (``break``) and drops its handle does not block: :meth:`stop` cancels
    the workers without I/O (safe in ``__del__``) and :meth:`wait` waits for them to
    be gone. ``finished`` runs once every worker returned, whatever the reason.
    ``work`` must not raise: under trio an exception there would end the whole run.
    """

    __slots__ = ("_done", "_scope")

    def __init__(self) -> None:
        self._scope: anyio.CancelScope | None = None
        self._done: anyio.Event | None = None

    def start(self, count: int, work: _Work, finished: Callable[[], None]) -> None:
        self._scope = anyio.CancelScope()
        self._done = anyio.Event()
        _spawn(self._run, count, work, finished)

    async def _run(self, count: int, work: _Work, finished: Callable[[], None]) -> None:
        assert self._scope is not None
        assert self._done is not None
        try:
            with self._scope:
                async with anyio.create_task_group() as group:
                    for _ in range(count):
                        group.start_soon(work)
        finally:
            finished()
            self._done.set()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called: a worker starts nothing new then."""
        return self._scope is not None and self._scope.cancel_called

    def stop(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    async def wait(self) -> None:
        if self._done is not None:
            with anyio.CancelScope(shield=True):
                await self._done.wait()


def _spawn(run: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
    """Start ``run(*args)`` as a task of the current event loop that nobody awaits."""
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        import trio  # only reached under trio, which is then installed

        trio.lowlevel.spawn_system_task(run, *args)
    else:
        task = loop.create_task(run(*args))
        _RUNNING.add(task)
        task.add_done_callback(_RUNNING.discard)


# asyncio keeps only weak references to tasks: hold them until they finish.
_RUNNING: set[asyncio.Task[None]] = set()


class Workers:
    """``count`` threads running ``work``; :meth:`stop` makes their waits raise
    :class:`WorkerStopped` (a request in flight ends within its time-out first)."""

    __slots__ = ("_left", "_lock", "_stop", "_threads")

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._left = 0

    def start(self, count: int, work: Callable[[], None], finished: Callable[[], None]) -> None:
        self._left = count
        for number in range(count):
            thread = threading.Thread(
                target=self._run,
                args=(work, finished),
                name=f"mailpartner-batch-{number}",
                # Not a daemon: at exit, a request in flight ends (within its
                # time-out) rather than being cut mid-answer.
                daemon=False,
            )
            self._threads.append(thread)
            thread.start()

    def _run(self, work: Callable[[], None], finished: Callable[[], None]) -> None:
        _current.stop = self._stop
        try:
            work()
        except WorkerStopped:
            pass
        finally:
            with self._lock:
                self._left -= 1
                last = self._left == 0
            if last:
                finished()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called: a worker starts nothing new then."""
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()

    def wait(self) -> None:
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()
