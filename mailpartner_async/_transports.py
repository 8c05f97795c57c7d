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

from ._core.errors import APITimeoutError, ConfigurationError, MailPartnerError
from ._core.protocol import RawResponse
from ._core.settings import Settings
from ._extras import require

if TYPE_CHECKING:
    from ._async.http_aiohttp import AsyncAiohttpTransport
    from ._async.http_httpx import AsyncHttpxTransport
    from ._async.http_httpx2 import AsyncHttpx2Transport
    from ._sync.http_httpx import HttpxTransport
    from ._sync.http_httpx2 import Httpx2Transport

__all__ = [
    "attempt_failure",
    "deadline_passed",
    "open_async_transport",
    "open_transport",
    "settled",
]


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
        require("aiohttp", "transport='aiohttp'", "aiohttp")
        from ._async.http_aiohttp import AsyncAiohttpTransport

        return AsyncAiohttpTransport.open(settings, http_client)
    if _httpx2_wanted(settings, http_client):
        require("httpx2", "transport='httpx2'", "httpx2")
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
        require("httpx2", "transport='httpx2'", "httpx2")
        from ._sync.http_httpx2 import Httpx2Transport

        return Httpx2Transport.open(settings, http_client)
    from ._sync.http_httpx import HttpxTransport

    return HttpxTransport.open(settings, http_client)


# --- what every transport's send raises ---------------------------------------------------


def attempt_failure(
    exc: Exception, mapped: MailPartnerError | None, *, message_id: str, closed: bool
) -> MailPartnerError:
    """What an attempt that raised ``exc`` fails with: ``mapped``, the transport failure
    as our error; else, the client having been closed meanwhile, an error saying so;
    else ``exc`` itself is raised again (a bug, which the batch still turns into that
    id's outcome)."""
    if mapped is not None:
        return mapped
    if closed:
        return MailPartnerError(
            "the client was closed while this call was in flight", message_id=message_id
        )
    raise exc


def deadline_passed(
    failure: MailPartnerError | None, *, message_id: str, deadline: float | None
) -> MailPartnerError:
    """``failure``, or, when there is none, the error of an attempt its deadline ended
    (the request may have reached the server)."""
    if failure is not None:
        return failure
    return APITimeoutError(
        f"the attempt took longer than its time-out ({deadline} s)",
        message_id=message_id,
        request_sent=True,
    )


def settled(raw: RawResponse | None, failure: MailPartnerError | None) -> RawResponse:
    """The answer of an attempt, or its failure raised (here, outside any ``except``:
    nothing of the HTTP library is chained to it)."""
    if failure is not None:
        raise failure
    assert raw is not None
    return raw
