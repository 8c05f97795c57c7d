"""The httpx transport: one attempt, a :class:`CancelRequest` in, a :class:`RawResponse` out.

Written once, for HTTPX and async; the sync twin, and the twins for the HTTPX2 fork,
are generated from it by renaming. It builds the ``httpx`` clients the SDK owns, turns
our :class:`~..._core.settings.Timeout` into httpx's, sends each attempt, and maps
httpx's exceptions to ours with whether the request was sent. A transport for another
HTTP library is another module with the same ``open``, ``send`` and ``aclose``.
"""

from __future__ import annotations

import functools
import importlib.util
import ssl
from typing import TYPE_CHECKING, Any, get_args

import httpx

from ..._compat import async_move_on_after
from ..._core.attempt import attempt_failure, deadline_passed, settled, transport_error
from ..._core.body import ACCEPT_ENCODING, BodyDecoder
from ..._core.errors import APIConnectionError, ConfigurationError, MailPartnerError
from ..._core.protocol import CancelRequest, RawResponse
from ..._core.secrets import SecretText, redact
from ..._core.settings import (
    LOCAL_ADDRESS_EXTENSION,
    MAX_BODY_BYTES,
    Settings,
    Timeout,
    TransportName,
)
from ..._version import __version__
from .environment import proxy_for, source_failure, tls_context, tls_failure
from .httpx_pool import ATTEMPT, AsyncAttempt, AsyncAttemptTransport

if TYPE_CHECKING:
    from ..ids import AsyncStop

__all__ = [
    "USER_AGENT",
    "AsyncHttpxTransport",
    "connection_error",
    "new_async_client",
    "ssl_context",
    "to_httpx_timeout",
]

USER_AGENT = f"mailpartner-async/{__version__} httpx/{httpx.__version__}"


class AsyncHttpxTransport:
    """Sends attempts over an ``httpx.AsyncClient``, the SDK's own or the caller's.

    A client the caller passed (``owned=False``) is never closed here.
    """

    def __init__(
        self, http: httpx.AsyncClient, *, owned: bool, local_address: str | None = None
    ) -> None:
        self.http = http
        self.owned = owned
        self._local_address = local_address
        self._extensions: dict[str, object] = {}
        if local_address is not None:
            # For a transport object that answers as if from an address (the fake's);
            # the SDK's own transports leave from it and ignore the extension.
            self._extensions[LOCAL_ADDRESS_EXTENSION] = local_address

    @classmethod
    def open(cls, settings: Settings, http_client: object | None) -> AsyncHttpxTransport:
        """The caller's ``http_client``, checked, or a new client the SDK owns."""
        if http_client is None:
            client = new_async_client(settings)
            return cls(client, owned=True, local_address=settings.local_address)
        if not isinstance(http_client, httpx.AsyncClient):
            raise ConfigurationError(
                f"http_client must be an httpx.AsyncClient, got {type(http_client).__name__}"
            )
        return cls(http_client, owned=False)

    async def send(
        self, request: CancelRequest, timeout: Timeout, halt: AsyncStop | None = None
    ) -> RawResponse:
        """One attempt, ended at ``timeout.deadline`` whatever the server does, and at
        once when ``halt`` (a batch's stop) comes.

        A failure is one of our errors, raised here with no chained exception: an
        ``APIConnectionError`` (``APITimeoutError`` past the deadline) saying whether
        the request may have reached the server.
        """
        attempt = AsyncAttempt(timeout.deadline)
        if halt is None:
            return settled(*await self._attempt(request, timeout, attempt))
        halt.add(attempt.abort)
        try:
            return settled(*await self._attempt(request, timeout, attempt))
        finally:
            halt.discard(attempt.abort)

    async def _attempt(
        self, request: CancelRequest, timeout: Timeout, attempt: AsyncAttempt
    ) -> tuple[RawResponse | None, MailPartnerError | None]:
        started = False
        failure: MailPartnerError | None = None
        # A cancel scope ends any wait at the deadline (for a thread: nothing); a
        # thread's reads end there by the streams of httpx_pool, and on a transport of
        # the caller's between two chunks (_read).
        with async_move_on_after(timeout.deadline):
            try:
                async with self.http.stream(
                    request.method,
                    request.url,
                    params=request.params,
                    headers=_HEADERS,
                    timeout=to_httpx_timeout(timeout),
                    follow_redirects=False,
                    extensions={**self._extensions, ATTEMPT: attempt},
                ) as response:
                    started = True
                    raw = await _read(response, attempt)
                if raw is not None:
                    return raw, None
            except Exception as exc:
                mapped = connection_error(
                    exc,
                    message_id=request.message_id,
                    response_started=started,
                    secret=request.api_key,
                    local_address=self._local_address,
                    refused=attempt.refused,
                )
                failure = attempt_failure(
                    exc,
                    mapped,
                    message_id=request.message_id,
                    closed=self.http.is_closed,
                    stopped=attempt.aborted,
                )
        return None, deadline_passed(
            failure,
            message_id=request.message_id,
            deadline=timeout.deadline,
            request_sent=attempt.may_have_reached(),
        )

    async def aclose(self) -> None:
        if self.owned:
            await self.http.aclose()


_HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING}
_DRAIN_BYTES = 1024 * 1024


async def _read(response: httpx.Response, attempt: AsyncAttempt) -> RawResponse | None:
    """The answer's status, headers and body, decoded here under the size cap;
    ``None`` when the attempt's deadline passed while the body came."""
    status, headers = response.status_code, dict(response.headers)
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        # Refuse without reading: leaving httpx's byte stream half-read
        # abandons its nested async generators, which trio reports as
        # ResourceWarnings (encode/httpx#3686).
        return RawResponse(status, headers, b"", oversized=True)
    if response.is_stream_consumed:
        # Built in memory (a mock transport): httpx has read and decoded it already.
        decoder = BodyDecoder("identity", limit=MAX_BODY_BYTES)
        decoder.feed(response.content)
        return RawResponse(status, headers, decoder.body, oversized=decoder.oversized)
    decoder = BodyDecoder(headers.get("content-encoding", ""), limit=MAX_BODY_BYTES)
    drained = 0
    try:
        async for chunk in response.aiter_raw():
            if attempt.overdue():
                return None
            if decoder.feed(chunk):
                continue
            # Enough read. Read on (and drop) a little rather than leave httpx's
            # nested byte generators half-read, which trio reports as
            # ResourceWarnings (encode/httpx#3686); a body without end is left.
            drained += len(chunk)
            if drained > _DRAIN_BYTES:
                break
    except httpx.TimeoutException:
        raise  # the attempt's deadline, or a read time-out: not a short body
    except httpx.TransportError:
        return RawResponse(status, headers, decoder.body, truncated=True)
    decoder.finish()
    return RawResponse(
        status, headers, decoder.body, oversized=decoder.oversized, undecodable=decoder.problem
    )


# --- the clients the SDK owns ---------------------------------------------------------


@functools.lru_cache(maxsize=64)
def to_httpx_timeout(timeout: Timeout) -> httpx.Timeout:
    """httpx's spelling of one of our time-outs (cached: settings are few and frozen)."""
    return httpx.Timeout(
        connect=timeout.connect, read=timeout.read, write=timeout.write, pool=timeout.pool
    )


def ssl_context(base_url: str) -> ssl.SSLContext | None:
    """The TLS settings for ``base_url`` by httpx's rule: certifi's roots, or
    ``$SSL_CERT_FILE`` / ``$SSL_CERT_DIR`` when set. A plain ``http://`` URL needs none."""
    return tls_context(base_url, lambda: httpx.create_ssl_context(trust_env=True))


