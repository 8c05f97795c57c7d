"""A scriptable HTTP/1.1 server on 127.0.0.1, for tests over real sockets.

A :class:`~tests.support.loop_server.LoopServer`: asyncio, trio and sync tests can all talk
to it. Each request is recorded (raw target, decoded params,
headers, arrival time on ``time.monotonic()``, the connection and the address it
came from) and answered by the next action
scripted for its ``messageId``, or by ``server.default`` once that script is empty::

    server.script("300", drop(), reply(5))  # first attempt: no answer; second: code 5
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import math
import socket
import threading
import time
from collections.abc import Iterator
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

import pytest

from mailpartner_async._core.models import PROVIDER_MESSAGES
from mailpartner_async.testing._answers import code_answer
from tests.support.loop_server import LoopServer, RequestHead

__all__ = [
    "Action",
    "RecordedRequest",
    "ScriptedServer",
    "body",
    "drop",
    "html_502",
    "json_body",
    "raw",
    "reply",
    "server",
    "stall",
    "truncated",
    "unused_port",
]

Kind = Literal["api", "body", "drop", "truncate", "raw"]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    429: "Too Many Requests",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclasses.dataclass(frozen=True)
class Action:
    """One scripted answer. Build it with the helpers below rather than by hand."""

    kind: Kind
    status: int = 200
    data: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    code: int = 200
    message: str | None = None
    delay: float = 0.0  # seconds to wait before acting; math.inf: until the server stops
    declared_length: int = 0  # for "truncate": the Content-Length announced
    close: bool = False  # answer with "Connection: close" and close


def reply(
    code: int = 200,
    message: str | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    delay: float = 0.0,
    close: bool = False,
) -> Action:
    """An API answer with this control code, as JSON, or as positional XML with CDATA
    when the request asked for ``_format=xml``."""
    return Action(
        "api",
        status=status,
        code=code,
        message=message,
        headers=tuple((headers or {}).items()),
        delay=delay,
        close=close,
    )


def body(
    data: bytes | str,
    *,
    status: int = 200,
    content_type: str = "text/plain",
    headers: dict[str, str] | None = None,
    delay: float = 0.0,
) -> Action:
    """A well-framed answer with exactly this body."""
    payload = data.encode() if isinstance(data, str) else data
    extra = tuple((headers or {}).items())
    return Action("body", status, payload, content_type, extra, delay=delay)


def json_body(obj: object, *, status: int = 200, headers: dict[str, str] | None = None) -> Action:
    return body(json.dumps(obj), status=status, content_type="application/json", headers=headers)


def html_502(text: str = "Bad Gateway") -> Action:
    page = f"<html><head><title>502 Bad Gateway</title></head><body><h1>{text}</h1></body></html>"
    return body(page, status=502, content_type="text/html")


def drop(*, delay: float = 0.0) -> Action:
    """Read the request, then close the connection without answering."""
    return Action("drop", delay=delay)


def stall(seconds: float = math.inf, then: Action | None = None) -> Action:
    """Wait ``seconds`` (by default until the server stops), then act as ``then``."""
    return dataclasses.replace(then or reply(), delay=seconds)


def truncated(data: bytes = b'{"success": true, "co', *, declared: int = 100) -> Action:
    """Announce ``declared`` bytes of body, send ``data`` only, then close."""
    return Action("truncate", data=data, declared_length=declared)


def raw(data: bytes) -> Action:
    """Send these bytes instead of an HTTP answer, then close."""
    return Action("raw", data=data)


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    method: str
    target: str  # as sent on the request line, still percent-encoded
    path: str
    params: tuple[tuple[str, str], ...]  # decoded, in order, repeats kept
    headers: dict[str, str]  # names lower-cased
    arrived: float  # time.monotonic()
    connection: int  # which TCP connection carried it (1, 2, ...)
    peer: str = ""  # the IP address that connection came from

    @property
    def message_id(self) -> str | None:
        return next((value for name, value in self.params if name == "messageId"), None)


class ScriptedServer(LoopServer):
    """Start with ``with ScriptedServer() as server:``; see the module docstring."""

    thread_name = "scripted-http-server"

    def __init__(self) -> None:
        super().__init__()
        self.default = reply()
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._scripts: dict[str, collections.deque[Action]] = {}
        self._lock = threading.Lock()

    def script(self, message_id: str, *actions: Action) -> None:
        """Append actions for this message id, one used per request."""
        with self._lock:
            self._scripts.setdefault(message_id, collections.deque()).extend(actions)

    def requests_for(self, message_id: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.message_id == message_id]

    # --- the server thread -------------------------------------------------------

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: int
    ) -> None:
        peer = str(writer.get_extra_info("peername")[0])
        while (head := await self._read_head(reader)) is not None:
            request = _recorded(head, connection, peer)
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                keep_alive = await self._act(self._next_action(request), request, writer)
            finally:
                self.in_flight -= 1
            if not keep_alive:
                break

    def _next_action(self, request: RecordedRequest) -> Action:
        with self._lock:
            script = self._scripts.get(request.message_id or "")
            return script.popleft() if script else self.default

    async def _act(
        self, action: Action, request: RecordedRequest, writer: asyncio.StreamWriter
    ) -> bool:
        """Carry out one action; False when the connection must close."""
        if action.delay == math.inf:
            await asyncio.Event().wait()  # until the server stops and cancels us
        elif action.delay:
            await asyncio.sleep(action.delay)
        if action.kind == "drop":
            return False
        if action.kind == "raw":
            writer.write(action.data)
            await writer.drain()
            return False
        data, content_type = action.data, action.content_type
        if action.kind == "api":
            data, content_type = _render(action, xml=("_format", "xml") in request.params)
        length = action.declared_length if action.kind == "truncate" else len(data)
        close = action.close or action.kind == "truncate"
        close = close or request.headers.get("connection", "").lower() == "close"
        head = [
            f"HTTP/1.1 {action.status} {_REASONS.get(action.status, 'Status')}",
            f"Content-Type: {content_type}",
            f"Content-Length: {length}",
            f"Connection: {'close' if close else 'keep-alive'}",
            *(f"{name}: {value}" for name, value in action.headers),
        ]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
        await writer.drain()
        return not close


def _recorded(head: RequestHead, connection: int, peer: str) -> RecordedRequest:
    request_line, headers = head
    method, target, _version = request_line.split()
    parts = urlsplit(target)
    params = tuple(parse_qsl(parts.query, keep_blank_values=True))
    return RecordedRequest(
        method, target, parts.path, params, headers, time.monotonic(), connection, peer
    )


def _render(action: Action, *, xml: bool) -> tuple[bytes, str]:
    if not xml:
        answer = code_answer(action.code, xml=False, message=action.message)
        return answer.body, "application/json"
    message = action.message
    if message is None:
        message = PROVIDER_MESSAGES.get(action.code, "")
    success = action.code == 200
    # Looser than the fake's XML on purpose: indented, and the CDATA padded with
    # spaces, so the real client is seen to strip what a sloppier server adds.
    document = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<result>\n'
        f"  <entry>{'true' if success else 'false'}</entry>\n"
        f"  <entry>{action.code}</entry>\n"
        f"  <entry><![CDATA[ {message} ]]></entry>\n</result>\n"
    )
    return document.encode(), "application/xml"


def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    """A running :class:`ScriptedServer`; fails the test if the server itself broke."""
    with ScriptedServer() as running:
        yield running
    assert not running.errors, f"the test server failed: {running.errors!r}"
