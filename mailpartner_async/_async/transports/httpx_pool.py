"""An httpx transport on network streams that honour an attempt's deadline, can be
aborted, and refuse an answer that came before its request: what the httpx clients
the SDK makes run on, async and sync.

A thread blocked in a read cannot be cancelled: its wait ends by its time-out, or
by its socket being shut down. httpx's own ``HTTPTransport`` takes no network
backend, so this is a small ``httpx.BaseTransport`` over ``httpcore.ConnectionPool``
(or httpcore's proxies), all public API: the pool's ``network_backend=`` makes every
stream it opens one of ours. An async client's waits end by its cancel scope anyway;
it runs here for what only the streams can see: bytes left after a complete answer
(see :func:`_answered_before_asked`). This module is written once, async, as every
module that waits is, and its sync twin (and the twins for the HTTPX2 fork) are
generated from it by renaming.

A stream learns whose I/O it does from its time-out: httpcore hands each connect,
read and write the request's own time-out for that phase (its ``timeout``
extension), unchanged. A request that carries an :class:`AsyncAttempt` (in its
``mailpartner.attempt`` extension) has those time-outs turned into :class:`_Phase`
values, floats that also name the attempt. Each wait is then clipped to what is
left of the attempt's deadline, so a server dripping a byte at a time cannot hold a
blocking read open; and while a stream waits, aborting its attempt shuts its socket
down, so the read ends at once (the batch's stop does that).

Through a SOCKS proxy, opening a connection is also negotiating its tunnel, with
reads and writes that httpcore hands no time-out (httpcore2 hands them the read and
write ones). The request's ``trace`` extension (:class:`_AsyncOpening`) tells the new
connection's stream when that negotiation starts and ends: meanwhile its waits have
the connect time-out, its failures are connect failures (the request was not sent),
and a failed negotiation closes the stream, which httpcore leaves open.
"""

from __future__ import annotations

import contextlib
import math
import socket
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpcore
import httpx

from ..._compat import AsyncCancelScope, async_thread_lock, monotonic
from ..._core.framing import HeadScan

if True:  # ASYNC
    from ..loop_guard import on_asyncio

__all__ = ["ATTEMPT", "AsyncAttempt", "AsyncAttemptTransport"]

ATTEMPT = "mailpartner.attempt"
"""The request extension that carries the :class:`AsyncAttempt` of a request."""


class AsyncAttempt:
    """One attempt: its deadline, and the streams doing its I/O right now.

    :meth:`abort` shuts those streams down (a blocked read then ends at once), and
    any stream that starts I/O for the attempt afterwards. Safe to call from another
    thread than the attempt's, and it never blocks.
    """

    __slots__ = ("_at", "_busy", "_lock", "aborted", "carried", "refused", "written")

    def __init__(self, deadline: float | None) -> None:
        self._at = None if deadline is None else monotonic() + deadline
        self._busy: set[_AsyncAttemptStream] = set()
        self._lock = async_thread_lock()
        self.aborted = False
        # Why a stream refused the answer's head as it came (framing.HeadScan).
        self.refused = ""
        # Whether an AsyncAttemptTransport carried the request (then its streams
        # tell), and whether a byte of the request was written.
        self.carried = False
        self.written = False

    def may_have_reached(self) -> bool:
        """Whether the request may have reached the server: yes, unless the SDK's own
        transport carried it and wrote none of it (the connection was still opening)."""
        return self.written or not self.carried

    def overdue(self) -> bool:
        """Whether the deadline has passed."""
        return self._at is not None and monotonic() >= self._at

    def clip(self, seconds: float | None) -> float | None:
        """A wait of ``seconds`` (``None``: unbounded), no longer than the deadline."""
        if self._at is None:
            return seconds
        left = max(self._at - monotonic(), 0.001)  # a time-out of 0 would not wait at all
        return left if seconds is None else min(seconds, left)

    def phases(self, timeouts: Mapping[str, Any]) -> dict[str, Any]:
        """A request's time-outs, those the streams see naming this attempt."""
        named = {phase: _Phase(timeouts.get(phase), self) for phase in ("connect", "read", "write")}
        return {**timeouts, **named}

    def abort(self) -> None:
        # Under the lock: a stream cannot end its wait, go back to the pool and
        # serve another attempt while it is being shut for this one.
        with self._lock:
            self.aborted = True
            for stream in self._busy:
                stream.shut()

    def begin(self, stream: _AsyncAttemptStream) -> None:
        """``stream`` starts waiting for this attempt (shut at once if it was aborted)."""
        with self._lock:
            self._busy.add(stream)
            if self.aborted:
                stream.shut()

    def end(self, stream: _AsyncAttemptStream) -> None:
        with self._lock:
            self._busy.discard(stream)


class _Phase(float):
    """A phase's time-out in seconds (``inf``: none) that also names its attempt."""

    __slots__ = ("attempt",)
    attempt: AsyncAttempt

    def __new__(cls, seconds: float | None, attempt: AsyncAttempt) -> _Phase:
        phase = super().__new__(cls, math.inf if seconds is None else seconds)
        phase.attempt = attempt
        return phase

    @property
    def seconds(self) -> float | None:
        return None if math.isinf(self) else float(self)


