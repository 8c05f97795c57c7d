"""The fake as a plain ASGI 3 app, to serve it over real HTTP (uvicorn, hypercorn)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import parse_qsl

from .._core.settings import DEFAULT_CLIENT_ADDRESS

if TYPE_CHECKING:
    from ._fake import FakeMailPartner

__all__ = ["FakeASGIApp"]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]


class FakeASGIApp:
    """An ASGI 3 app answering ``GET /v1/message-cancel`` from a :class:`FakeMailPartner`.

    Other paths get a JSON 404 and other methods a 405, both without a control code.
    Requests count against the fake's cap by the address of the connection's peer
    (``scope["client"]``). Lifespan events are acknowledged. An injected
    ``connect_error`` or ``timeout`` leaves the request unanswered until the client
    disconnects (``timeout`` has done its work first, ``connect_error`` has not), so
    the client sees a real time-out.
    Get it from :attr:`FakeMailPartner.asgi_app`; it needs no framework.

    Example::

        uvicorn.run(
            FakeMailPartner(schedule_unknown=True).asgi_app,
            port=8025,
            log_config=uvicorn_log_config(),  # masks apiKey= in the access log
        )
    """

    def __init__(self, fake: FakeMailPartner) -> None:
        self.fake = fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope (``http`` or ``lifespan``)."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise ValueError(f"FakeASGIApp serves http only, not {scope['type']!r}")
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        params = parse_qsl(query, keep_blank_values=True)
        # The peer's address, as the provider counts its cap (none over a Unix socket).
        client = scope.get("client")
        address = str(client[0]) if client else DEFAULT_CLIENT_ADDRESS
        answer = self.fake.handle(scope["method"], scope["path"], params, client_address=address)
        if answer.failure is not None:
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        headers = [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers
        ]
        headers.append((b"content-length", str(len(answer.body)).encode("ascii")))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
