"""httpx transports that answer from a FakeMailPartner in process, with no sockets."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio.lowlevel
import httpx

from ._answers import FakeResponse

if TYPE_CHECKING:
    from ._fake import FakeMailPartner

__all__ = ["FakeAsyncTransport", "FakeTransport"]


def _respond(answer: FakeResponse, request: httpx.Request) -> httpx.Response:
    # Injected failures are raised as the very exceptions httpx's own transports
    # raise, so the SDK takes its real paths (sent or not sent, retried).
    if answer.failure == "connect_error":
        raise httpx.ConnectError(
            "connection refused (injected by FakeMailPartner.fail_next)", request=request
        )
    if answer.failure == "timeout":
        raise httpx.ReadTimeout(
            "timed out reading the answer (injected by FakeMailPartner.fail_next)",
            request=request,
        )
    return httpx.Response(
        answer.status, headers=list(answer.headers), content=answer.body, request=request
    )


class FakeAsyncTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` whose every request is answered by ``fake``.

    Each request yields to the event loop once (as real I/O would) before the fake
    answers it, so concurrent callers interleave and cancellation can land.

    Example::

        async with httpx.AsyncClient(transport=FakeAsyncTransport(fake)) as http:
            response = await http.get("https://fake.mailpartner.test/v1/message-cancel")
    """

    def __init__(self, fake: FakeMailPartner) -> None:
        self.fake = fake

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` from the fake (or raise the injected transport error)."""
        await anyio.lowlevel.checkpoint()
        answer = self.fake.handle(
            request.method, request.url.path, request.url.params.multi_items()
        )
        return _respond(answer, request)


class FakeTransport(httpx.BaseTransport):
    """The sync twin of :class:`FakeAsyncTransport`, for ``httpx.Client``.

    Example::

        with httpx.Client(transport=FakeTransport(fake)) as http:
            response = http.get("https://fake.mailpartner.test/v1/message-cancel")
    """

    def __init__(self, fake: FakeMailPartner) -> None:
        self.fake = fake

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` from the fake (or raise the injected transport error)."""
        answer = self.fake.handle(
            request.method, request.url.path, request.url.params.multi_items()
        )
        return _respond(answer, request)
