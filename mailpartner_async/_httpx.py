"""What the httpx transports share and nothing waits on: clients, time-outs, errors.

``_async/http_httpx.py`` (and its generated twin) holds the one ``send``; this module
builds the ``httpx`` clients the SDK owns, turns our :class:`~._config.Timeout` into
httpx's, and maps httpx's exceptions to ours with whether the request was sent.
"""

from __future__ import annotations

import functools
from typing import Any

import httpx

from ._config import Settings, Timeout
from ._exceptions import APIConnectionError, APITimeoutError, ConfigurationError
from ._secrets import redact
from ._version import __version__

__all__ = [
    "TRANSPORT_ERRORS",
    "USER_AGENT",
    "connection_error",
    "new_async_client",
    "new_client",
    "to_httpx_timeout",
]

TRANSPORT_ERRORS = (httpx.TransportError,)
USER_AGENT = f"mailpartner-async/{__version__} httpx/{httpx.__version__}"


@functools.lru_cache(maxsize=64)
def to_httpx_timeout(timeout: Timeout) -> httpx.Timeout:
    """httpx's spelling of one of our time-outs (cached: settings are few and frozen)."""
    return httpx.Timeout(
        connect=timeout.connect, read=timeout.read, write=timeout.write, pool=timeout.pool
    )


def _client_options(settings: Settings) -> dict[str, Any]:
    """What every client the SDK owns is built with, whatever its transport."""
    return {
        "timeout": to_httpx_timeout(settings.timeout),
        # One connection per request in flight; the SDK's own limiter queues the
        # rest, so httpx's pool never makes a request wait (nor raises PoolTimeout).
        "limits": httpx.Limits(
            max_connections=settings.max_concurrency,
            max_keepalive_connections=settings.max_concurrency,
            keepalive_expiry=30.0,
        ),
        "headers": {"User-Agent": USER_AGENT},
        "follow_redirects": False,
        "trust_env": True,
    }


def new_async_client(settings: Settings) -> httpx.AsyncClient:
    """The ``httpx.AsyncClient`` the SDK owns: on httpx's own transport, on aiohttp
    (``transport="aiohttp"``, the ``aiohttp`` extra), or on the
    ``httpx.AsyncBaseTransport`` given as ``transport``."""
    options = _client_options(settings)
    transport = settings.transport
    if isinstance(transport, httpx.AsyncBaseTransport):
        return httpx.AsyncClient(transport=transport, **options)
    if transport == "aiohttp":
        # The aiohttp session finds the proxy itself; httpx must not mount its own
        # proxy transports from the environment beside it.
        options["trust_env"] = False
        return httpx.AsyncClient(transport=_aiohttp_transport(settings), **options)
    _check_name(transport)
    return httpx.AsyncClient(**options)


def new_client(settings: Settings) -> httpx.Client:
    """The ``httpx.Client`` the sync SDK owns (on the ``httpx.BaseTransport`` given as
    ``transport``, if one was)."""
    options = _client_options(settings)
    transport = settings.transport
    if isinstance(transport, httpx.BaseTransport):
        return httpx.Client(transport=transport, **options)
    if transport == "aiohttp":
        raise ConfigurationError(
            "transport='aiohttp' is for AsyncMailPartner on asyncio; MailPartner uses httpx"
        )
    _check_name(transport)
    return httpx.Client(**options)


def _check_name(transport: object) -> None:
    if transport != "httpx":
        raise ConfigurationError(
            "transport must be 'httpx', 'aiohttp' or an httpx transport of the client's "
            f"kind (async or sync), got {type(transport).__name__}"
        )


def _aiohttp_transport(settings: Settings) -> httpx.AsyncBaseTransport:
    try:
        from httpx_aiohttp import AiohttpTransport
    except ImportError:
        raise ConfigurationError(
            "transport='aiohttp' needs the aiohttp extra: pip install 'mailpartner-async[aiohttp]'"
        ) from None
    limit, base_url = settings.max_concurrency, settings.base_url
    return AiohttpTransport(client=lambda: _aiohttp_session(limit, base_url))


def _aiohttp_session(max_concurrency: int, base_url: str) -> Any:
    """An aiohttp session that never re-sends a request on its own.

    aiohttp silently retries an idempotent request (GET) once when the server drops
    the connection. Cancelling is not idempotent in effect (a second call answers
    code 5), and the SDK must see every attempt to count it and to read a later
    code 5 as its own success, so that hidden retry is turned off.
    """
    import urllib.parse
    import urllib.request

    import aiohttp

    # trust_env=True would make aiohttp look up .netrc and proxies in a thread on
    # every request (half its CPU, measured); look the proxy up once instead.
    parts = urllib.parse.urlsplit(base_url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        proxy = None
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=max_concurrency, keepalive_timeout=30.0, ssl=httpx.create_ssl_context()
        ),
        trust_env=False,
        proxy=proxy,
    )
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False
    return session


def connection_error(
    exc: httpx.TransportError, *, message_id: str, response_started: bool = False
) -> APIConnectionError:
    """Our error for an httpx transport failure, with whether the request was sent.

    A connect error, connect or pool time-out means the request never left; a
    read or write failure, a protocol error or a read time-out means it may have
    reached the server.
    """
    not_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    cause = exc.__cause__
    if not_sent and cause is not None and type(cause).__module__.startswith("aiohttp"):
        # httpx-aiohttp maps every aiohttp connection error, "server disconnected"
        # after the request was written included, to ConnectTimeout: trust the cause.
        not_sent = type(cause).__name__ in _AIOHTTP_NOT_SENT
    sent = response_started or not not_sent
    detail = redact(str(exc)) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(
            f"request timed out ({type(exc).__name__}: {detail})",
            message_id=message_id,
            request_sent=sent,
        )
    return APIConnectionError(
        f"request failed ({type(exc).__name__}: {detail})",
        message_id=message_id,
        request_sent=sent,
    )


_AIOHTTP_NOT_SENT = frozenset(
    {
        "ClientConnectorError",
        "ClientConnectorCertificateError",
        "ClientConnectorDNSError",
        "ClientConnectorSSLError",
        "ClientProxyConnectionError",
        "ConnectionTimeoutError",
        "UnixClientConnectorError",
    }
)
