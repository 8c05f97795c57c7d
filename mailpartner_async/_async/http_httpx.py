"""The httpx transport: one attempt, a :class:`CancelRequest` in, a :class:`RawResponse` out.

Written once, for HTTPX and async; the sync twin, and the twins for the HTTPX2 fork,
are generated from it by renaming. A transport for another HTTP library is another
module with the same ``open``, ``send`` and ``aclose``.
"""

from __future__ import annotations

import httpx

from .._core.attempt import attempt_failure, deadline_passed, settled
from .._core.body import ACCEPT_ENCODING, BodyDecoder
from .._core.errors import ConfigurationError, MailPartnerError
from .._core.protocol import CancelRequest, RawResponse
from .._core.settings import MAX_BODY_BYTES, Settings, Timeout
from .._deadline import AsyncDeadline
from .._httpx import USER_AGENT, connection_error, new_async_client, to_httpx_timeout

__all__ = ["AsyncHttpxTransport"]


class AsyncHttpxTransport:
    """Sends attempts over an ``httpx.AsyncClient``, the SDK's own or the caller's.

    A client the caller passed (``owned=False``) is never closed here.
    """

    def __init__(self, http: httpx.AsyncClient, *, owned: bool) -> None:
        self.http = http
        self.owned = owned

    @classmethod
    def open(cls, settings: Settings, http_client: object | None) -> AsyncHttpxTransport:
        """The caller's ``http_client``, checked, or a new client the SDK owns."""
        if http_client is None:
            return cls(new_async_client(settings), owned=True)
        if not isinstance(http_client, httpx.AsyncClient):
            raise ConfigurationError(
                f"http_client must be an httpx.AsyncClient, got {type(http_client).__name__}"
            )
        return cls(http_client, owned=False)

    async def send(self, request: CancelRequest, timeout: Timeout) -> RawResponse:
        """One attempt, ended at ``timeout.deadline`` whatever the server does.

        A failure is one of our errors, raised here with no chained exception: an
        ``APIConnectionError`` (``APITimeoutError`` past the deadline) saying whether
        the request may have reached the server.
        """
        return settled(*await self._attempt(request, timeout))

    async def _attempt(
        self, request: CancelRequest, timeout: Timeout
    ) -> tuple[RawResponse | None, MailPartnerError | None]:
        started = False
        failure: MailPartnerError | None = None
        with AsyncDeadline(timeout.deadline) as deadline:
            try:
                async with self.http.stream(
                    request.method,
                    request.url,
                    params=request.params,
                    headers=_HEADERS,
                    timeout=to_httpx_timeout(timeout),
                    follow_redirects=False,
                ) as response:
                    started = True
                    return await _read(response, deadline), None
            except Exception as exc:
                mapped = connection_error(
                    exc, message_id=request.message_id, response_started=started
                )
                failure = attempt_failure(
                    exc, mapped, message_id=request.message_id, closed=self.http.is_closed
                )
        return None, deadline_passed(
            failure, message_id=request.message_id, deadline=timeout.deadline
        )

    async def aclose(self) -> None:
        if self.owned:
            await self.http.aclose()


_HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING}
_DRAIN_BYTES = 1024 * 1024


async def _read(response: httpx.Response, deadline: AsyncDeadline) -> RawResponse:
    """The answer's status, headers and body, decoded here under the size cap."""
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
            deadline.check()
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
