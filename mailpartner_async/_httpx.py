"""What the httpx transports share and nothing waits on: clients, time-outs, errors.

It is written once for HTTPX; its twin for the HTTPX2 fork is generated from it by
renaming. The transport module beside it holds the one ``send``; this module
builds the ``httpx`` clients the SDK owns, turns our :class:`~._config.Timeout` into
httpx's, and maps httpx's exceptions to ours with whether the request was sent.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any, get_args
from urllib.parse import urlsplit

import httpcore
import httpx

from ._core.attempt import transport_error
from ._core.body import ACCEPT_ENCODING
from ._core.errors import APIConnectionError, ConfigurationError
from ._core.secrets import redact
from ._core.settings import Settings, Timeout, TransportName, is_loopback
from ._deadline import deadline_remaining
from ._version import __version__

__all__ = [
    "USER_AGENT",
    "connection_error",
    "new_async_client",
    "new_client",
    "proxy_for",
    "ssl_context",
    "to_httpx_timeout",
]

USER_AGENT = f"mailpartner-async/{__version__} httpx/{httpx.__version__}"


@functools.lru_cache(maxsize=64)
def to_httpx_timeout(timeout: Timeout) -> httpx.Timeout:
    """httpx's spelling of one of our time-outs (cached: settings are few and frozen)."""
    return httpx.Timeout(
        connect=timeout.connect, read=timeout.read, write=timeout.write, pool=timeout.pool
    )


def _client_options(settings: Settings) -> dict[str, Any]:
    """What every client the SDK owns is built with, whatever its transport.

    Nothing is taken from the environment behind the SDK's back (``trust_env``
    off: no ``.netrc`` credentials): the proxy and the TLS settings are read once,
    by :func:`proxy_for` and :func:`ssl_context`, under the SDK's own rules.
    """
    return {
        "timeout": to_httpx_timeout(settings.timeout),
        "headers": {"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING},
        "follow_redirects": False,
        "trust_env": False,
    }


def _limits(settings: Settings) -> httpx.Limits:
    # One connection per request in flight; the SDK's own limiter queues the rest,
    # so httpx's pool never makes a request wait (nor raises PoolTimeout).
    return httpx.Limits(
        max_connections=settings.max_concurrency,
        max_keepalive_connections=settings.max_concurrency,
        keepalive_expiry=30.0,
    )


def ssl_context(base_url: str) -> ssl.SSLContext | bool:
    """The TLS settings for ``base_url``: certifi's roots, or ``$SSL_CERT_FILE`` /
    ``$SSL_CERT_DIR`` when set. A plain ``http://`` URL needs none."""
    if not base_url.startswith("https://"):
        return False
    try:
        return httpx.create_ssl_context(trust_env=True)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"cannot load the TLS certificates ({type(exc).__name__}): check "
            "$SSL_CERT_FILE and $SSL_CERT_DIR"
        ) from None


def proxy_for(base_url: str) -> str | None:
    """The proxy the environment names for ``base_url``, as httpx reads it
    (``HTTP(S)_PROXY``, then ``ALL_PROXY``; ``NO_PROXY`` honoured), never for a
    loopback host: a local fake or tunnel must not be sent, key and all, elsewhere."""
    import urllib.request

    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if is_loopback(host):
        return None
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not proxy or bypass(host, proxies):
        return None
    return proxy


def _transport_for(settings: Settings, given_kind: type, built_kind: Any) -> Any:
    """What an owned client runs on: the transport given as ``transport`` when it is a
    ``given_kind``, else a new ``built_kind`` under the SDK's proxy and TLS rules."""
    if isinstance(settings.transport, given_kind):
        return settings.transport
    _check_name(settings.transport)
    return built_kind(
        verify=ssl_context(settings.base_url),
        limits=_limits(settings),
        proxy=proxy_for(settings.base_url),
    )


def new_async_client(settings: Settings) -> httpx.AsyncClient:
    """The ``httpx.AsyncClient`` the SDK owns: on httpx's own transport, or on the
    ``httpx.AsyncBaseTransport`` given as ``transport``."""
    transport = _transport_for(settings, httpx.AsyncBaseTransport, httpx.AsyncHTTPTransport)
    return httpx.AsyncClient(transport=transport, **_client_options(settings))


def new_client(settings: Settings) -> httpx.Client:
    """The ``httpx.Client`` the sync SDK owns (on the ``httpx.BaseTransport`` given as
    ``transport``, if one was). The sockets of one it builds honour the attempt's
    deadline; a transport of yours is left as it is."""
    transport = _transport_for(settings, httpx.BaseTransport, httpx.HTTPTransport)
    if transport is not settings.transport:
        _clip_to_deadline(transport)
    return httpx.Client(transport=transport, **_client_options(settings))


def _check_name(transport: object) -> None:
    if transport != "httpx":
        # Not spelled out: generating the twin for the fork renames the library names.
        names = ", ".join(map(repr, get_args(TransportName)))
        raise ConfigurationError(
            f"transport must be a name ({names}) or an httpx transport of the client's "
            f"kind (async or sync), got {type(transport).__name__}"
        )


# --- deadlines for the sync client's blocking sockets ------------------------------------


def _clip(timeout: float | None) -> float | None:
    remaining = deadline_remaining()
    if remaining is None:
        return timeout
    remaining = max(remaining, 0.001)  # a wait of 0 would mean "block" to a socket
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every read and write waits no longer than the deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _clip(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _clip(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, _clip(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """TCP connections whose streams honour the deadline. Only TCP: the SDK asks
    for no Unix socket and no httpcore retries (the other backend methods)."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(
            host, port, _clip(timeout), local_address, socket_options
        )
        return _DeadlineStream(stream)


def _clip_to_deadline(transport: httpx.HTTPTransport) -> None:
    # httpx builds its httpcore pool itself: swap the pool's network backend for one
    # that honours the thread's deadline. Private on both sides, so checked: without
    # it the deadline still holds between the body's chunks.
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(backend, httpcore.NetworkBackend):
        pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]


def connection_error(
    exc: BaseException, *, message_id: str, response_started: bool = False
) -> APIConnectionError | None:
    """Our error for an httpx transport failure, with whether the request was sent;
    ``None`` when ``exc`` is no transport failure.

    A connect error, connect or pool time-out means the request never left; a
    read or write failure, a protocol error or a read time-out means it may have
    reached the server. The text is redacted, and the original is not chained: its
    request and its frames' locals hold the URL with the key.
    """
    if not isinstance(exc, httpx.TransportError):
        return None
    unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    name = type(exc).__name__
    detail = redact(str(exc)) or name
    error = transport_error(
        name,
        detail,
        message_id=message_id,
        sent=response_started or not unsent,
        timed_out=isinstance(exc, httpx.TimeoutException),
    )
    error.__cause__ = _clean_copy(exc, detail)
    return error


def _clean_copy(exc: httpx.TransportError, detail: str) -> BaseException | None:
    """The httpx exception again, of the same class, with the redacted text only: no
    request (its URL holds the key), no traceback (its frames' locals do)."""
    try:
        return type(exc)(detail)
    except TypeError:
        return None
