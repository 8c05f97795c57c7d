"""A bounded queue from a batch's workers to its one consumer."""

from __future__ import annotations

import collections
from typing import Generic, TypeVar

from .._compat import AsyncEvent, async_checkpoint, async_thread_lock

__all__ = ["AsyncChannel"]

T = TypeVar("T")


class AsyncChannel(Generic[T]):
    """A bounded queue from many producers to one consumer.

    :meth:`send` waits while ``capacity`` items are queued and returns ``False``
    once the consumer closed its end. :meth:`receive` returns ``None`` once the
    producers closed theirs and the queue is drained, or once the consumer closed
    its own. Neither yields to the event loop when it need not wait (a batch hands
    over thousands of outcomes a second), and an event is made only when someone
    must wait. The close methods do no I/O and wake every waiter, so they are safe
    in ``__del__``.
    """

    __slots__ = (
        "_capacity",
        "_guard",
        "_items",
        "_readable",
        "_receiving",
        "_sending",
        "_writable",
    )

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: collections.deque[T] = collections.deque()
        self._sending = self._receiving = True
        self._guard = async_thread_lock()
        # Set (and dropped) when an item comes or an end closes / when room is made.
        self._readable: AsyncEvent | None = None
        self._writable: AsyncEvent | None = None

    async def send(self, item: T) -> bool:
        while True:
            with self._guard:
                if not self._receiving:
                    return False
                if len(self._items) < self._capacity:
                    self._items.append(item)
                    _wake(self._readable)
                    self._readable = None
                    return True
                if self._writable is None:
                    self._writable = AsyncEvent()
                writable = self._writable
            await writable.wait()

    async def receive(self) -> T | None:
        # A cancelled consumer stops here even while outcomes are queued.
        await async_checkpoint()
        while True:
            with self._guard:
                if not self._receiving:
                    return None
                if self._items:
                    item = self._items.popleft()
                    _wake(self._writable)
                    self._writable = None
                    return item
                if not self._sending:
                    return None
                if self._readable is None:
                    self._readable = AsyncEvent()
                readable = self._readable
            await readable.wait()

    def close_sending(self) -> None:
        with self._guard:
            self._sending = False
            _wake(self._readable)
            self._readable = None

    def close_receiving(self) -> None:
        with self._guard:
            self._receiving = False
            self._items.clear()
            _wake(self._readable)
            self._readable = None
            _wake(self._writable)
            self._writable = None


def _wake(event: AsyncEvent | None) -> None:
    """Wake whoever waits on ``event``; the next waiter makes a new one."""
    if event is not None:
        event.set()
