"""A TCP forwarder on 127.0.0.1 that can be cut (every connection through it closed,
new ones closed at once) and mended: one worker's Redis outage while the others
still reach it."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Self

__all__ = ["CutProxy"]


class CutProxy:
    """Forwards to ``127.0.0.1:port``; its ``url`` is a Redis URL through it."""

    def __init__(self, port: int) -> None:
        self._target = ("127.0.0.1", port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self._listener.getsockname()[1]}/0"
        self._cut = False
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, *exc_info: type[BaseException] | BaseException | TracebackType | None
    ) -> None:
        _close(self._listener)  # its shutdown wakes the accept() (close alone does not)
        self.cut()
        for thread in self._threads:
            thread.join(5)

    def cut(self) -> None:
        """Close every connection through it, and each new one as it comes."""
        with self._lock:
            self._cut = True
            closing, self._open = self._open, []
        for sock in closing:
            _close(sock)

    def mend(self) -> None:
        with self._lock:
            self._cut = False

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed
                return
            with self._lock:
                if self._cut:
                    conn.close()
                    continue
                upstream = socket.create_connection(self._target)
                self._open += [conn, upstream]
                for src, dst in ((conn, upstream), (upstream, conn)):
                    thread = threading.Thread(target=_pipe, args=(src, dst), daemon=True)
                    self._threads.append(thread)
                    thread.start()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        _close(src)
        _close(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
