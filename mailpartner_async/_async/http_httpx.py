"""The httpx transport: one attempt, a :class:`CancelRequest` in, a :class:`RawResponse` out.

``_async/http_httpx.py`` and its generated twin are the only modules that send
with httpx. A transport for another HTTP library is another module with the same
``open``, ``send`` and ``aclose``.
"""

from __future__ import annotations

import httpx

from .._config import MAX_BODY_BYTES, Settings, Timeout
from .._exceptions import ConfigurationError
from .._httpx import (
    TRANSPORT_ERRORS,
    USER_AGENT,
    connection_error,
    new_async_client,
    to_httpx_timeout,
)
from .._protocol import CancelRequest, RawResponse

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
        if settings.transport != "httpx":
            raise ConfigurationError("pass either http_client or transport, not both")
        if not isinstance(http_client, httpx.AsyncClient):
            raise ConfigurationError(
                f"http_client must be an httpx.AsyncClient, got {type(http_client).__name__}"
            )
        return cls(http_client, owned=False)

    async def send(self, request: CancelRequest, timeout: Timeout) -> RawResponse:
        """One attempt; a transport failure is an ``APIConnectionError`` saying
        whether the request may have reached the server."""
        response_started = False
        try:
            async with self.http.stream(
                request.method,
                request.url,
                params=request.params,
                headers={"User-Agent": USER_AGENT},
                timeout=to_httpx_timeout(timeout),
            ) as response:
                response_started = True
                return await self._read(response)
        except TRANSPORT_ERRORS as exc:
            raise connection_error(
                exc, message_id=request.message_id, response_started=response_started
            ) from exc

    async def _read(self, response: httpx.Response) -> RawResponse:
        status, headers = response.status_code, dict(response.headers)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            # Refuse without reading: leaving httpx's byte stream half-read
            # abandons its nested async generators, which trio reports as
            # ResourceWarnings (encode/httpx#3686).
            return RawResponse(status, headers, b"", oversized=True)
        body = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    break
        except TRANSPORT_ERRORS:
            return RawResponse(status, headers, bytes(body), truncated=True)
        return RawResponse(status, headers, bytes(body))

    async def aclose(self) -> None:
        if self.owned:
            await self.http.aclose()
