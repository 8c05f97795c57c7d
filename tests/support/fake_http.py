"""The fake served over real HTTP by uvicorn from a thread of the test process, with a
record of every answer: when it was given, to which client address, for which id.

Run in the test process, the fake's own state (:meth:`FakeMailPartner.status`,
:attr:`FakeMailPartner.requests`) stays readable while worker processes call it.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl

import uvicorn

from mailpartner_async.testing import FakeMailPartner

__all__ = ["Answer", "RecordingApp", "served_fake"]


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """One answer of the fake: ``at`` is ``time.monotonic()`` in the serving process."""

    at: float
    address: str
    message_id: str
    status: int


class RecordingApp:
    """The fake's ASGI app, recording each answer in :attr:`answers`, in the fake's order.

    The fake decides and the answer is recorded in one step of the event loop (no
    ``await`` between them), so the order of :attr:`answers` is the order the fake
    handled the requests in.
    """

    def __init__(self, fake: FakeMailPartner) -> None:
        self.app = fake.asgi_app
        self.answers: list[Answer] = []
        self._lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else ""
        query = dict(parse_qsl(bytes(scope.get("query_string", b"")).decode("latin-1")))
        message_id = query.get("messageId", "")

        async def recording(message: Any) -> None:
            if message["type"] == "http.response.start":
                answer = Answer(time.monotonic(), address, message_id, message["status"])
                with self._lock:
                    self.answers.append(answer)
            await send(message)

        await self.app(scope, receive, recording)

    def snapshot(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)


@contextmanager
def served_fake(fake: FakeMailPartner) -> Iterator[tuple[str, RecordingApp]]:
    """Serve ``fake`` on a free port of 127.0.0.1; yield its base URL and the recorder."""
    app = RecordingApp(fake)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, access_log=False, log_level="warning", lifespan="off", timeout_keep_alive=30
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="served-fake", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start serving the fake")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/v1", app
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
