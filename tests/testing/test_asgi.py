"""The fake as an ASGI app: the protocol directly, then over real HTTP with uvicorn."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from mailpartner_async import AlreadyCancelledError, AsyncMailPartner, CancelCode
from mailpartner_async.testing import FAST_RETRY_POLICY, FakeMailPartner
from tests.support.uvicorn_thread import serve_asgi

Message = dict[str, Any]


async def _call(app: Any, scope: Message, incoming: list[Message]) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def _http_scope(method: str, path: str, query: bytes) -> Message:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": [],
    }


@pytest.mark.anyio
async def test_asgi_lifespan_is_acknowledged() -> None:
    sent = await _call(
        FakeMailPartner().asgi_app,
        {"type": "lifespan", "asgi": {"version": "3.0"}},
        [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}],
    )
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


@pytest.mark.anyio
async def test_asgi_decodes_the_query_and_answers_with_length() -> None:
    fake = FakeMailPartner()
    fake.schedule(timedelta(hours=1), "300&apiKey=x é")
    query = b"apiKey=test-key&messageId=300%26apiKey%3Dx+%C3%A9"
    sent = await _call(
        fake.asgi_app,
        _http_scope("GET", "/v1/message-cancel", query),
        [{"type": "http.request", "body": b"", "more_body": False}],
    )
    start, body = sent
    assert start["status"] == 200
    assert (b"content-length", str(len(body["body"])).encode()) in start["headers"]
    assert fake.status("300&apiKey=x é") == "cancelled"


@pytest.mark.anyio
async def test_asgi_holds_an_injected_timeout_until_the_client_leaves() -> None:
    fake = FakeMailPartner()
    message_id = fake.schedule(timedelta(hours=1))
    fake.fail_next(1, "timeout")
    query = f"apiKey=test-key&messageId={message_id}".encode()
    sent = await _call(
        fake.asgi_app,
        _http_scope("GET", "/v1/message-cancel", query),
        [{"type": "http.request", "body": b""}, {"type": "http.disconnect"}],
    )
    assert sent == []
    assert fake.status(message_id) == "cancelled"


@pytest.mark.anyio
async def test_asgi_refuses_other_scope_types() -> None:
    with pytest.raises(ValueError, match="http only"):
        await _call(FakeMailPartner().asgi_app, {"type": "websocket"}, [])


# --- over real HTTP ----------------------------------------------------------------


class _Holder:
    """Routes the one server's requests to the current test's fake."""

    fake = FakeMailPartner()

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        await self.fake.asgi_app(scope, receive, send)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[_Holder, str]]:
    """uvicorn on a free loopback port, in a background thread, for this module."""
    holder = _Holder()
    with serve_asgi(holder, lifespan="on") as base_url:
        yield holder, base_url


@pytest.fixture
def served(server: tuple[_Holder, str]) -> tuple[FakeMailPartner, str]:
    """A fresh fake behind the module's server, and the base URL to reach it."""
    holder, base_url = server
    holder.fake = FakeMailPartner()
    return holder.fake, base_url


@pytest.mark.anyio
async def test_sdk_cancels_over_real_http(served: tuple[FakeMailPartner, str]) -> None:
    fake, base_url = served
    message_id = fake.schedule(timedelta(hours=1))
    async with AsyncMailPartner("test-key", base_url=base_url, rate_limit=None) as client:
        result = await client.cancel(message_id)
        with pytest.raises(AlreadyCancelledError):
            await client.cancel(message_id)
    assert result.code == CancelCode.CANCELLED
    assert [(r.path, r.code) for r in fake.requests] == [
        ("/v1/message-cancel", 200),
        ("/v1/message-cancel", 5),
    ]


@pytest.mark.anyio
async def test_sdk_reads_xml_over_real_http(served: tuple[FakeMailPartner, str]) -> None:
    fake, base_url = served
    message_id = fake.schedule(timedelta(hours=1))
    async with AsyncMailPartner(
        "test-key", base_url=base_url, response_format="xml", rate_limit=None
    ) as client:
        result = await client.cancel(message_id)
    assert (result.code, result.message) == (CancelCode.CANCELLED, "The email has been canceled.")


@pytest.mark.anyio
async def test_lost_answer_over_real_http_is_reported_as_ours(
    served: tuple[FakeMailPartner, str],
) -> None:
    fake, base_url = served
    message_id = fake.schedule(timedelta(hours=1))
    fake.fail_next(1, "timeout")
    async with AsyncMailPartner(
        "test-key", base_url=base_url, rate_limit=None, timeout=0.3, retry_policy=FAST_RETRY_POLICY
    ) as client:
        result = await client.cancel(message_id)
    assert (result.code, result.attempts) == (CancelCode.ALREADY_CANCELLED, 2)


@pytest.mark.anyio
async def test_503_over_real_http_is_retried(served: tuple[FakeMailPartner, str]) -> None:
    fake, base_url = served
    message_id = fake.schedule(timedelta(hours=1))
    fake.fail_next(1, "http_503")
    async with AsyncMailPartner(
        "test-key", base_url=base_url, rate_limit=None, retry_policy=FAST_RETRY_POLICY
    ) as client:
        result = await client.cancel(message_id)
    assert (result.code, result.attempts) == (CancelCode.CANCELLED, 2)


def test_other_paths_and_methods_over_real_http(served: tuple[FakeMailPartner, str]) -> None:
    _, base_url = served
    with httpx.Client(base_url=base_url) as http:
        missing = http.get("/message-status")
        wrong = http.post("/message-cancel")
        no_key = http.get("/message-cancel", params={"messageId": "1"})
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET")
    assert no_key.json() == {"success": False, "code": 1, "message": "API key is required"}
