"""The aiohttp transport: one attempt on aiohttp's own API, no httpx models on the way.

Async client only, on asyncio (aiohttp has no sync API and no trio support), so this
module has no generated twin. It keeps the rules every transport keeps: the proxy
and TLS settings read once by the SDK's own rules (:func:`~.._httpx.proxy_for`,
:func:`~.._httpx.ssl_context`), no redirect, no hidden re-send, the body decoded by
:class:`~.._body.BodyDecoder` under the size cap, the attempt's deadline, and
errors mapped to ours with their text redacted.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any

from .._core.attempt import attempt_failure, deadline_passed, settled
from .._core.body import ACCEPT_ENCODING, BodyDecoder
from .._core.errors import ConfigurationError, MailPartnerError
from .._core.protocol import CancelRequest, RawResponse
from .._core.settings import MAX_BODY_BYTES, Settings, Timeout
from .._httpx import connection_error, proxy_for, ssl_context
from .._version import __version__

if TYPE_CHECKING:
    import aiohttp

__all__ = ["AsyncAiohttpTransport"]


class AsyncAiohttpTransport:
    """Sends attempts over an ``aiohttp.ClientSession`` the SDK owns (made at first
    use, inside the event loop)."""

    owned = True

    def __init__(self, settings: Settings) -> None:
        try:
            import aiohttp
        except ImportError:
            raise ConfigurationError(
                "transport='aiohttp' needs the aiohttp extra: "
                "pip install '.[aiohttp]' in a clone of the repository (not on PyPI yet)"
            ) from None
        self._settings = settings
        self._proxy = proxy_for(settings.base_url)
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
        import aiohttp

        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self._settings.max_concurrency, keepalive_timeout=30.0, ssl=self._ssl
            ),
            # Found once by proxy_for; trust_env would look again, in a thread, per request.
            trust_env=False,
            proxy=self._proxy,
            auto_decompress=False,
            headers=self._headers,
        )
        # aiohttp re-sends an idempotent request once when the server drops the
        # connection. A cancel is not idempotent in effect (the second answers code
        # 5), and every attempt must be seen to be counted, so that is turned off.
        if hasattr(session, "_retry_connection"):
            session._retry_connection = False
        self._session = session
        return session

    async def send(self, request: CancelRequest, timeout: Timeout) -> RawResponse:
        """One attempt, ended at ``timeout.deadline`` whatever the server does."""
        return settled(*await self._attempt(request, timeout))

    async def _attempt(
        self, request: CancelRequest, timeout: Timeout
    ) -> tuple[RawResponse | None, MailPartnerError | None]:
        import yarl

        if self.closed:
            return None, MailPartnerError("the client is closed", message_id=request.message_id)
        session = self._session or self._open_session()
        # Encoded by the protocol, as httpx encodes it: yarl would leave a "+" in the
        # key or the id as it is, and the server would read a space.
        url = yarl.URL(f"{request.url}?{request.query()}", encoded=True)
        phases = _aiohttp_timeout(timeout)
        started = False
        failure: MailPartnerError | None = None
        # aiohttp runs on asyncio only, so the attempt's deadline is asyncio's own
        # (a third of the cost of a portable cancel scope, on every call).
        deadline = asyncio.timeout(timeout.deadline)
        try:
            async with deadline:
                try:
                    async with session.get(url, allow_redirects=False, timeout=phases) as response:
                        started = True
                        return await _read(response), None
                except Exception as exc:
                    mapped = connection_error(
                        exc, message_id=request.message_id, response_started=started
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


@functools.lru_cache(maxsize=16)
def _aiohttp_timeout(timeout: Timeout) -> aiohttp.ClientTimeout:
    """aiohttp's time-outs for ``timeout`` (cached, as ``to_httpx_timeout`` is). A read
    time-out as long as the deadline is left out: the deadline ends the attempt first,
    and each chunk read would re-arm a timer for nothing."""
    import aiohttp

    read = timeout.read if timeout.read != timeout.deadline else None
    return aiohttp.ClientTimeout(total=None, sock_connect=timeout.connect, sock_read=read)


async def _read(response: Any) -> RawResponse:
    """The answer's status, headers and body, decoded here under the size cap."""
    import aiohttp

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
