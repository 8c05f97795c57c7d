"""Which transport serves a client: chosen by ``transport=`` or by the family of the
``http_client`` given, imported only when chosen (unused HTTP libraries are never
imported).

One module per HTTP library, each owning its exception mapping: ``http_httpx`` (its
twin ``http_httpx2`` generated from it) and ``http_aiohttp`` (async only: the sync
client refuses it). Every transport has the surface of :class:`AsyncTransport`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..._core.errors import ConfigurationError
from ..._core.protocol import CancelRequest, RawResponse
from ..._core.settings import AIOHTTP_IS_ASYNC_ONLY, Settings, Timeout
from ..._extras import require

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
    if http_client is not None and settings.local_address is not None:
        raise ConfigurationError(
            "local_address applies to the connections the client makes, and your "
            "http_client makes its own: set it on your client's transport instead "
            "(httpx.AsyncHTTPTransport(local_address=...)), or pass no http_client"
        )
    if settings.transport == "aiohttp":
        if True:  # ASYNC
            require("aiohttp", "transport='aiohttp'", "aiohttp")
            from .http_aiohttp import AsyncAiohttpTransport

            return AsyncAiohttpTransport.open(settings, http_client)
        raise ConfigurationError(AIOHTTP_IS_ASYNC_ONLY)  # the sync client
    if _httpx2_wanted(settings, http_client):
        require("httpx2", "transport='httpx2'", "httpx2")
        from .http_httpx2 import AsyncHttpx2Transport

        return AsyncHttpx2Transport.open(settings, http_client)
    from .http_httpx import AsyncHttpxTransport

    return AsyncHttpxTransport.open(settings, http_client)


def _httpx2_wanted(settings: Settings, http_client: object | None) -> bool:
    if http_client is not None:
        # The default name goes with any client; another name or object does not.
        if settings.transport != "httpx":
            raise ConfigurationError("pass either http_client or transport, not both")
        return _from_httpx2(http_client)
    return settings.transport == "httpx2" or _from_httpx2(settings.transport)


def _from_httpx2(value: object) -> bool:
    """Whether ``value`` is an object of httpx2's (a client or a transport, of either
    kind: the httpx2 transport then refuses the wrong kind, naming it). Only httpx2
    makes those, so it is never imported here."""
    return any(cls.__module__.split(".")[0] == "httpx2" for cls in type(value).__mro__)