def _clipped(timeout: float | None) -> float | None:
    """What a wait with ``timeout`` waits: for an attempt's, the deadline's share of it."""
    return timeout.attempt.clip(timeout.seconds) if isinstance(timeout, _Phase) else timeout


@contextlib.contextmanager
def _busy(stream: _AsyncAttemptStream, timeout: float | None) -> Iterator[float | None]:
    """Around one wait of ``stream``: the time-out to wait with; meanwhile, aborting
    the attempt shuts the stream down."""
    if not isinstance(timeout, _Phase):
        yield timeout
        return
    timeout.attempt.begin(stream)
    try:
        yield _clipped(timeout)
    finally:
        timeout.attempt.end(stream)


class _AsyncAttemptStream(httpcore.AsyncNetworkStream):
    """A network stream whose every wait honours the attempt it is for, which counts
    its reads since its last write (see :func:`_answered_before_asked`), and which
    scans the head those reads bring, as the server sent it, before h11 merges a
    repeated ``Content-Length``: a refusal is told to the attempt."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self.reads_since_write = 0
        self._head = HeadScan()
        # While a proxy's tunnel is negotiated on it (see _AsyncOpening): the connect
        # time-out every wait then has.
        self.opening = False
        self.connect_timeout: float | None = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self.opening:
            with _opening_failures(), _busy(self, self.connect_timeout) as seconds:
                data = await self._stream.read(max_bytes, seconds)
            if not data:
                raise httpcore.ConnectError("the proxy closed the connection while opening it")
            return data
        with _busy(self, timeout) as seconds:
            data = await self._stream.read(max_bytes, seconds)
        self.reads_since_write += 1
        self._head.feed(data)
        if self._head.refused and isinstance(timeout, _Phase):
            timeout.attempt.refused = self._head.refused
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self.opening:
            with _opening_failures(), _busy(self, self.connect_timeout) as seconds:
                await self._stream.write(buffer, seconds)
            return
        self.reads_since_write = 0
        self._head = HeadScan()
        if isinstance(timeout, _Phase):
            timeout.attempt.written = True
        with _busy(self, timeout) as seconds:
            await self._stream.write(buffer, seconds)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        with _busy(self, timeout) as seconds:
            tls = await self._stream.start_tls(ssl_context, server_hostname, seconds)
        return _AsyncAttemptStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)

    def shut(self) -> None:
        """End the wait in progress now: shut the socket down. Closing it is left to
        httpcore, which finds the connection broken and drops it."""
        sock = self._stream.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def _opening_failures() -> Iterator[None]:
    """A read or write failure while a connection is being opened, as the connect
    failure it is: the request was not sent."""
    try:
        yield
    except httpcore.TimeoutException as exc:
        raise httpcore.ConnectTimeout(str(exc) or "timed out opening the connection") from exc
    except httpcore.NetworkError as exc:
        raise httpcore.ConnectError(str(exc) or "the connection broke while opening") from exc


_SOCKS_NEGOTIATION = "socks.setup_socks5_connection."


class _AsyncOpening:
    """The ``trace`` extension of a request through a SOCKS proxy: it marks the new
    connection's stream as opening while httpcore negotiates the tunnel on it, with
    the request's connect time-out, and closes the stream if that fails. Every other
    event goes on to the trace the request had, if any.

    httpcore's trace events are its public hook, the negotiation's name is not
    documented: tests/_async/test_socks_proxy.py fails (a proxy that never answers
    blocks past the time-out) if it changes.
    """

    __slots__ = ("_connect", "_stream", "_then")

    def __init__(self, connect_timeout: float | None, then: Any) -> None:
        self._connect = connect_timeout
        self._then = then
        self._stream: _AsyncAttemptStream | None = None

    async def __call__(self, event: str, info: Mapping[str, Any]) -> None:
        if event == _SOCKS_NEGOTIATION + "started":
            stream = info.get("stream")
            if isinstance(stream, _AsyncAttemptStream):
                self._stream = stream
                stream.opening, stream.connect_timeout = True, self._connect
        elif event.startswith(_SOCKS_NEGOTIATION) and self._stream is not None:
            stream, self._stream = self._stream, None
            stream.opening = False
            if event.endswith(".failed"):
                # Shielded: at the deadline, the caller's own scope would end the close
                # and put its cancellation in place of the connect failure.
                with AsyncCancelScope(shield=True):
                    await stream.aclose()
        if self._then is not None:
            await self._then(event, info)


class _AsyncAttemptBackend(httpcore.AsyncNetworkBackend):
    """TCP connections on attempt streams. Only TCP: the SDK asks for no Unix socket
    and no httpcore retries (the other backend methods)."""

    def __init__(self, local_address: str | None = None) -> None:
        self._backend = httpcore.AnyIOBackend()
        if True:  # ASYNC
            # Under trio, httpcore's trio backend: anyio's leaves the socket open when
            # it cannot bind it to local_address (an address this host lacks). Made
            # under trio only: without trio installed, httpcore's stand-in raises.
            self._trio: httpcore.AsyncNetworkBackend | None = None
        self._local_address = local_address

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        # The client's own address, given here rather than to the pool: httpcore's
        # SOCKS pool takes none, and every pool calls its backend.
        source = local_address or self._local_address
        backend: httpcore.AsyncNetworkBackend = self._backend
        if True:  # ASYNC
            if not on_asyncio():
                self._trio = backend = self._trio or httpcore.TrioBackend()
        stream = await backend.connect_tcp(host, port, _clipped(timeout), source, socket_options)
        return _AsyncAttemptStream(stream)


class AsyncAttemptTransport(httpx.AsyncBaseTransport):
    """httpcore's pool on attempt streams, as an httpx transport whose errors are
    httpx's. Made of what ``httpx.AsyncHTTPTransport`` is made of (``verify=``, here
    the TLS context, ``None`` for plain HTTP; ``limits=``; ``proxy=``;
    ``local_address=``, which here holds for a SOCKS proxy too)."""

    def __init__(
        self,
        tls: ssl.SSLContext | None,
        limits: httpx.Limits,
        proxy: str | None,
        local_address: str | None = None,
    ) -> None:
        self._pool = _pool(tls, limits, proxy, _AsyncAttemptBackend(local_address))
        self._socks = isinstance(self._pool, httpcore.AsyncSOCKSProxy)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        extensions = request.extensions
        attempt = extensions.get(ATTEMPT)
        if isinstance(attempt, AsyncAttempt):
            attempt.carried = True
            extensions = {**extensions, "timeout": attempt.phases(extensions.get("timeout", {}))}
        if self._socks:
            connect = extensions.get("timeout", {}).get("connect")
            extensions = {**extensions, "trace": _AsyncOpening(connect, extensions.get("trace"))}
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=extensions,
        )
        with _as_httpx_errors():
            response = await self._pool.handle_async_request(core)
        problem = _refusal(response, attempt)
        if problem:
            # Closing an answer whose body was not read closes its connection.
            await response.aclose()
            raise httpx.RemoteProtocolError(problem)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_AsyncBody(response),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def _refusal(response: httpcore.Response, attempt: object) -> str:
    """Why the answer is not taken, if it is not: it came before its request, or its
    head was refused as it came (then :attr:`AsyncAttempt.refused` says why)."""
    if _answered_before_asked(response):
        return (
            "the server sent an answer before this request (bytes left after the "
            "previous answer on the connection); the connection was closed"
        )
    return attempt.refused if isinstance(attempt, AsyncAttempt) else ""


def _answered_before_asked(response: httpcore.Response) -> bool:
    """Whether the answer's head was complete with no read after the request was
    written: it came from bytes already buffered, left over after the previous
    answer on the connection, so it answers no request of ours.

    httpcore keeps what it read past a complete answer and takes it as the next
    answer; it offers no public way to see those bytes, but the connection's stream
    (the ``network_stream`` extension) is one of ours and counts its reads.
    """
    stream = response.extensions.get("network_stream")
    return isinstance(stream, _AsyncAttemptStream) and stream.reads_since_write == 0


class _AsyncBody(httpx.AsyncByteStream):
    """An answer's body for httpx, its errors httpx's."""

    def __init__(self, response: httpcore.Response) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        # httpcore's own byte stream, as httpx's transport reads it: no other
        # generator in between (trio reports each one left half-read).
        with _as_httpx_errors():
            async for chunk in self._response.stream:  # type: ignore[union-attr]
                yield chunk

    async def aclose(self) -> None:
        await self._response.aclose()


def _pool(
    tls: ssl.SSLContext | None,
    limits: httpx.Limits,
    proxy: str | None,
    backend: httpcore.AsyncNetworkBackend,
) -> httpcore.AsyncConnectionPool:
    """The pool, direct or through ``proxy``, as httpx's own transport builds it."""
    options: dict[str, Any] = {
        "ssl_context": tls,
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
        "network_backend": backend,
    }
    if proxy is None:
        return httpcore.AsyncConnectionPool(**options)
    parsed = httpx.Proxy(proxy)
    url = httpcore.URL(
        scheme=parsed.url.raw_scheme,
        host=parsed.url.raw_host,
        port=parsed.url.port,
        target=parsed.url.raw_path,
    )
    if parsed.url.scheme in ("socks5", "socks5h"):
        return httpcore.AsyncSOCKSProxy(proxy_url=url, proxy_auth=parsed.raw_auth, **options)
    return httpcore.AsyncHTTPProxy(
        proxy_url=url, proxy_auth=parsed.raw_auth, proxy_headers=parsed.headers.raw, **options
    )


# httpcore's exceptions as httpx's, the most specific first (as httpx's own
# transport maps them); whatever else is raised passes as it is.
_HTTPX_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for core_error, httpx_error in _HTTPX_ERRORS:
            if isinstance(exc, core_error):
                raise httpx_error(str(exc)) from exc
        raise
