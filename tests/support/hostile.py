"""A hostile HTTP server on raw asyncio sockets (127.0.0.1), and a counting server.

Unlike tests/support/server.py, which always frames a sane answer, this one writes whatever
bytes a :class:`Misbehaviour` renders: a reason phrase echoing the key, a broken
status line, a lying ``Content-Encoding``, a decompression bomb, an answer dripped one
byte at a time. Like it, it is a :class:`~tests.support.loop_server.LoopServer`: asyncio,
trio and sync tests can all use it, and every stall ends when the server stops::

    hostile.script("1", drip("body", every=0.3))  # the first request for id 1
    hostile.default = echo_key_in_reason()        # every other request

:class:`CountingServer` records whatever reaches it and answers 502: a proxy that
must stay unused, or a host a redirect must never reach.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import gzip
import json
import math
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Literal
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from tests.support.loop_server import LoopServer, RequestHead

__all__ = [
    "CountingServer",
    "HostileServer",
    "Misbehaviour",
    "Seen",
    "bad_status_line",
    "bad_status_line_with_key",
    "big_set_cookie",
    "bomb",
    "chunked_with_content_length",
    "close_after_request",
    "conflicting_content_length",
    "counting",
    "deep_json",
    "drip",
    "duplicate_content_length",
    "echo_key_in_header",
    "echo_key_in_reason",
    "errors_with_key",
    "gzip_lie",
    "header_over_the_limit",
    "hostile",
    "identical_content_length",
    "latin1_json",
    "listed_content_length",
    "raw",
    "redirect",
    "reply",
    "reset_after_request",
    "reset_in_the_head",
    "stall",
    "two_answers",
]


@dataclasses.dataclass(frozen=True)
class Seen:
    """One request as it arrived."""

    request_line: str  # raw, still percent-encoded
    params: tuple[tuple[str, str], ...]  # decoded, in order
    headers: dict[str, str]  # names lower-cased
    arrived: float  # time.monotonic()
    connection: int  # which TCP connection carried it (1, 2, ...)

    def param(self, name: str) -> str:
        return next((value for key, value in self.params if key == name), "")

    @property
    def message_id(self) -> str:
        return self.param("messageId")

    @property
    def key(self) -> str:
        return self.param("apiKey")


@dataclasses.dataclass(frozen=True)
class Misbehaviour:
    """What to write for one request: ``pieces`` (rendered from the request), each
    written ``every`` seconds after the previous one, after waiting ``delay``
    (``math.inf``: until the server stops); then the connection closes unless
    ``keep_alive``. Writing stops, and the connection closes, ``give_up_after``
    seconds in: a client without a deadline is seen to fail, not to hang the suite."""

    name: str
    pieces: Callable[[Seen], Sequence[bytes]]
    every: float = 0.0
    delay: float = 0.0
    keep_alive: bool = False
    give_up_after: float = math.inf
    reset: bool = False  # end with a TCP reset (RST), not a close


def answer(
    status_line: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    *,
    length: bool = True,
    close: bool = True,
) -> bytes:
    """The bytes of one answer; ``Content-Length`` is added unless ``length`` is False."""
    lines = [status_line, *(f"{name}: {value}" for name, value in headers)]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    lines.append(f"Connection: {'close' if close else 'keep-alive'}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def api_body(code: int, message: str | None = None) -> bytes:
    text = message if message is not None else ("Message cancelled" if code == 200 else "nope")
    return json.dumps({"success": code == 200, "code": code, "message": text}).encode()


JSON = ("Content-Type", "application/json")


def reply(
    code: int = 200,
    message: str | None = None,
    *,
    status: int = 200,
    headers: Sequence[tuple[str, str]] = (),
    delay: float = 0.0,
) -> Misbehaviour:
    """A plain, well-framed API answer on a connection kept alive."""
    data = answer(
        f"HTTP/1.1 {status} Whatever", [JSON, *headers], api_body(code, message), close=False
    )
    return Misbehaviour(f"reply-{code}", lambda seen: [data], delay=delay, keep_alive=True)


def raw(data: bytes, *, name: str = "raw") -> Misbehaviour:
    """These bytes, then close."""
    return Misbehaviour(name, lambda seen: [data])


def stall() -> Misbehaviour:
    """Read the request, answer nothing until the server stops."""
    return dataclasses.replace(reply(), name="stall", delay=math.inf)


def close_after_request() -> Misbehaviour:
    """Read the request, then close without a byte."""
    return Misbehaviour("close-after-request", lambda seen: [])


def drip(
    where: Literal["head", "body", "chunks"], every: float = 0.3, *, give_up_after: float = 4.0
) -> Misbehaviour:
    """A valid code-200 answer, one byte every ``every`` seconds: all of it
    (``head``), only the body (``body``), or the body as one-byte chunks of the
    chunked encoding (``chunks``); the connection closes ``give_up_after`` seconds in."""
    body = api_body(200)
    if where == "chunks":
        head = answer(
            "HTTP/1.1 200 OK", [JSON, ("Transfer-Encoding", "chunked")], b"", length=False
        )
        chunks = [b"1\r\n" + body[i : i + 1] + b"\r\n" for i in range(len(body))]
        pieces = [head, *chunks, b"0\r\n\r\n"]
    else:
        whole = answer("HTTP/1.1 200 OK", [JSON], body)
        start = 0 if where == "head" else len(whole) - len(body)
        pieces = [whole[:start], *(whole[i : i + 1] for i in range(start, len(whole)))]
    return Misbehaviour(
        f"drip-{where}",
        lambda seen: [piece for piece in pieces if piece],
        every=every,
        give_up_after=give_up_after,
    )


def echo_key_in_reason() -> Misbehaviour:
    """``HTTP/1.1 200 <key>`` and a valid code-200 body."""
    return Misbehaviour(
        "echo-key-in-reason",
        lambda seen: [answer(f"HTTP/1.1 200 {seen.key}", [JSON], api_body(200))],
    )


def echo_key_in_header(name: str = "X-Echo") -> Misbehaviour:
    """A valid answer with a header whose value is the key."""
    return Misbehaviour(
        "echo-key-in-header",
        lambda seen: [answer("HTTP/1.1 200 OK", [JSON, (name, seen.key)], api_body(200))],
    )


def bad_status_line_with_key() -> Misbehaviour:
    return Misbehaviour(
        "bad-status-line-with-key",
        lambda seen: [answer(f"HTTP/1.1 2x0 {seen.key}", [JSON], api_body(200))],
    )


def bad_status_line() -> Misbehaviour:
    """A status line no parser takes, echoing nothing: the error's text is the
    library's own."""
    return Misbehaviour(
        "bad-status-line", lambda seen: [answer("HTTP/1.1 2x0 Whatever", [JSON], api_body(200))]
    )


