"""The one door to httpx: clients, time-outs, error mapping and log redaction.

Everything else in the package talks to this module, so moving to another HTTP
library (the httpx2 fork, an aiohttp transport) changes this file and the names the
client modules import from it, nothing more.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import httpx

from ._exceptions import APIConnectionError, APITimeoutError, ConfigurationError
from ._protocol import RawResponse
from ._secrets import install_log_redaction, redact
from ._version import __version__

__all__ = [
    "TRANSPORT_ERRORS",
    "USER_AGENT",
    "AsyncHTTPClient",
    "HTTPClient",
    "RawResponse",
    "Timeout",
    "TimeoutTypes",
    "TransportName",
    "connection_error",
    "install_log_redaction",
    "new_async_http_client",
    "new_http_client",
    "to_timeout",
]

AsyncHTTPClient: TypeAlias = httpx.AsyncClient
HTTPClient: TypeAlias = httpx.Client
Timeout: TypeAlias = httpx.Timeout
TimeoutTypes: TypeAlias = float | httpx.Timeout
TransportName: TypeAlias = Literal["httpx", "aiohttp"]
TRANSPORT_ERRORS = (httpx.TransportError,)
USER_AGENT = f"mailpartner-async/{__version__} httpx/{httpx.__version__}"


def to_timeout(timeout: object) -> httpx.Timeout:
    """A positive number of seconds, or an ``httpx.Timeout``, as an ``httpx.Timeout``."""
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ConfigurationError(
            f"timeout must be a positive number of seconds or an httpx.Timeout, got {timeout!r}"
        )
    return httpx.Timeout(float(timeout))


def _client_options(timeout: httpx.Timeout, max_concurrency: int) -> dict[str, Any]:
    """What every client the SDK owns is built with, whatever its transport."""
    return {
        "timeout": timeout,
        # One connection per request in flight; the SDK's own limiter queues the
        # rest, so httpx's pool never makes a request wait (nor raises PoolTimeout).
        "limits": httpx.Limits(
            max_connections=max_concurrency,
            max_keepalive_connections=max_concurrency,
            keepalive_expiry=30.0,
        ),
        "headers": {"User-Agent": USER_AGENT},
        "follow_redirects": False,
        "trust_env": True,
    }


def new_async_http_client(
    timeout: httpx.Timeout,
    max_concurrency: int,
    transport: TransportName = "httpx",
    base_url: str = "",
) -> httpx.AsyncClient:
    """The ``httpx.AsyncClient`` the SDK owns when the caller brings none.

    ``transport="aiohttp"`` runs it on aiohttp (the ``aiohttp`` extra, asyncio
    only), several times faster under load than httpx's own transport.
    """
    if transport == "aiohttp":
        try:
            from httpx_aiohttp import AiohttpTransport
        except ImportError:
            raise ConfigurationError(
                "transport='aiohttp' needs the aiohttp extra: "
                "pip install 'mailpartner-async[aiohttp]'"
            ) from None
        options = _client_options(timeout, max_concurrency)
        # The aiohttp session finds the proxy itself; httpx must not mount its own
        # proxy transports from the environment beside it.
        options["trust_env"] = False
        return httpx.AsyncClient(
            transport=AiohttpTransport(client=lambda: _aiohttp_session(max_concurrency, base_url)),
            **options,
        )
    _check_transport(transport, ("httpx", "aiohttp"))
    return httpx.AsyncClient(**_client_options(timeout, max_concurrency))


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


def new_http_client(
    timeout: httpx.Timeout,
    max_concurrency: int,
    transport: TransportName = "httpx",
    base_url: str = "",
) -> httpx.Client:
    """The ``httpx.Client`` the sync SDK owns when the caller brings none."""
    _check_transport(transport, ("httpx",))
    return httpx.Client(**_client_options(timeout, max_concurrency))


def _check_transport(transport: object, allowed: tuple[str, ...]) -> None:
    if transport not in allowed:
        raise ConfigurationError(
            f"transport must be one of {', '.join(map(repr, allowed))} here, got {transport!r}"
        )


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
