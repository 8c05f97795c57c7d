"""What a batch of the async client takes: its ids, the call it makes for each, and
the stop it hands that call."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import Protocol, TypeAlias

from .._compat import AsyncEvent, async_wait_for
from .._core.models import BatchItem, CancelResult, MessageId

__all__ = ["ASYNC_ID_SOURCES", "AsyncCancelCall", "AsyncIds", "AsyncStop"]

# Plain ids or scheduled messages, from any iterable (async ones too, in an async batch).
AsyncIds: TypeAlias = Iterable[BatchItem] | AsyncIterable[BatchItem]
ASYNC_ID_SOURCES: tuple[type, ...] = (Iterable, AsyncIterable)


class AsyncStop:
    """A batch's stop, set once and checked by the call: a stopped batch starts no
    retry, and a retry's backoff ends as soon as the stop comes."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = AsyncEvent()

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()

    async def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``, unless the stop comes first; whether it came."""
        await async_wait_for(self._event, seconds)
        return self._event.is_set()


class AsyncCancelCall(Protocol):
    """The call a batch makes for each id: the client's cancel, told the batch's stop."""

    async def __call__(self, message_id: MessageId, halt: AsyncStop, /) -> CancelResult: ...