def header_over_the_limit() -> Misbehaviour:
    """A 40 KiB header line, the key at its start: past the SDK's 16 KiB and past
    the parsers' own limits too, so that the parser's error, which quotes the line,
    is what must not carry the key (the answer is refused)."""

    def render(seen: Seen) -> list[bytes]:
        headers = [JSON, ("X-Long", seen.key + "x" * 40_000)]
        return [answer("HTTP/1.1 200 OK", headers, api_body(200))]

    return Misbehaviour("header-over-the-limit", render)


def reset_after_request() -> Misbehaviour:
    """Read the request, then reset the connection (RST) without a byte."""
    return Misbehaviour("reset-after-request", lambda seen: [], reset=True)


def reset_in_the_head() -> Misbehaviour:
    """Half a status line, then a reset."""
    return Misbehaviour("reset-in-the-head", lambda seen: [b"HTTP/1.1 20"], reset=True)


def errors_with_key() -> Misbehaviour:
    """Code 4 whose ``errors`` nest the key in dicts, lists and beside non-strings."""

    def render(seen: Seen) -> list[bytes]:
        document = {
            "success": False,
            "code": 4,
            "message": "x",
            "errors": [{"elementId": 1, "message": {"deep": [seen.key]}}, [seen.key], 42],
        }
        return [answer("HTTP/1.1 200 OK", [JSON], json.dumps(document).encode())]

    return Misbehaviour("errors-with-key", render)


def gzip_lie() -> Misbehaviour:
    """``Content-Encoding: gzip`` over a body that is not gzip."""
    headers = [JSON, ("Content-Encoding", "gzip")]
    data = answer("HTTP/1.1 200 OK", headers, api_body(200))
    return Misbehaviour("gzip-lie", lambda seen: [data])


