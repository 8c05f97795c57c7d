"""The scaffold under the test servers: asyncio on 127.0.0.1 in a background thread.

A :class:`LoopServer` runs its own event loop in a daemon thread, so asyncio, trio and
sync tests can all talk to it. Subclasses answer in :meth:`LoopServer._handle`, one
call per connection; :meth:`LoopServer.stop` cancels every connection still open, so
a stall ends with the server. An exception a handler raises is kept in ``errors``
(the fixtures fail the test on it); a client that goes away is not an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Self

__all__ = ["LoopServer", "RequestHead"]

RequestHead = tuple[str, dict[str, str]]
"""A request line (without its line end) and its headers (names lower-cased)."""


class LoopServer:
    """Start with ``with`` (or :meth:`start` and :meth:`stop`); ``port`` is then bound."""

    thread_name = "loop-server"

    def __init__(self) -> None:
        self.port = 0
        self.errors: list[BaseException] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._connections = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10) or not self.port:
            raise RuntimeError(f"the {self.thread_name} did not start: {self.errors!r}")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        assert not self._thread.is_alive(), f"the {self.thread_name} did not stop"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: int
    ) -> None:
        """Serve one connection (``connection`` counts them from 1); it closes after."""
        raise NotImplementedError

    @staticmethod
    async def _read_head(reader: asyncio.StreamReader) -> RequestHead | None:
        """The next request's line and headers, its body read and dropped; ``None``
        when the client closed the connection instead."""
        line = await reader.readline()
        if not line.strip():
            return None
        headers: dict[str, str] = {}
        while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if length := int(headers.get("content-length", "0") or 0):
            await reader.readexactly(length)
        return line.decode("latin-1").rstrip("\r\n"), headers

    # --- the server thread -----------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by the fixture
            self.errors.append(exc)
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        listener = await asyncio.start_server(self._track, "127.0.0.1", 0)
        self.port = listener.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            listener.close()
            await listener.wait_closed()

    async def _track(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._connections += 1
        try:
            await self._handle(reader, writer, self._connections)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away or wrote nonsense: its business
        except Exception as exc:
            self.errors.append(exc)
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
