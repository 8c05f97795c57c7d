"""A real TLS server on loopback (trustme certificates), one answer per connection.

:func:`tls_server` makes the server of each TLS case of issue 20, item 9: ``ok`` (a
certificate for localhost from the given CA), ``untrusted-ca`` (the same, for a
client that does not trust that CA), ``other-host``, ``expired``, and
``plain-http`` (plain HTTP on the port). Used by tests/transports/test_tls.py and
the fuzz test (which changes :attr:`TLSServer.answer` for each example).
"""

from __future__ import annotations

import contextlib
import datetime
import socket
import ssl
import threading

import trustme

__all__ = ["ANSWER", "PLAIN_ANSWER", "TLS_CASES", "TLSServer", "server_context", "tls_server"]

TLS_CASES = ("ok", "untrusted-ca", "other-host", "expired", "plain-http")
BODY = b'{"success": true, "code": 200, "message": "The email has been canceled."}'
ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n" % len(BODY)
) + BODY
PLAIN_ANSWER = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
NOW = datetime.datetime.now(datetime.UTC)


class TLSServer:
    """A one-answer-per-connection HTTPS server on loopback, in a thread; with
    ``context=None`` it speaks plain HTTP on the port. Counts the connections.
    ``answer`` is what each connection is sent."""

    def __init__(self, context: ssl.SSLContext | None, answer: bytes = ANSWER) -> None:
        self._context = context
        self.answer = answer
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            with contextlib.suppress(OSError), conn:
                conn.settimeout(10)
                if self._context is None:
                    conn.recv(65536)
                    conn.sendall(self.answer)
                    continue
                with self._context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(65536)
                    tls.sendall(self.answer)

    def __enter__(self) -> TLSServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() (Linux)
        self._sock.close()
        self._thread.join(timeout=10)

    @property
    def base_url(self) -> str:
        return f"https://localhost:{self.port}/v1"


def server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


def tls_server(ca: trustme.CA, case: str) -> TLSServer:
    """The server of ``case`` (one of :data:`TLS_CASES`), its certificates from ``ca``."""
    if case == "plain-http":
        return TLSServer(None, PLAIN_ANSWER)
    if case == "other-host":
        return TLSServer(server_context(ca.issue_cert("other.example")))
    if case == "expired":
        cert = ca.issue_cert(
            "localhost",
            not_before=NOW - datetime.timedelta(days=10),
            not_after=NOW - datetime.timedelta(days=1),
        )
        return TLSServer(server_context(cert))
    return TLSServer(server_context(ca.issue_cert("localhost")))  # "ok", "untrusted-ca"
