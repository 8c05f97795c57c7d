"""What a batch of the async client takes: its ids, the call it makes for each, and
the stop it hands that call."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable
from typing import Protocol, TypeAlias

from .._compat import AsyncEvent, async_thread_lock, async_wait_for
from .._core.models import BatchItem, CancelResult, MessageId
from .._core.rescue import LateRetry

__all__ = ["ASYNC_ID_SOURCES", "AsyncCancelCall", "AsyncIds", "AsyncStop"]

# Plain ids or scheduled messages, from any iterable (async ones too, in an async batch).
AsyncIds: TypeAlias = Iterable[BatchItem] | AsyncIterable[BatchItem]
ASYNC_ID_SOURCES: tuple[type, ...] = (Iterable, AsyncIterable)


class AsyncStop:
    """A batch's stop, set once and checked by the call: a stopped batch starts no
    retry, a retry's backoff ends as soon as the stop comes, and the attempts in
    flight are aborted then.

    An attempt that can be aborted (its blocking read ended at once, by shutting its
    connection) registers how with :meth:`add` for as long as it runs; :meth:`set`
    calls each, in the caller's thread. An abort must not block or raise.
    """

    __slots__ = ("_aborts", "_event", "_lock")

    def __init__(self) -> None:
        self._event = AsyncEvent()
        self._aborts: set[Callable[[], None]] = set()
        self._lock = async_thread_lock()

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        with self._lock:
            self._event.set()
            aborts, self._aborts = self._aborts, set()
        for abort in aborts:
            abort()

    def add(self, abort: Callable[[], None]) -> None:
        """Have the stop call ``abort()``; at once if it came already."""
        with self._lock:
            if not self._event.is_set():
                self._aborts.add(abort)
                return
        abort()

    def discard(self, abort: Callable[[], None]) -> None:
        """The attempt is over: the stop no longer calls ``abort()``."""
        with self._lock:
            self._aborts.discard(abort)

    async def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``, unless the stop comes first; whether it came."""
        await async_wait_for(self._event, seconds)
        return self._event.is_set()


class AsyncCancelCall(Protocol):
    """The call a batch makes for each id: the client's cancel, told the batch's stop
    and, when the id's send time is known, what stops a retry past its cut-off."""

    async def __call__(
        self, message_id: MessageId, halt: AsyncStop, late_retry: LateRetry | None, /
    ) -> CancelResult: ...
