"""Which transport module serves a client: chosen by ``transport=`` or by the family of
the ``http_client`` given, imported only when chosen (unused HTTP libraries are never
imported).

Every transport has the same surface: ``open(settings, http_client)``, an ``owned``
flag, ``send(request, timeout) -> RawResponse`` and ``aclose()`` (``close()`` on the
sync side).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ._core.errors import ConfigurationError
from ._core.settings import Settings

if TYPE_CHECKING:
    from ._async.http_aiohttp import AsyncAiohttpTransport
    from ._async.http_httpx import AsyncHttpxTransport
    from ._async.http_httpx2 import AsyncHttpx2Transport
    from ._sync.http_httpx import HttpxTransport
    from ._sync.http_httpx2 import Httpx2Transport

__all__ = ["open_async_transport", "open_transport"]


def _is_httpx2(value: object, *kinds: str) -> bool:
    """Whether ``value`` is one of httpx2's ``kinds`` (classes), subclasses included.

    Only an object of httpx2's own classes can be one, and then httpx2 is imported
    already: it is looked up, never imported here.
    """
    httpx2 = sys.modules.get("httpx2")
    return httpx2 is not None and isinstance(value, tuple(getattr(httpx2, k) for k in kinds))


def _httpx2_wanted(settings: Settings, http_client: object | None) -> bool:
    if http_client is not None:
        # The default name goes with any client; another name or object does not.
        if settings.transport != "httpx":
            raise ConfigurationError("pass either http_client or transport, not both")
        return _is_httpx2(http_client, "AsyncClient", "Client")
    if settings.transport == "httpx2":
        return True
    return _is_httpx2(settings.transport, "AsyncBaseTransport", "BaseTransport")


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
