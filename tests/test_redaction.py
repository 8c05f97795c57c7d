"""The API key never shows: every logger at DEBUG, every error path, over real sockets.

Each path is driven against tests/support/server.py with a distinctive key (and one that needs
percent-encoding), then every string a user could see is searched for any spelling of
the key: log records of every logger (httpx's request line included), the client's
repr, ``str``/``repr`` of the error and of each exception chained to it, and the
formatted traceback.
"""

from __future__ import annotations

import dataclasses
import logging
import traceback
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import pytest

from mailpartner_async import (
    AlreadyCancelledError,
    AlreadySentError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AsyncMailPartner,
    AuthenticationError,
    CancellationTooLateError,
    ConfigurationError,
    InvalidRequestError,
    MailPartnerError,
    MessageNotFoundError,
    RateLimitError,
    RetryPolicy,
    UnexpectedResponseError,
)
from tests.support.server import (
    Action,
    ScriptedServer,
    body,
    drop,
    json_body,
    raw,
    reply,
    stall,
    truncated,
    unused_port,
)

KEYS = ["sk-LIVE-9f8e7d", "k/e+y=1&2"]


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every logger at DEBUG, captured."""
    caplog.set_level(logging.DEBUG)
    names = {"httpx", "httpcore", "mailpartner_async", "asyncio", "trio"}
    names.update(logging.root.manager.loggerDict)
    for name in sorted(names):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def spellings(key: str, server: ScriptedServer | None = None) -> set[str]:
    """The key as it could be rendered: raw, percent- and plus-encoded, as sent."""
    found = {key, quote(key), quote(key, safe=""), quote_plus(key)}
    for request in server.requests if server else ():
        query = urlsplit(request.target).query
        found.update(v for k, v in (p.split("=", 1) for p in query.split("&")) if k == "apiKey")
        found.update(v for k, v in parse_qsl(query) if k == "apiKey")
    return found


def exception_texts(error: BaseException) -> list[str]:
    texts = ["".join(traceback.format_exception(error))]
    seen: BaseException | None = error
    while seen is not None:
        texts += [str(seen), repr(seen)]
        seen = seen.__cause__ or seen.__context__
    return texts


def log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return [formatter.format(r) for r in caplog.records] + [r.getMessage() for r in caplog.records]


def assert_key_absent(key: str, texts: Sequence[str], server: ScriptedServer | None) -> None:
    for spelling in spellings(key, server):
        leaks = [text for text in texts if spelling in text]
        assert leaks == [], f"{spelling!r} leaked in {leaks!r}"


@dataclasses.dataclass(frozen=True)
class ErrorPath:
    name: str
    error: type[MailPartnerError]
    answers: Callable[[str], Sequence[Action]] = lambda key: ()
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    message_id: str = "1"


def answer_with_code(code: int) -> Callable[[str], Sequence[Action]]:
    return lambda key: [reply(code)]


def _html(key: str) -> str:
    return f"<html><body><h1>Bad Gateway</h1><p>upstream refused apiKey={key} ({key})</p></html>"


PATHS = [
    *[
        ErrorPath(f"code-{code}", error, answer_with_code(code))
        for code, error in [
            (1, AuthenticationError),
            (3, InvalidRequestError),
            (4, MessageNotFoundError),
            (5, AlreadyCancelledError),
            (6, CancellationTooLateError),
            (7, AlreadySentError),
            (10, AuthenticationError),
            (42, APIError),
        ]
    ],
    ErrorPath("connect-error", APIConnectionError, options={"base_url": "closed-port"}),
    ErrorPath("timeout", APITimeoutError, lambda key: [stall(), stall()], {"timeout": 0.2}),
    ErrorPath("drop", APIConnectionError, lambda key: [drop()] * 2),
    ErrorPath("truncation", UnexpectedResponseError, lambda key: [truncated()] * 2),
    ErrorPath(
        "garbage-body",
        UnexpectedResponseError,
        lambda key: [body(b"\x00\xff garbage " + key.encode(), content_type="x/y")],
    ),
    ErrorPath("garbage-bytes", APIConnectionError, lambda key: [raw(b"\x00\x01 garbage\r\n")] * 2),
    ErrorPath(
        "html-502",
        UnexpectedResponseError,
        lambda key: [body(_html(key), status=502, content_type="text/html")] * 2,
    ),
    ErrorPath(
        "html-200",
        UnexpectedResponseError,
        lambda key: [body(_html(quote(key, safe="")), content_type="text/html")],
    ),
    ErrorPath(
        "too-big",
        UnexpectedResponseError,
        lambda key: [body(key.encode() + b"x" * 70_000, content_type="text/plain")],
    ),
    ErrorPath(
        "429-exhausted",
        RateLimitError,
        lambda key: [reply(429, f"slow down, {key}", headers={"Retry-After": "0"})] * 2,
    ),
    ErrorPath(
        "key-echoed-in-message",
        AuthenticationError,
        lambda key: [reply(10, f"Incorrect API key {key} ({quote_plus(key)})")],
    ),
    ErrorPath(
        "key-echoed-in-xml",
        AuthenticationError,
        lambda key: [reply(10, f"Clé API incorrecte : {key}")],
        {"response_format": "xml"},
    ),
    ErrorPath(
        "key-echoed-in-errors",
        AuthenticationError,
        lambda key: [
            json_body(
                {"success": False, "code": 10, "errors": [{"elementId": "apiKey", "message": key}]}
            )
        ],
    ),
    ErrorPath(
        "key-echoed-in-url",
        MessageNotFoundError,
        lambda key: [reply(4, f"GET /v1/message-cancel?apiKey={quote(key, safe='')}&messageId=1")],
    ),
    ErrorPath(
        "key-echoed-in-redirect",
        UnexpectedResponseError,
        lambda key: [
            body(
                f"Moved to https://api.example/v1/message-cancel?apiKey={quote(key, safe='')}",
                status=301,
                headers={"Location": f"https://api.example/v1/message-cancel?apiKey={key}"},
            )
        ],
    ),
    ErrorPath("missing-key", AuthenticationError, options={"api_key": None}),
    ErrorPath("blank-id", InvalidRequestError, message_id="  "),
]


@pytest.mark.anyio
@pytest.mark.parametrize("key", KEYS, ids=["plain", "needs-encoding"])
@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
async def test_key_never_shown_on_error_path(
    server: ScriptedServer,
    logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    path: ErrorPath,
) -> None:
    monkeypatch.delenv("MAILPARTNER_API_KEY", raising=False)
    server.script("1", *path.answers(key))
    options: dict[str, Any] = {"base_url": server.base_url, "max_retries": 1, "rate_limit": None}
    options.update(path.options)
    if options["base_url"] == "closed-port":
        options["base_url"] = f"http://127.0.0.1:{unused_port()}/v1"
    options["retry_policy"] = RetryPolicy(initial_delay=0.01, max_delay=0.02)
    client = AsyncMailPartner(options.pop("api_key", key), **options)
    async with client:
        with pytest.raises(path.error) as caught:
            await client.cancel(path.message_id)
        texts = [repr(client), str(client)]

    texts += exception_texts(caught.value) + log_texts(logs)
    assert_key_absent(key, texts, server)


@pytest.mark.anyio
@pytest.mark.parametrize("key", KEYS, ids=["plain", "needs-encoding"])
async def test_httpx_request_line_is_logged_redacted(
    server: ScriptedServer, logs: pytest.LogCaptureFixture, key: str
) -> None:
    async with AsyncMailPartner(key, base_url=server.base_url, rate_limit=None) as client:
        await client.cancel("1")

    [httpx_line] = [r.getMessage() for r in logs.records if r.name == "httpx"]
    assert "apiKey=[REDACTED]" in httpx_line
    assert "messageId=1" in httpx_line
    assert_key_absent(key, [*log_texts(logs), repr(client)], server)
    assert any(key in value for name, value in server.requests[0].params if name == "apiKey")


@pytest.mark.parametrize("key", KEYS, ids=["plain", "needs-encoding"])
@pytest.mark.parametrize(
    "options",
    [
        {"base_url": "http://api.example/v1"},
        {"base_url": "https://api.mailpartner.fr/v1?apiKey={key}"},
        {"base_url": "api.mailpartner.fr/v1/message-cancel?apiKey={key}"},
        {"timeout": -1},
        {"max_retries": -1},
        {"max_concurrency": 0},
        {"rate_limit": 0},
        {"response_format": "yaml"},
    ],
    ids=[
        "insecure-http",
        "url-with-key",
        "url-with-key-no-scheme",
        "timeout",
        "retries",
        "concurrency",
        "rate-limit",
        "format",
    ],
)
def test_key_never_shown_on_bad_config(
    logs: pytest.LogCaptureFixture, key: str, options: dict[str, Any]
) -> None:
    options = {
        name: value.format(key=key) if isinstance(value, str) else value
        for name, value in options.items()
    }
    with pytest.raises(ConfigurationError) as caught:
        AsyncMailPartner(key, **options)

    assert_key_absent(key, exception_texts(caught.value) + log_texts(logs), None)
