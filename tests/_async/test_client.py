"""AsyncMailPartner's behaviour over real sockets (tests/support/server.py) and, where a real
server cannot produce the failure, over respx.

The sync twin is generated from this file: only ``async def``, ``await``,
``async with``, ``async for``, ``AsyncMailPartner``, ``aclose``, ``httpx.AsyncClient``
and ``@pytest.mark.anyio`` may carry the asynchrony here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from mailpartner_async import (
    AlreadyCancelledError,
    AlreadySentError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AsyncMailPartner,
    AuthenticationError,
    CancelCode,
    CancellationTooLateError,
    CancelResult,
    InvalidRequestError,
    MailPartnerError,
    MessageNotFoundError,
    RateLimitError,
    RetryPolicy,
    UnexpectedResponseError,
    __version__,
)
from tests.support.server import (
    Action,
    ScriptedServer,
    body,
    drop,
    html_502,
    json_body,
    raw,
    reply,
    stall,
    truncated,
    unused_port,
)
from tests.support.transports import CURRENT_TRANSPORT, use_transport

KEY = "test-key-123"


@pytest.fixture
def server(server: ScriptedServer, client_transport: str) -> Iterator[ScriptedServer]:
    """The real server; this test's clients of it use ``client_transport``, so the test
    runs once per transport (tests/support/transports.py)."""
    with use_transport(client_transport):
        yield server


FAST_RETRIES = RetryPolicy(initial_delay=0.01, max_delay=0.02)
CANCELLED = "The email has been canceled."
MOCK_BASE_URL = "https://api.test/v1"


def make_client(server: ScriptedServer, **options: Any) -> AsyncMailPartner:
    """A client of the test server with tiny backoffs and no pacing."""
    options.setdefault("base_url", server.base_url)
    options.setdefault("timeout", 2.0)
    options.setdefault("rate_limit", None)
    options.setdefault("retry_policy", FAST_RETRIES)
    if "http_client" not in options:
        options.setdefault("transport", CURRENT_TRANSPORT.get())
    return AsyncMailPartner(options.pop("api_key", KEY), **options)


def make_mock_client(**options: Any) -> AsyncMailPartner:
    options.setdefault("retry_policy", FAST_RETRIES)
    return AsyncMailPartner(KEY, base_url=MOCK_BASE_URL, rate_limit=None, **options)


def mock_route(router: respx.MockRouter, *side_effects: Any) -> respx.Route:
    route = router.route(method="GET", host="api.test", path="/v1/message-cancel")
    return route.mock(side_effect=list(side_effects))


def code_answer(code: int) -> httpx.Response:
    return httpx.Response(200, json={"success": code == 200, "code": code, "message": "m"})


# --- answers -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_code_200_returns_the_result(server: ScriptedServer) -> None:
    async with make_client(server) as client:
        result = await client.cancel("300")

    assert result == CancelResult(
        success=True, code=CancelCode.CANCELLED, message=CANCELLED, message_id="300", attempts=1
    )
    [request] = server.requests
    assert (request.method, request.path) == ("GET", "/v1/message-cancel")
    assert request.params == (("apiKey", KEY), ("messageId", "300"))


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("code", "error_class"),
    [
        (1, AuthenticationError),
        (3, InvalidRequestError),
        (4, MessageNotFoundError),
        (5, AlreadyCancelledError),
        (6, CancellationTooLateError),
        (7, AlreadySentError),
        (10, AuthenticationError),
        (42, APIError),
    ],
)
async def test_each_control_code_raises_its_error_once_never_retried(
    server: ScriptedServer, code: int, error_class: type[APIError]
) -> None:
    server.script("300", reply(code, f"provider says {code}"))
    async with make_client(server) as client:
        with pytest.raises(APIError) as caught:
            await client.cancel("300")

    error = caught.value
    assert type(error) is error_class
    assert (error.code, error.message, error.message_id, error.http_status) == (
        code,
        f"provider says {code}",
        "300",
        200,
    )
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_control_code_decides_whatever_the_http_status(server: ScriptedServer) -> None:
    french = "Vous ne pouvez pas annuler un mail moins de 5 minutes avant son envoi"
    server.script("300", reply(6, french, status=400))
    async with make_client(server) as client:
        with pytest.raises(CancellationTooLateError) as caught:
            await client.cancel("300")

    assert (caught.value.message, caught.value.http_status) == (french, 400)
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_errors_list_and_error_key_are_kept(server: ScriptedServer) -> None:
    errors = [{"elementId": "apiKey", "message": "Clé API incorrecte"}]
    server.script("1", json_body({"success": False, "code": 10, "errors": errors}))
    server.script("2", json_body({"success": False, "code": 4, "error": "Message introuvable"}))
    async with make_client(server) as client:
        with pytest.raises(AuthenticationError) as auth:
            await client.cancel("1")
        with pytest.raises(MessageNotFoundError) as missing:
            await client.cancel("2")

    assert auth.value.message == "Clé API incorrecte"
    assert auth.value.errors == tuple(errors)
    assert missing.value.message == "Message introuvable"


@pytest.mark.anyio
async def test_xml_format_is_asked_for_and_positional_cdata_is_read(
    server: ScriptedServer,
) -> None:
    server.script("2", reply(7, "already sent"))
    async with make_client(server, response_format="xml") as client:
        result = await client.cancel("1")
        with pytest.raises(AlreadySentError) as caught:
            await client.cancel("2")

    assert (result.code, result.message, result.success) == (CancelCode.CANCELLED, CANCELLED, True)
    assert caught.value.message == "already sent"
    assert all(("_format", "xml") in r.params for r in server.requests)
    assert "_format=xml" in server.requests[0].target


@pytest.mark.anyio
async def test_xml_answer_is_read_even_when_json_was_asked(server: ScriptedServer) -> None:
    document = "<result><success>true</success><code>200</code><message>ok</message></result>"
    server.script("1", body(document, content_type="text/xml"))
    async with make_client(server) as client:
        result = await client.cancel("1")

    assert (result.code, result.message) == (CancelCode.CANCELLED, "ok")


@pytest.mark.anyio
async def test_xml_with_entities_is_refused(server: ScriptedServer) -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        "<result><entry>true</entry><entry>200</entry><entry>&b;</entry></result>"
    )
    server.script("1", body(bomb, content_type="application/xml"))
    async with make_client(server) as client:
        with pytest.raises(UnexpectedResponseError) as caught:
            await client.cancel("1")

    assert caught.value.http_status == 200
    assert len(server.requests) == 1


# --- what is sent ----------------------------------------------------------------


@pytest.mark.anyio
async def test_message_id_with_query_characters_arrives_as_one_literal_param(
    server: ScriptedServer,
) -> None:
    async with make_client(server) as client:
        result = await client.cancel("300&apiKey=x")

    [request] = server.requests
    assert request.params == (("apiKey", KEY), ("messageId", "300&apiKey=x"))
    assert "300%26apiKey%3Dx" in request.target
    assert result.message_id == "300&apiKey=x"


@pytest.mark.anyio
async def test_int_message_ids_are_reported_as_str(server: ScriptedServer) -> None:
    server.script("301", reply(4))
    async with make_client(server) as client:
        result = await client.cancel(300)
        with pytest.raises(MessageNotFoundError) as caught:
            await client.cancel(301)

    assert result.message_id == "300"
    assert caught.value.message_id == "301"
    assert [r.message_id for r in server.requests] == ["300", "301"]


@pytest.mark.anyio
async def test_user_agent_names_the_sdk_and_its_version(server: ScriptedServer) -> None:
    async with make_client(server) as client:
        await client.cancel("1")

    agent = server.requests[0].headers["user-agent"]
    assert agent.startswith(f"mailpartner-async/{__version__}")


@pytest.mark.anyio
async def test_api_key_from_environment(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILPARTNER_API_KEY", "env-key")
    monkeypatch.setenv("MAILPARTNER_BASE_URL", server.base_url)
    async with AsyncMailPartner(rate_limit=None) as client:
        await client.cancel("1")

    assert server.requests[0].params[0] == ("apiKey", "env-key")


@pytest.mark.anyio
async def test_missing_key_fails_before_any_request(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAILPARTNER_API_KEY", raising=False)
    async with AsyncMailPartner(base_url=server.base_url) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.cancel("1")

    assert (caught.value.code, caught.value.http_status) == (CancelCode.API_KEY_REQUIRED, None)
    assert server.requests == []


@pytest.mark.anyio
@pytest.mark.parametrize("message_id", ["", "   "])
async def test_blank_message_id_fails_before_any_request(
    server: ScriptedServer, message_id: str
) -> None:
    async with make_client(server) as client:
        with pytest.raises(InvalidRequestError) as caught:
            await client.cancel(message_id)

    assert caught.value.code == CancelCode.MESSAGE_ID_REQUIRED
    assert server.requests == []


# --- retries -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_dropped_connection_is_retried(server: ScriptedServer) -> None:
    server.script("1", drop())
    async with make_client(server) as client:
        result = await client.cancel("1")

    assert (result.code, result.attempts) == (CancelCode.CANCELLED, 2)
    assert len(server.requests) == 2


@pytest.mark.anyio
async def test_503_without_code_is_retried(server: ScriptedServer) -> None:
    server.script("1", body("Service Unavailable", status=503))
    async with make_client(server) as client:
        result = await client.cancel("1")

    assert (result.code, result.attempts) == (CancelCode.CANCELLED, 2)


@pytest.mark.anyio
async def test_code_429_in_body_is_retried_after_its_retry_after(server: ScriptedServer) -> None:
    server.script("1", reply(429, "Too many requests", headers={"Retry-After": "0.3"}))
    async with make_client(server) as client:
        result = await client.cancel("1")

    assert (result.code, result.attempts) == (CancelCode.CANCELLED, 2)
    first, second = server.requests
    assert second.arrived - first.arrived >= 0.25


@pytest.mark.anyio
async def test_429_status_retry_after_is_honoured(server: ScriptedServer) -> None:
    server.script("1", body("slow down", status=429, headers={"Retry-After": "0.4"}))
    async with make_client(server) as client:
        result = await client.cancel("1")

    assert result.attempts == 2
    first, second = server.requests
    assert second.arrived - first.arrived >= 0.35


@pytest.mark.anyio
async def test_429_exhausting_retries_raises_rate_limit_error(server: ScriptedServer) -> None:
    server.script("1", *[reply(429, status=429, headers={"Retry-After": "0"})] * 3)
    async with make_client(server) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.cancel("1")

    assert (caught.value.code, caught.value.http_status) == (CancelCode.RATE_LIMITED, 429)
    assert caught.value.retry_after == 0
    assert len(server.requests) == 3


@pytest.mark.anyio
async def test_read_timeout_raises_after_every_attempt(server: ScriptedServer) -> None:
    server.script("1", stall(), stall(), stall())
    async with make_client(server, timeout=0.2) as client:
        with pytest.raises(APITimeoutError) as caught:
            await client.cancel("1")

    assert caught.value.request_sent is True
    assert caught.value.message_id == "1"
    assert len(server.requests) == 3  # max_retries=2: three attempts


@pytest.mark.anyio
async def test_per_call_timeout_and_max_retries(server: ScriptedServer) -> None:
    server.script("1", stall(), stall(), stall())
    async with make_client(server, timeout=30.0) as client:
        with pytest.raises(APITimeoutError):
            await client.cancel("1", timeout=0.2, max_retries=1)

    assert len(server.requests) == 2


@pytest.mark.anyio
async def test_late_answer_within_timeout_is_not_retried(server: ScriptedServer) -> None:
    server.script("1", stall(0.2))
    async with make_client(server, timeout=2.0) as client:
        result = await client.cancel("1")

    assert result.attempts == 1


@pytest.mark.anyio
async def test_code_5_after_lost_response_is_success(server: ScriptedServer) -> None:
    server.script("1", drop(), reply(5))
    async with make_client(server) as client:
        result = await client.cancel("1")

    assert (result.success, result.code, result.attempts) == (
        True,
        CancelCode.ALREADY_CANCELLED,
        2,
    )


@pytest.mark.anyio
async def test_code_5_after_503_is_success(server: ScriptedServer) -> None:
    server.script("1", html_502(), reply(5))
    async with make_client(server) as client:
        result = await client.cancel("1")

    assert (result.code, result.attempts) == (CancelCode.ALREADY_CANCELLED, 2)


@pytest.mark.anyio
async def test_code_5_after_only_429_is_an_error(server: ScriptedServer) -> None:
    server.script("1", reply(429, status=429), reply(5))
    async with make_client(server) as client:
        with pytest.raises(AlreadyCancelledError):
            await client.cancel("1")


@pytest.mark.anyio
async def test_connect_error_to_closed_port(server: ScriptedServer) -> None:
    async with make_client(server, base_url=f"http://127.0.0.1:{unused_port()}/v1") as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.cancel("1")

    assert type(caught.value) is APIConnectionError
    assert caught.value.request_sent is False


@pytest.mark.anyio
async def test_truncated_body_is_retried_then_unexpected(server: ScriptedServer) -> None:
    server.script("1", truncated(), truncated(), truncated())
    server.script("2", truncated())
    async with make_client(server) as client:
        with pytest.raises(UnexpectedResponseError) as caught:
            await client.cancel("1")
        result = await client.cancel("2")

    assert caught.value.http_status == 200
    assert len(server.requests_for("1")) == 3
    assert result.attempts == 2


@pytest.mark.anyio
async def test_code_5_after_truncated_answer_is_success(server: ScriptedServer) -> None:
    server.script("1", truncated(), reply(5))
    async with make_client(server) as client:
        result = await client.cancel("1")

    assert (result.code, result.attempts) == (CancelCode.ALREADY_CANCELLED, 2)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "answer",
    [
        body(b"\x00\xff\xfe garbage \x81", content_type="application/octet-stream"),
        body(b'{"success": tru', content_type="application/json"),
        body(b"", content_type="application/json"),
        json_body({"success": True, "message": "no code"}),
        body(b"<html><body>Welcome to nginx!</body></html>", content_type="text/html"),
    ],
    ids=["garbage", "bad-json", "empty", "no-code", "html"],
)
async def test_invalid_200_answer_is_unexpected_and_not_retried(
    server: ScriptedServer, answer: Action
) -> None:
    server.script("1", answer)
    async with make_client(server) as client:
        with pytest.raises(UnexpectedResponseError) as caught:
            await client.cancel("1")

    assert caught.value.http_status == 200
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_html_502_is_retried_then_unexpected(server: ScriptedServer) -> None:
    server.script("1", html_502(), html_502(), html_502())
    async with make_client(server) as client:
        with pytest.raises(UnexpectedResponseError) as caught:
            await client.cancel("1")

    assert caught.value.http_status == 502
    assert "Bad Gateway" in caught.value.body_excerpt
    assert len(server.requests) == 3


@pytest.mark.anyio
async def test_raw_garbage_instead_of_http_is_a_connection_error(server: ScriptedServer) -> None:
    server.script("1", *[raw(b"\x00\x01 not http at all\r\n\r\n")] * 3)
    async with make_client(server) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.cancel("1")

    assert caught.value.request_sent is True
    assert len(server.requests) == 3


@pytest.mark.anyio
async def test_body_over_64_kib_is_unexpected(server: ScriptedServer) -> None:
    huge = b'{"success": true, "code": 200, "message": "' + b"x" * 70_000 + b'"}'
    server.script("1", body(huge, content_type="application/json"))
    async with make_client(server) as client:
        with pytest.raises(UnexpectedResponseError) as caught:
            await client.cancel("1")

    assert caught.value.http_status == 200
    assert len(server.requests) == 1


# --- over respx: failures a live server cannot stage -------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("connect timed out")],
    ids=["connect-error", "connect-timeout"],
)
async def test_code_5_after_unsent_attempt_is_an_error(failure: httpx.TransportError) -> None:
    with respx.mock() as router:
        route = mock_route(router, failure, code_answer(5))
        async with make_mock_client() as client:
            with pytest.raises(AlreadyCancelledError):
                await client.cancel("1")

    assert route.call_count == 2


@pytest.mark.anyio
@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ReadError("connection reset"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.WriteError("broken pipe"),
    ],
    ids=["read-timeout", "read-error", "protocol-error", "write-error"],
)
async def test_code_5_after_sent_attempt_is_success(failure: httpx.TransportError) -> None:
    with respx.mock() as router:
        mock_route(router, failure, code_answer(5))
        async with make_mock_client() as client:
            result = await client.cancel("1")

    assert (result.success, result.code, result.attempts) == (
        True,
        CancelCode.ALREADY_CANCELLED,
        2,
    )


@pytest.mark.anyio
async def test_connect_timeout_exhausting_retries_is_a_timeout_error() -> None:
    with respx.mock() as router:
        route = mock_route(router, *[httpx.ConnectTimeout("connect timed out")] * 3)
        async with make_mock_client() as client:
            with pytest.raises(APITimeoutError) as caught:
                await client.cancel("1")

    assert caught.value.request_sent is False
    assert isinstance(caught.value.__cause__, httpx.ConnectTimeout)
    assert route.call_count == 3


@pytest.mark.anyio
async def test_pool_timeout_is_a_timeout_error() -> None:
    with respx.mock() as router:
        mock_route(router, httpx.PoolTimeout("pool"))
        async with make_mock_client(max_retries=0) as client:
            with pytest.raises(APITimeoutError) as caught:
                await client.cancel("1")

    assert caught.value.request_sent is False


# --- lifecycle and options ---------------------------------------------------------


@pytest.mark.anyio
async def test_sequential_calls_reuse_one_connection(server: ScriptedServer) -> None:
    async with make_client(server) as client:
        await client.cancel("1")
        await client.cancel("2")

    assert len({r.connection for r in server.requests}) == 1


@pytest.mark.anyio
async def test_user_http_client_is_used_and_left_open(server: ScriptedServer) -> None:
    async with httpx.AsyncClient(headers={"X-Caller": "mine"}) as http:
        client = make_client(server, http_client=http)
        await client.cancel("1")
        await client.aclose()

        assert client.is_closed
        assert not http.is_closed
        response = await http.get(f"{server.base_url}/message-cancel", params={"messageId": "2"})
        assert response.status_code == 200

    assert server.requests[0].headers["x-caller"] == "mine"
    assert server.requests[0].headers["user-agent"].startswith("mailpartner-async/")


@pytest.mark.anyio
async def test_with_options_shares_the_pool_and_keeps_the_original(
    server: ScriptedServer,
) -> None:
    server.script("3", stall())
    async with make_client(server, timeout=2.0) as client:
        copy = client.with_options(timeout=0.2, max_retries=0)
        await client.cancel("1")
        await copy.cancel("2")
        with pytest.raises(APITimeoutError):
            await copy.cancel("3")

        assert (client.timeout.read, client.max_retries) == (2.0, 2)
        assert (copy.timeout.read, copy.max_retries) == (0.2, 0)
        first, second, third = server.requests
        assert first.connection == second.connection  # the copy reused the original's
        assert third.message_id == "3"  # a single attempt: max_retries=0

        await copy.aclose()
        assert client.is_closed


@pytest.mark.anyio
async def test_async_with_closes_and_closed_client_refuses(server: ScriptedServer) -> None:
    async with make_client(server) as client:
        await client.cancel("1")
    assert client.is_closed

    with pytest.raises(MailPartnerError, match="closed"):
        await client.cancel("2")
    await client.aclose()  # closing twice is harmless
    assert len(server.requests) == 1


# --- logs --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_each_request_is_logged_at_debug_with_redacted_url(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mailpartner_async")
    server.script("7", reply(4))
    async with make_client(server) as client:
        await client.cancel("300")
        with pytest.raises(MessageNotFoundError):
            await client.cancel("7")

    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "mailpartner_async" and r.levelno == logging.DEBUG
    ]
    assert len(lines) == 2
    assert "GET" in lines[0]
    assert "/v1/message-cancel?apiKey=[REDACTED]&messageId=300" in lines[0]
    assert "-> 200" in lines[0]
    assert "messageId=7" in lines[1]
    assert all(KEY not in line for line in lines)


@pytest.mark.anyio
async def test_each_retry_is_logged_at_warning_with_its_reason(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mailpartner_async")
    server.script("1", drop(), body("down", status=503))
    async with make_client(server) as client:
        result = await client.cancel("1")

    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "mailpartner_async" and r.levelno == logging.WARNING
    ]
    assert result.attempts == 3
    assert len(warnings) == 2
    assert "attempt 2 of 3" in warnings[0]
    assert "APIConnectionError" in warnings[0]
    assert "attempt 3 of 3" in warnings[1]
    assert "HTTP 503" in warnings[1]


@pytest.mark.anyio
async def test_connect_errors_are_retried_as_logged(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mailpartner_async")
    started = time.monotonic()
    async with make_client(server, base_url=f"http://127.0.0.1:{unused_port()}/v1") as client:
        with pytest.raises(APIConnectionError):
            await client.cancel("1", max_retries=3)

    retries = [r for r in caplog.records if r.name == "mailpartner_async"]
    assert len(retries) == 3
    assert time.monotonic() - started >= 0.03  # backoffs were slept between attempts
