"""Which transport serves a client: chosen by ``transport=`` or by the family of the
``http_client`` given, imported only when chosen (unused HTTP libraries are never
imported).

One module per HTTP library, each owning its exception mapping: ``http_httpx`` (its
twin ``http_httpx2`` generated from it) and ``http_aiohttp`` (async only: the sync
client refuses it). Every transport has the surface of :class:`AsyncTransport`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Protocol

from ..._core.errors import ConfigurationError
from ..._core.protocol import CancelRequest, RawResponse
from ..._core.settings import AIOHTTP_IS_ASYNC_ONLY, Settings, Timeout

if TYPE_CHECKING:
    from ..ids import AsyncStop

__all__ = ["AsyncTransport", "open_async_transport"]


class AsyncTransport(Protocol):
    """What a client needs of its transport."""

    @property
    def owned(self) -> bool:
        """Whether the client made (and so closes) the HTTP client under it."""
        ...

    async def send(
        self, request: CancelRequest, timeout: Timeout, halt: AsyncStop | None = None
    ) -> RawResponse:
        """One attempt; ``halt``, a batch's stop, aborts it when it comes."""
        ...

    async def aclose(self) -> None: ...


def open_async_transport(settings: Settings, http_client: object | None) -> AsyncTransport:
    """The transport of a new client, of the kind the client's settings name."""
    if settings.transport == "aiohttp":
        if True:  # ASYNC
            from .http_aiohttp import AsyncAiohttpTransport

            return AsyncAiohttpTransport.open(settings, http_client)
        raise ConfigurationError(AIOHTTP_IS_ASYNC_ONLY)  # the sync client
    if _httpx2_wanted(settings, http_client):
        from .http_httpx2 import AsyncHttpx2Transport

        return AsyncHttpx2Transport.open(settings, http_client)
    from .http_httpx import AsyncHttpxTransport

    return AsyncHttpxTransport.open(settings, http_client)


def _httpx2_wanted(settings: Settings, http_client: object | None) -> bool:
    if http_client is not None:
        # The default name goes with any client; another name or object does not.
        if settings.transport != "httpx":
            raise ConfigurationError("pass either http_client or transport, not both")
        return _is_httpx2(http_client, "AsyncClient", "Client")
    if settings.transport == "httpx2":
        return True
    return _is_httpx2(settings.transport, "AsyncBaseTransport", "BaseTransport")


def _is_httpx2(value: object, *kinds: str) -> bool:
    """Whether ``value`` is one of httpx2's ``kinds`` (classes), subclasses included.

    Only an object of httpx2's own classes can be one, and then httpx2 is imported
    already: it is looked up, never imported here.
    """
    httpx2 = sys.modules.get("httpx2")
    return httpx2 is not None and isinstance(value, tuple(getattr(httpx2, k) for k in kinds))
