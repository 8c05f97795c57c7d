"""The aiohttp transport: one attempt on aiohttp's own API, no httpx models on the way.

Async client only, on asyncio (aiohttp has no sync API and no trio support), so this
module has no generated twin. It keeps the rules every transport keeps: the proxy
and TLS settings read once by the SDK's own rules (:mod:`.environment`), no
redirect, no hidden re-send, the body decoded by :class:`~..._core.body.BodyDecoder`
under the size cap, the attempt's deadline, and aiohttp's errors mapped to ours
(here: this module imports no other HTTP library) with their text redacted.

The key never shows in anything aiohttp makes. Its traces (each ``TraceConfig``, and
so OpenTelemetry's aiohttp instrumentation, which records ``url.full`` and every
exception it sees) are given the URL a request is made with, and its errors render
that URL (``ClientResponseError``) or the request's target
(``ConnectionTimeoutError``). So each request is made with the key masked in its URL
(``apiKey=[REDACTED]``), and a per-attempt middleware, :class:`KeyedAttempt`, puts
the URL with the key on the request (``ClientRequest.url``, the target aiohttp
sends) once the traces have seen it. What aiohttp raises under the middleware is
kept for the exception map, and what goes up through the traces is a stand-in,
:class:`WithheldError`: the error's class name and redacted text, nothing chained.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
from typing import TYPE_CHECKING, Any

from ..._core.attempt import attempt_failure, deadline_passed, settled, transport_error
from ..._core.body import ACCEPT_ENCODING, BodyDecoder
from ..._core.errors import APIConnectionError, ConfigurationError, MailPartnerError
from ..._core.framing import MAX_FIELD_LINE, OVERSIZED_HEAD, REPEATED_LENGTH, oversized_fields
from ..._core.protocol import AMBIGUOUS_FRAMING, CancelRequest, RawResponse
from ..._core.secrets import Secret, SecretText, redact, redacted_url
from ..._core.settings import MAX_BODY_BYTES, Settings, Timeout
from ..._version import __version__
from .environment import proxy_for, source_failure, tls_context, tls_failure

try:
    import aiohttp
    import yarl
except ImportError:
    raise ConfigurationError(
        "transport='aiohttp' needs the aiohttp extra: "
        "pip install '.[aiohttp]' in a clone of the repository (not on PyPI yet)"
    ) from None

if TYPE_CHECKING:
    from ..ids import AsyncStop

__all__ = [
    "AsyncAiohttpTransport",
    "KeyedAttempt",
    "WithheldError",
    "connection_error",
    "ssl_context",
]


def _http_proxy(proxy: str | None) -> str | None:
    """``proxy``, which aiohttp can use only if it is an HTTP(S) proxy: given another
    (a SOCKS proxy), it would send the request there as to an HTTP proxy."""
    scheme = "" if proxy is None else proxy.partition("://")[0].lower()
    if proxy is not None and scheme not in ("http", "https"):
        raise ConfigurationError(
            f"the environment names a {scheme}:// proxy, which aiohttp cannot use: "
            "use transport='httpx' or 'httpx2', which speak SOCKS"
        )
    return proxy


class AsyncAiohttpTransport:
    """Sends attempts over an ``aiohttp.ClientSession`` the SDK owns (made at first
    use, inside the event loop)."""

    owned = True

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._proxy = _http_proxy(proxy_for(settings.base_url))
        self._ssl = ssl_context(settings.base_url)
        self._headers = {
            "User-Agent": f"mailpartner-async/{__version__} aiohttp/{aiohttp.__version__}",
            "Accept-Encoding": ACCEPT_ENCODING,
        }
        self._session: aiohttp.ClientSession | None = None
        self.closed = False

    @classmethod
    def open(cls, settings: Settings, http_client: object | None) -> AsyncAiohttpTransport:
        if http_client is not None:
            raise ConfigurationError("pass either http_client or transport, not both")
        return cls(settings)

    def _open_session(self) -> aiohttp.ClientSession:
        local_address = self._settings.local_address
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self._settings.max_concurrency,
                keepalive_timeout=30.0,
                ssl=self._ssl if self._ssl is not None else False,
                # Port 0: the system picks the source port, as httpx's local_address.
                local_addr=None if local_address is None else (local_address, 0),
            ),
            # Found once by proxy_for; trust_env would look again, in a thread, per request.
            trust_env=False,
            proxy=self._proxy,
            auto_decompress=False,
            # The SDK's rule for a long head decides (framing.OVERSIZED_HEAD, checked
            # by _read), not aiohttp's 8190 bytes a line, which would refuse a 9 KB
            # Set-Cookie the other transports read: aiohttp's own limits are set past
            # it, and what they refuse is over the SDK's limit as well.
            max_line_size=_PARSER_LIMIT,
            max_field_size=_PARSER_LIMIT,
            headers=self._headers,
        )
        self._session = session
        return session

    async def send(
        self, request: CancelRequest, timeout: Timeout, halt: AsyncStop | None = None
    ) -> RawResponse:
        """One attempt, ended at ``timeout.deadline`` whatever the server does. A
        batch's stop (``halt``) needs nothing here: it cancels the attempt's task."""
        return settled(*await self._attempt(request, timeout))

    async def _attempt(
        self, request: CancelRequest, timeout: Timeout
    ) -> tuple[RawResponse | None, MailPartnerError | None]:
        if self.closed:
            return None, MailPartnerError("the client is closed", message_id=request.message_id)
        session = self._session or self._open_session()
        # aiohttp is given the URL with the key masked, which its traces and errors
        # show; the middleware sends the one with the key (see the module's docstring).
        # Encoded by the protocol, as httpx encodes it: yarl would leave a "+" in the
        # key or the id as it is, and the server would read a space.
        keyed = KeyedAttempt(
            yarl.URL(f"{request.url}?{request.query()}", encoded=True), request.api_key
        )
        shown = yarl.URL(redacted_url(request.url, request.params, request.api_key), encoded=True)
        phases = _aiohttp_timeout(timeout)
        started = False
        failure: MailPartnerError | None = None
        # aiohttp runs on asyncio only, so the attempt's deadline is asyncio's own
        # (a third of the cost of a portable cancel scope, on every call).
        deadline = asyncio.timeout(timeout.deadline)
        try:
            async with deadline:
                try:
                    async with session.get(
                        shown, allow_redirects=False, timeout=phases, middlewares=(keyed,)
                    ) as response:
                        started = True
                        if _oversized(response):
                            response.close()  # and its connection, whose head was refused
                            return None, transport_error(
                                "ClientResponse",
                                OVERSIZED_HEAD,
                                message_id=request.message_id,
                                sent=True,
                                timed_out=False,
                                refused=OVERSIZED_HEAD,
                            )
                        return await _read(response), None
                except Exception as caught:
                    exc = keyed.original(caught)
                    if not started and _is_ambiguous_framing(exc):
                        return RawResponse(0, {}, b"", refused=AMBIGUOUS_FRAMING), None
                    mapped = connection_error(
                        exc,
                        message_id=request.message_id,
                        response_started=started,
                        secret=request.api_key,
                        local_address=self._settings.local_address,
                        refused="" if started else _parser_refusal(exc),
                    )
                    failure = attempt_failure(
                        exc, mapped, message_id=request.message_id, closed=self._closed_now()
                    )
        except TimeoutError:
            if not deadline.expired():
                raise
        return None, deadline_passed(
            failure, message_id=request.message_id, deadline=timeout.deadline
        )

    def _closed_now(self) -> bool:
        return self.closed or (self._session is not None and self._session.closed)

    async def aclose(self) -> None:
        self.closed = True
        if self._session is not None:
            await self._session.close()


_PARSER_LIMIT = 2 * MAX_FIELD_LINE


class WithheldError(aiohttp.ClientError):
    """What aiohttp's traces see of a failure under :class:`KeyedAttempt`: the name and
    redacted text of aiohttp's error, which is the attempt's ``failure``. It is neither
    ``ClientOSError`` nor ``ServerDisconnectedError``, after which aiohttp sends an
    idempotent request again on its own: a cancel is never re-sent unseen (a second
    one answers code 5, and every attempt is counted)."""


class KeyedAttempt:
    """One attempt's middleware: sends ``url`` (the URL with the key) in place of the
    masked URL the request was made with, and keeps what failed under it."""

    __slots__ = ("_secret", "_url", "failure")

    def __init__(self, url: yarl.URL, secret: Secret) -> None:
        self._url = url
        self._secret = secret
        self.failure: Exception | None = None

    async def __call__(
        self, request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        request.url = self._url
        try:
            return await handler(request)
        except Exception as exc:
            self.failure = exc
            name, text = type(exc).__name__, redact(str(exc), self._secret)
            raise WithheldError(f"{name}: {text}" if text else name) from None

    def original(self, exc: Exception) -> Exception:
        """What aiohttp raised: ``exc`` itself, unless it is the stand-in."""
        if isinstance(exc, WithheldError) and self.failure is not None:
            return self.failure
        return exc

    def __repr__(self) -> str:
        return "KeyedAttempt(url=[REDACTED])"


def _is_ambiguous_framing(exc: Exception) -> bool:
    """Whether aiohttp's parser refused a head for carrying both Transfer-Encoding
    and Content-Length. aiohttp names the case only in its message (the class,
    ``BadHttpMessage``, is every malformed head's), so a test with a server that sends
    that head fails the day the wording changes."""
    if not isinstance(exc, aiohttp.ClientResponseError):
        return False
    text = str(exc.message)
    return "Transfer-Encoding" in text and "Content-Length" in text


def _parser_refusal(exc: Exception) -> str:
    """Why aiohttp's parser refused a head by a rule of every transport's
    (:mod:`..._core.framing`), else ``""``. By its message again: a ``Content-Length``
    twice ("Duplicate Content-Length") or as a list (``7, 7``: an invalid character in
    that one line), or a line past aiohttp's limit ("Got more than N bytes")."""
    if not isinstance(exc, aiohttp.ClientResponseError):
        return ""
    text = str(exc.message)
    listed = text.startswith("Invalid character in Content-Length") and "," in text
    if listed or text.startswith("Duplicate Content-Length"):
        return REPEATED_LENGTH
    return OVERSIZED_HEAD if text.startswith("Got more than") else ""


def _oversized(response: aiohttp.ClientResponse) -> bool:
    """Whether the answer's header lines are over the SDK's limit, measured as the
    SDK's own streams measure them (``Name: value``)."""
    return oversized_fields(len(name) + 2 + len(value) for name, value in response.raw_headers)


@functools.lru_cache(maxsize=16)
def _aiohttp_timeout(timeout: Timeout) -> aiohttp.ClientTimeout:
    """aiohttp's time-outs for ``timeout`` (cached, as ``to_httpx_timeout`` is). A read
    time-out as long as the deadline is left out: the deadline ends the attempt first,
    and each chunk read would re-arm a timer for nothing."""
    read = timeout.read if timeout.read != timeout.deadline else None
    return aiohttp.ClientTimeout(total=None, sock_connect=timeout.connect, sock_read=read)


async def _read(response: Any) -> RawResponse:
    """The answer's status, headers and body, decoded here under the size cap."""
    status = response.status
    headers = {name.lower(): value for name, value in response.headers.items()}
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return RawResponse(status, headers, b"", oversized=True)
    decoder = BodyDecoder(headers.get("content-encoding", ""), limit=MAX_BODY_BYTES)
    try:
        async for chunk in response.content.iter_any():
            if not decoder.feed(chunk):
                break
    except TimeoutError:
        raise  # a read time-out (aiohttp's are TimeoutErrors too): not a short body
    except aiohttp.ClientError:
        return RawResponse(status, headers, decoder.body, truncated=True)
    decoder.finish()
    return RawResponse(
        status, headers, decoder.body, oversized=decoder.oversized, undecodable=decoder.problem
    )


def ssl_context(base_url: str) -> ssl.SSLContext | None:
    """The TLS settings for ``base_url`` by httpx's rule, which every transport keeps:
    certifi's roots, or ``$SSL_CERT_FILE`` / ``$SSL_CERT_DIR`` when set."""
    return tls_context(base_url, _certifi_context)


def _certifi_context() -> ssl.SSLContext:
    if cafile := os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=cafile)
    if capath := os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=capath)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


