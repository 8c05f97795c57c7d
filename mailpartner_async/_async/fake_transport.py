"""An httpx transport that answers from a fake server in process, with no sockets.

The fake is :class:`~mailpartner_async.testing.FakeMailPartner`, or anything with its
sans-I/O ``handle()`` (:class:`FakeAPI`); the transport only carries a request to
it and its answer back. :mod:`mailpartner_async.testing` exports the transports.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import httpx

from .._compat import async_sleep
from .._core.settings import DEFAULT_CLIENT_ADDRESS, LOCAL_ADDRESS_EXTENSION

__all__ = ["FakeAPI", "FakeAnswer", "FakeAsyncTransport"]


class FakeAnswer(Protocol):
    """What the transport needs of an answer (:class:`~mailpartner_async.testing.FakeResponse`)."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Sequence[tuple[str, str]]: ...

    @property
    def body(self) -> bytes: ...

    @property
    def failure(self) -> str | None: ...


class FakeAPI(Protocol):
    """What the transport needs of a fake: ``FakeMailPartner.handle``."""

    def handle(
        self,
        method: str,
        path: str,
        params: Iterable[tuple[str, str]],
        *,
        client_address: str = ...,
    ) -> FakeAnswer: ...


def _respond(answer: FakeAnswer, request: httpx.Request) -> httpx.Response:
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

    Each request first yields once, as real I/O would (to the event loop; a thread
    gives way to the others), so concurrent callers interleave and a cancellation
    can land before the fake answers.

    A request comes from the ``local_address`` of the client that sent it, if it
    set one (``AsyncMailPartner(transport=..., local_address="127.0.0.2")``), else
    from ``127.0.0.1``: the fake counts its cap per address.

    Example::

        async with httpx.AsyncClient(transport=FakeAsyncTransport(fake)) as http:
            response = await http.get("https://fake.mailpartner.test/v1/message-cancel")
    """

    honours_local_address = True
    """The client's ``local_address`` is taken as the address its requests come from."""

    def __init__(self, fake: FakeAPI) -> None:
        self.fake = fake

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` from the fake (or raise the injected transport error)."""
        await async_sleep(0)
        address = request.extensions.get(LOCAL_ADDRESS_EXTENSION, DEFAULT_CLIENT_ADDRESS)
        answer = self.fake.handle(
            request.method,
            request.url.path,
            request.url.params.multi_items(),
            client_address=str(address),
        )
        return _respond(answer, request)
