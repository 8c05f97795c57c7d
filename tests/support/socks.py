"""A SOCKS5 proxy on 127.0.0.1 for tests over real sockets, on threads, so async and
sync clients alike can go through it.

It records the address each connection came from and the destination each CONNECT
asked for, and then does what its ``mode`` says: ``"relay"`` tunnels to ``target``
(whatever host was asked for: the clients name a host no resolver knows), ``"silent"``
accepts the connection and never answers the greeting, ``"close"`` closes the
connection as soon as the greeting came. No authentication is offered.

    with SocksProxy(target=("127.0.0.1", port)) as proxy:
        monkeypatch.setenv("ALL_PROXY", proxy.url)
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType
from typing import Literal, Self

__all__ = ["SocksProxy"]

Mode = Literal["relay", "silent", "close"]

_VERSION = 5
_NO_AUTH = 0
_CONNECT = 1
_SUCCEEDED = 0
_IPV4, _DOMAIN, _IPV6 = 1, 3, 4


class SocksProxy:
    """A SOCKS5 proxy; :attr:`url` names it as ``ALL_PROXY`` takes it."""

    def __init__(
        self, target: tuple[str, int] | None = None, *, mode: Mode = "relay", scheme: str = "socks5"
    ) -> None:
        self._target = target
        self._mode = mode
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"{scheme}://127.0.0.1:{self._listener.getsockname()[1]}"
        self.peers: list[str] = []  # the address each connection came from
        self.destinations: list[tuple[str, int]] = []  # what each CONNECT asked for
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._accept, name="socks-accept", daemon=True)]
        self._threads[0].start()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, *exc_info: type[BaseException] | BaseException | TracebackType | None
    ) -> None:
        _close(self._listener)  # its shutdown wakes the accept() (close alone does not)
        with self._lock:
            closing, self._open = self._open, []
        for sock in closing:
            _close(sock)
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        while True:
            try:
                conn, (host, _port) = self._listener.accept()
            except OSError:  # closed
                return
            with self._lock:
                self.peers.append(host)
                self._open.append(conn)
            if self._mode == "silent":
                continue
            self._spawn(self._serve, conn)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            _version, count = _exact(conn, 2)
            methods = _exact(conn, count)
            if self._mode == "close":
                _close(conn)
                return
            assert _NO_AUTH in methods, f"the client offered no 'no auth' method: {methods!r}"
            conn.sendall(bytes([_VERSION, _NO_AUTH]))
            self.destinations.append(_read_connect(conn))
            assert self._target is not None, "a relaying proxy needs a target"
            upstream = socket.create_connection(self._target)
        except (OSError, EOFError):
            _close(conn)
            return
        with self._lock:
            self._open.append(upstream)
        bound_host, bound_port = upstream.getsockname()[:2]
        conn.sendall(
            bytes([_VERSION, _SUCCEEDED, 0, _IPV4])
            + socket.inet_aton(bound_host)
            + struct.pack("!H", bound_port)
        )
        self._spawn(_pipe, upstream, conn)
        _pipe(conn, upstream)


def _read_connect(conn: socket.socket) -> tuple[str, int]:
    """The destination of the client's CONNECT request, read off ``conn``."""
    _version, command, _reserved, kind = _exact(conn, 4)
    assert command == _CONNECT, f"only CONNECT is served, got command {command}"
    if kind == _IPV4:
        host = socket.inet_ntoa(_exact(conn, 4))
    elif kind == _IPV6:
        host = socket.inet_ntop(socket.AF_INET6, _exact(conn, 16))
    else:
        assert kind == _DOMAIN, f"unknown address type {kind}"
        host = _exact(conn, _exact(conn, 1)[0]).decode("ascii")
    (port,) = struct.unpack("!H", _exact(conn, 2))
    return host, port


def _exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise EOFError("the client closed the connection during the handshake")
        data += chunk
    return data


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
