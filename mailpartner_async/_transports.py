"""Which transport module serves a client: chosen by ``transport=`` or by the family of
the ``http_client`` given, imported only when chosen (unused HTTP libraries are never
imported).

Every transport has the same surface: ``open(settings, http_client)``, an ``owned``
flag, ``send(request, timeout) -> RawResponse`` and ``aclose()`` (``close()`` on the
sync side).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._config import Settings
from ._exceptions import ConfigurationError

if TYPE_CHECKING:
    from ._async.http_aiohttp import AsyncAiohttpTransport
    from ._async.http_httpx import AsyncHttpxTransport
    from ._async.http_httpx2 import AsyncHttpx2Transport
    from ._sync.http_httpx import HttpxTransport
    from ._sync.http_httpx2 import Httpx2Transport

__all__ = ["open_async_transport", "open_transport"]


def _family(http_client: object | None) -> str | None:
    """``"httpx"`` or ``"httpx2"`` for a client of that library, else ``None``."""
    if http_client is None:
        return None
    module = type(http_client).__module__.split(".", 1)[0]
    return module if module in ("httpx", "httpx2") else None


def _httpx2_wanted(settings: Settings, http_client: object | None) -> bool:
    if http_client is not None:
        # The default name goes with any client; another name or object does not.
        if settings.transport != "httpx":
            raise ConfigurationError("pass either http_client or transport, not both")
        return _family(http_client) == "httpx2"
    if settings.transport == "httpx2":
        return True
    return _is_httpx2_transport_object(settings.transport)


def _is_httpx2_transport_object(transport: object) -> bool:
    return not isinstance(transport, str) and type(transport).__module__.startswith("httpx2")


def open_async_transport(
    settings: Settings, http_client: object | None
) -> AsyncHttpxTransport | AsyncHttpx2Transport | AsyncAiohttpTransport:
    """The transport of an ``AsyncMailPartner``."""
    if settings.transport == "aiohttp":
        from ._async.http_aiohttp import AsyncAiohttpTransport

        return AsyncAiohttpTransport.open(settings, http_client)
    if _httpx2_wanted(settings, http_client):
        from ._async.http_httpx2 import AsyncHttpx2Transport

        return AsyncHttpx2Transport.open(settings, http_client)
    from ._async.http_httpx import AsyncHttpxTransport

    return AsyncHttpxTransport.open(settings, http_client)


def open_transport(
    settings: Settings, http_client: object | None
) -> HttpxTransport | Httpx2Transport:
    """The transport of a ``MailPartner``: httpx or httpx2 (aiohttp has no sync API)."""
    if settings.transport == "aiohttp":
        raise ConfigurationError(
            "transport='aiohttp' is for AsyncMailPartner on asyncio; MailPartner uses httpx"
        )
    if _httpx2_wanted(settings, http_client):
        from ._sync.http_httpx2 import Httpx2Transport

        return Httpx2Transport.open(settings, http_client)
    from ._sync.http_httpx import HttpxTransport

    return HttpxTransport.open(settings, http_client)
