"""A raw RESP server on loopback that answers the limiter's script with what a broken
Redis (or a proxy in front of one) might send.

It speaks just enough RESP2 and RESP3 for redis-py: ``HELLO`` (a RESP3 map),
``CLIENT SETINFO``, ``SELECT``, ``PING``, ``SCRIPT LOAD`` and ``EVALSHA``/``EVAL``.
Every script call gets :attr:`RespServer.reply`: raw bytes, or a callable of the call's
arguments giving them; ``trickle`` sends them one byte at a time, ``trickle`` seconds
apart. :attr:`RespServer.script_calls` counts the script calls.

    with RespServer(b"$3\\r\\n1.5\\r\\n") as redis:
        RedisRateLimiter(redis.url)  # every reserve answered with the bulk string "1.5"
"""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import BinaryIO

__all__ = ["RespServer", "resp"]

Reply = bytes | Callable[[list[bytes]], bytes]


def resp(value: object) -> bytes:
    """``value`` in RESP: int, bytes (bulk), str (simple), list (array), None (RESP3
    null), float (RESP3 double), dict (RESP3 map)."""
    if isinstance(value, bool):
        return b"#t\r\n" if value else b"#f\r\n"
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, float):
        return b",%r\r\n" % value
    if isinstance(value, bytes):
        return b"$%d\r\n%s\r\n" % (len(value), value)
    if isinstance(value, str):
        return b"+%s\r\n" % value.encode()
    if value is None:
        return b"_\r\n"
    if isinstance(value, list):
        return b"*%d\r\n" % len(value) + b"".join(resp(item) for item in value)
    if isinstance(value, dict):
        items = b"".join(resp(k) + resp(v) for k, v in value.items())
        return b"%%%d\r\n" % len(value) + items
    raise TypeError(f"no RESP for {value!r}")


class RespServer:
    """One listening socket on 127.0.0.1, one thread per connection."""

    def __init__(self, reply: Reply, *, trickle: float = 0.0) -> None:
        self.reply = reply
        self.trickle = trickle
        self.script_calls = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # so that the accepting thread sees the close
        self.port = self._listener.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> RespServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection, connection.makefile("rb") as reader:
            while not self._closed.is_set():
                try:
                    command = _read_command(reader)
                except (OSError, ValueError):
                    return
                if command is None:
                    return
                try:
                    self._answer(connection, command)
                except OSError:
                    return

    def _answer(self, connection: socket.socket, command: list[bytes]) -> None:
        name = command[0].upper()
        if name in (b"EVALSHA", b"EVAL"):
            with self._lock:
                self.script_calls += 1
            reply = self.reply(command) if callable(self.reply) else self.reply
            if not self.trickle:
                connection.sendall(reply)
                return
            for byte in reply:
                if self._closed.wait(self.trickle):
                    return
                connection.sendall(bytes([byte]))
            return
        if name == b"HELLO":
            proto = int(command[1]) if len(command) > 1 else 2
            connection.sendall(resp({b"server": b"redis", b"version": b"7.2.0", b"proto": proto}))
        elif name == b"SCRIPT" and command[1].upper() == b"LOAD":
            connection.sendall(resp(hashlib.sha1(command[2]).hexdigest().encode()))  # noqa: S324
        elif name == b"PING":
            connection.sendall(b"+PONG\r\n")
        else:  # CLIENT SETINFO, SELECT, ...
            connection.sendall(b"+OK\r\n")


def _read_command(reader: BinaryIO) -> list[bytes] | None:
    """One command (an array of bulk strings); ``None`` at the end of the stream."""
    head = reader.readline()
    if not head:
        return None
    if not head.startswith(b"*"):  # an inline command
        return head.split()
    parts = []
    for _ in range(int(head[1:])):
        size = int(reader.readline()[1:])
        parts.append(reader.read(size + 2)[:-2])
    return parts