# --- aiohttp's exceptions as ours -----------------------------------------------------


def connection_error(
    exc: BaseException,
    *,
    message_id: str,
    response_started: bool = False,
    secret: SecretText = None,
    local_address: str | None = None,
    refused: str = "",
) -> APIConnectionError | None:
    """Our error for an aiohttp failure, with whether the request was sent; ``None``
    when ``exc`` is none of aiohttp's. The text is redacted, and nothing is chained.
    ``refused``: why the answer's head was refused (then not transient)."""
    if not type(exc).__module__.startswith("aiohttp"):
        return None
    names = {cls.__name__ for cls in type(exc).__mro__}
    name = type(exc).__name__
    return transport_error(
        name,
        redact(str(exc), secret) or name,
        message_id=message_id,
        sent=response_started or not names & _NOT_SENT,
        timed_out=bool(names & _TIMEOUTS),
        tls=None if response_started else tls_failure(exc),
        source=None if response_started else source_failure(exc, local_address),
        refused=refused,
    )


# By class name, as aiohttp's exception tree has moved between versions.
_NOT_SENT = frozenset(
    {"ClientConnectorError", "ClientProxyConnectionError", "ConnectionTimeoutError", "InvalidURL"}
)
_TIMEOUTS = frozenset({"ConnectionTimeoutError", "ServerTimeoutError", "SocketTimeoutError"})