def new_async_client(settings: Settings) -> httpx.AsyncClient:
    """The ``httpx.AsyncClient`` the SDK owns, on the ``httpx.AsyncBaseTransport``
    given as ``transport`` (left as it is) or on a transport of its own.

    Nothing is taken from the environment behind the SDK's back (``trust_env`` off:
    no ``.netrc`` credentials): the proxy and the TLS settings are read once, here,
    under the SDK's own rules.
    """
    transport: Any = settings.transport
    local_address = settings.local_address
    if isinstance(transport, httpx.AsyncBaseTransport):
        _check_transport_object(transport, local_address)
    else:
        _check_name(transport)
        tls, proxy = ssl_context(settings.base_url), _checked(proxy_for(settings.base_url))
        # The SDK's own pool, async and sync alike: its streams clip a blocking read
        # to the attempt's deadline, shut a stopped attempt's socket, and refuse an
        # answer the server sent before it was asked (httpx_pool).
        transport = AsyncAttemptTransport(tls, _limits(settings), proxy, local_address)
    return httpx.AsyncClient(
        transport=transport,
        timeout=to_httpx_timeout(settings.timeout),
        headers=_HEADERS,
        follow_redirects=False,
        trust_env=False,
    )


def _is_socks(proxy: str | None) -> bool:
    return proxy is not None and proxy.partition("://")[0].lower() in ("socks5", "socks5h")


def _checked(proxy: str | None) -> str | None:
    """``proxy``, once it is known the client can use it: a SOCKS proxy needs socksio."""
    if _is_socks(proxy) and importlib.util.find_spec("socksio") is None:
        scheme = str(proxy).partition("://")[0].lower()
        raise ConfigurationError(
            f"the environment names a SOCKS proxy ({scheme}://...), which needs the "
            "socksio package: pip install socksio"
        )
    return proxy


def _check_transport_object(transport: httpx.AsyncBaseTransport, local_address: str | None) -> None:
    """Refuse ``local_address`` with a transport object that makes its own connections.

    A transport object that answers as if from the client's address (it has
    ``honours_local_address = True``: the fake's) reads it from each request.
    """
    if local_address is not None and getattr(transport, "honours_local_address", False) is not True:
        raise ConfigurationError(
            "local_address applies to the connections the client makes, and your "
            f"transport ({type(transport).__name__}) makes its own: set it on that "
            "transport instead (httpx.AsyncHTTPTransport(local_address=...))"
        )


def _limits(settings: Settings) -> httpx.Limits:
    # One connection per request in flight; the SDK's own limiter queues the rest,
    # so the pool never makes a request wait (nor raises PoolTimeout).
    return httpx.Limits(
        max_connections=settings.max_concurrency,
        max_keepalive_connections=settings.max_concurrency,
        keepalive_expiry=30.0,
    )


def _check_name(transport: object) -> None:
    if transport != "httpx":
        # Not spelled out: generating the twin for the fork renames the library names.
        names = ", ".join(map(repr, get_args(TransportName)))
        raise ConfigurationError(
            f"transport must be a name ({names}) or an httpx transport of the client's "
            f"kind (async or sync), got {type(transport).__name__}"
        )


# --- httpx's exceptions as ours -------------------------------------------------------


def connection_error(
    exc: BaseException,
    *,
    message_id: str,
    response_started: bool = False,
    secret: SecretText = None,
    local_address: str | None = None,
    refused: str = "",
) -> APIConnectionError | None:
    """Our error for an httpx transport failure, with whether the request was sent;
    ``None`` when ``exc`` is no transport failure. ``refused``: why the SDK's own
    stream refused the answer's head (then not transient).

    A connect error, connect or pool time-out means the request never left; a
    read or write failure, a protocol error or a read time-out means it may have
    reached the server. The text is redacted, and the original is not chained: its
    request and its frames' locals hold the URL with the key.
    """
    if not isinstance(exc, httpx.TransportError):
        return None
    unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    name = type(exc).__name__
    detail = redact(str(exc), secret) or name
    error = transport_error(
        name,
        detail,
        message_id=message_id,
        sent=response_started or not unsent,
        timed_out=isinstance(exc, httpx.TimeoutException),
        tls=tls_failure(exc) if unsent else None,
        source=source_failure(exc, local_address) if unsent else None,
        refused=refused,
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
