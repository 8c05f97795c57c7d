"""An ASGI app (the fake's, usually) served by uvicorn over real HTTP on a free
loopback port, in a background thread, for as long as a block runs."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

import uvicorn

__all__ = ["serve_asgi"]


@contextlib.contextmanager
def serve_asgi(
    app: Any, *, host: str = "127.0.0.1", lifespan: Literal["on", "off"] = "off"
) -> Iterator[str]:
    """Serve ``app``; yields the base URL of the API (``http://HOST:PORT/v1``).

    Stopping waits for the server's thread, and a server that does not stop fails the
    test that used it.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=0,
        lifespan=lifespan,
        ws="none",
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="asgi-on-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        assert not thread.is_alive(), "uvicorn did not stop"