def deep_json(depth: int = 30_000) -> Misbehaviour:
    """``[[[...]]]``, ``depth`` deep (about ``2 * depth`` bytes)."""
    data = answer("HTTP/1.1 200 OK", [JSON], b"[" * depth + b"]" * depth)
    return Misbehaviour("deep-json", lambda seen: [data])


@functools.cache
def _bomb_body() -> bytes:
    return gzip.compress(b" " * 60_000_000, compresslevel=9)


def bomb() -> Misbehaviour:
    """About 60 KB of gzip inflating to 60 MB, correctly framed."""
    headers = [JSON, ("Content-Encoding", "gzip")]
    data = answer("HTTP/1.1 200 OK", headers, _bomb_body())
    return Misbehaviour("bomb", lambda seen: [data])


LATIN1_MESSAGE = "Le courriel a été annulé"


def latin1_json() -> Misbehaviour:
    body = json.dumps({"success": True, "code": 200, "message": LATIN1_MESSAGE}, ensure_ascii=False)
    headers = [("Content-Type", "application/json; charset=iso-8859-1")]
    data = answer("HTTP/1.1 200 OK", headers, body.encode("iso-8859-1"))
    return Misbehaviour("latin1-json", lambda seen: [data])


def redirect(location: str) -> Misbehaviour:
    """302 to ``location`` with the key (percent-encoded) in its query."""

    def render(seen: Seen) -> list[bytes]:
        target = f"{location}?apiKey={quote(seen.key, safe='')}&messageId={seen.message_id}"
        return [answer("HTTP/1.1 302 Found", [("Location", target)], b"")]

    return Misbehaviour("redirect", render)


def big_set_cookie() -> Misbehaviour:
    """A valid answer plus a 9 KB ``Set-Cookie`` carrying the key."""

    def render(seen: Seen) -> list[bytes]:
        cookie = f"session={seen.key}{'x' * 9000}; Path=/"
        return [answer("HTTP/1.1 200 OK", [JSON, ("Set-Cookie", cookie)], api_body(200))]

    return Misbehaviour("big-set-cookie", render)


def long_header_lines(sizes: Sequence[int], name: str) -> Misbehaviour:
    """A valid answer plus one ``X-Long-n`` header line of each size in ``sizes``
    (bytes, ``Name: value`` counted), the key at the start of each value."""

    def render(seen: Seen) -> list[bytes]:
        headers = [JSON]
        for n, size in enumerate(sizes):
            field = f"X-Long-{n}"
            value = seen.key + "x" * (size - len(field) - 2 - len(seen.key))
            headers.append((field, value))
        return [answer("HTTP/1.1 200 OK", headers, api_body(200))]

    return Misbehaviour(name, render)


def duplicate_content_length() -> Misbehaviour:
    """Two different ``Content-Length`` headers, the key in the reason and a header."""

    def render(seen: Seen) -> list[bytes]:
        body = api_body(200)
        headers = [JSON, ("X-Echo", seen.key), ("Content-Length", str(len(body) + 7))]
        return [answer(f"HTTP/1.1 200 {seen.key}", headers, body)]

    return Misbehaviour("duplicate-content-length", render)


def identical_content_length() -> Misbehaviour:
    """A valid answer whose ``Content-Length`` is sent twice, the same both times."""
    body = api_body(200)
    data = answer("HTTP/1.1 200 OK", [JSON, ("Content-Length", str(len(body)))], body)
    return Misbehaviour("identical-content-length", lambda seen: [data])


def early_hints_then(final: Misbehaviour) -> Misbehaviour:
    """A ``103 Early Hints`` interim answer, then ``final``'s answer."""
    hints = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    return Misbehaviour(f"early-hints-then-{final.name}", lambda seen: [hints, *final.pieces(seen)])


def listed_content_length() -> Misbehaviour:
    """A valid answer whose one ``Content-Length`` is a list of the same value twice
    (``54, 54``): a repeat in one line (RFC 9110, section 8.6)."""
    body = api_body(200)
    headers = [JSON, ("Content-Length", f"{len(body)}, {len(body)}")]
    data = answer("HTTP/1.1 200 OK", headers, body, length=False)
    return Misbehaviour("listed-content-length", lambda seen: [data])


def conflicting_content_length() -> Misbehaviour:
    """An answer whose two ``Content-Length`` headers differ (no key in it)."""
    body = api_body(200)
    headers = [JSON, ("Content-Length", str(len(body) + 7))]
    data = answer("HTTP/1.1 200 OK", headers, body)
    return Misbehaviour("conflicting-content-length", lambda seen: [data])


def chunked_with_content_length() -> Misbehaviour:
    """``Transfer-Encoding: chunked`` and a ``Content-Length`` that disagree about
    where the answer ends: the smuggling shape (RFC 9112, section 6.3)."""
    body = api_body(200)
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    headers = [JSON, ("Transfer-Encoding", "chunked"), ("Content-Length", str(len(body)))]
    data = answer("HTTP/1.1 200 OK", headers, chunked, length=False)
    return Misbehaviour("chunked-with-content-length", lambda seen: [data])


STRAY_MESSAGE = "stray answer, meant for no request"


def two_answers() -> Misbehaviour:
    """This request's code-200 answer and, in the same write, a second complete
    code-200 answer that no request asked for; the connection is kept alive, so a
    client that reuses it reads the stray answer as the next request's."""
    first = answer("HTTP/1.1 200 OK", [JSON], api_body(200), close=False)
    stray = answer("HTTP/1.1 200 OK", [JSON], api_body(200, STRAY_MESSAGE), close=False)
    return Misbehaviour("two-answers", lambda seen: [first + stray], keep_alive=True)


def _seen(head: RequestHead, connection: int) -> Seen:
    request_line, headers = head
    parts = request_line.split()
    target = parts[1] if len(parts) > 1 else ""
    params = tuple(parse_qsl(urlsplit(target).query, keep_blank_values=True))
    return Seen(request_line, params, headers, time.monotonic(), connection)


class HostileServer(LoopServer):
    """Start with ``with HostileServer() as hostile:``; see the module docstring."""

    thread_name = "hostile-http-server"

    def __init__(self) -> None:
        super().__init__()
        self.default = reply()
        self.requests: list[Seen] = []
        self._scripts: dict[str, collections.deque[Misbehaviour]] = {}
        self._lock = threading.Lock()

    def script(self, message_id: str, *misbehaviours: Misbehaviour) -> None:
        """Append misbehaviours for this message id, one used per request."""
        with self._lock:
            self._scripts.setdefault(message_id, collections.deque()).extend(misbehaviours)

    def requests_for(self, message_id: str) -> list[Seen]:
        return [seen for seen in self.requests if seen.message_id == message_id]

    def _next(self, seen: Seen) -> Misbehaviour:
        with self._lock:
            script = self._scripts.get(seen.message_id)
            return script.popleft() if script else self.default

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: int
    ) -> None:
        while (head := await self._read_head(reader)) is not None:
            seen = _seen(head, connection)
            self.requests.append(seen)
            misbehaviour = self._next(seen)
            if misbehaviour.delay == math.inf:
                await asyncio.Event().wait()  # until the server stops and cancels us
            elif misbehaviour.delay:
                await asyncio.sleep(misbehaviour.delay)
            try:
                async with asyncio.timeout(misbehaviour.give_up_after):
                    await self._write(misbehaviour, seen, writer)
            except TimeoutError:
                return
            if misbehaviour.reset:
                _reset(writer)
                return
            if not misbehaviour.keep_alive:
                return

    async def _write(
        self, misbehaviour: Misbehaviour, seen: Seen, writer: asyncio.StreamWriter
    ) -> None:
        for index, piece in enumerate(misbehaviour.pieces(seen)):
            if index and misbehaviour.every:
                await asyncio.sleep(misbehaviour.every)
            if writer.is_closing():
                return
            writer.write(piece)
            await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset: a zero linger time makes the close send RST."""
    writer.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
    )
    writer.transport.abort()


class CountingServer(LoopServer):
    """Records every request line that reaches it and answers 502."""

    thread_name = "counting-http-server"

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Seen] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: int
    ) -> None:
        while (head := await self._read_head(reader)) is not None:
            self.requests.append(_seen(head, connection))
            writer.write(answer("HTTP/1.1 502 Bad Gateway", [], b"counted", close=False))
            await writer.drain()


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    """A running :class:`HostileServer`; fails the test if the server itself broke."""
    server = HostileServer()
    with server:
        yield server
    assert not server.errors, f"the hostile server failed: {server.errors!r}"


@pytest.fixture
def counting() -> Iterator[CountingServer]:
    """A running :class:`CountingServer` (proxy or redirect target that must stay unused)."""
    server = CountingServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
    assert not server.errors, f"the counting server failed: {server.errors!r}"
