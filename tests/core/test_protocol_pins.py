"""The protocol core pinned exactly: whole verdicts, every text, every redaction.

Each table row states one input and everything that comes out of it, so any change
to a message, a reason, a delay or a flag fails a row (``nox -s mutate`` checks that
none goes unnoticed).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailpartner_async import (
    APIConnectionError,
    APIError,
    CancelCode,
    CancelResult,
    MailPartnerError,
    MessageNotFoundError,
    RateLimitError,
    UnexpectedResponseError,
)
from mailpartner_async._core.protocol import (
    Answer,
    RawResponse,
    Verdict,
    build_request,
    interpret_response,
    interpret_transport_error,
    normalize_message_id,
    parse_retry_after,
    read_answer,
)
from mailpartner_async._core.secrets import Secret
from mailpartner_async._core.settings import ResponseFormat

ID = "msg-42"
SECRET = "s3cr3t-key"


def _json(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def _error_fields(error: MailPartnerError | None) -> dict[str, Any]:
    assert error is not None
    fields: dict[str, Any] = {"type": type(error).__name__, **vars(error)}
    fields["args"] = error.args
    return fields


def _verdict(verdict: Verdict) -> dict[str, Any]:
    """Everything a verdict says, the error's every attribute included."""
    fields = {
        name: getattr(verdict, name)
        for name in ("result", "retry", "retry_after", "reached", "reason", "throttle")
    }
    fields["error"] = None if verdict.error is None else _error_fields(verdict.error)
    return fields


def _unexpected(status: int, message: str, body_excerpt: str) -> dict[str, Any]:
    return {
        "type": "UnexpectedResponseError",
        "args": (message,),
        "message": message,
        "message_id": ID,
        "http_status": status,
        "body_excerpt": body_excerpt,
    }


def _api_error(
    cls: type[APIError], code: int, message: str, status: int, errors: tuple[Any, ...] = ()
) -> dict[str, Any]:
    return {
        "type": cls.__name__,
        "args": (message,),
        "message": message,
        "message_id": ID,
        "code": code,
        "http_status": status,
        "errors": errors,
    }


def _rate_limited(message: str, status: int, retry_after: float | None) -> dict[str, Any]:
    return {**_api_error(RateLimitError, 429, message, status), "retry_after": retry_after}


def _expected(
    error: dict[str, Any],
    *,
    reason: str,
    retry: bool,
    retry_after: float | None = None,
    reached: bool = True,
    throttle: bool = False,
) -> dict[str, Any]:
    return {
        "result": None,
        "error": error,
        "retry": retry,
        "retry_after": retry_after,
        "reached": reached,
        "reason": reason,
        "throttle": throttle,
    }


TRUNCATED = b'{"code": 20'

VERDICTS = [
    pytest.param(
        RawResponse(200, {}, TRUNCATED, truncated=True),
        _expected(
            _unexpected(200, "the connection closed before the whole body arrived", '{"code": 20'),
            reason="HTTP 200 body truncated",
            retry=True,
        ),
        id="truncated-without-retry-after-retries-without-throttling",
    ),
    pytest.param(
        RawResponse(503, {"retry-after": "7"}, TRUNCATED, truncated=True),
        _expected(
            _unexpected(503, "the connection closed before the whole body arrived", '{"code": 20'),
            reason="HTTP 503 body truncated",
            retry=True,
            retry_after=7.0,
            throttle=True,
        ),
        id="truncated-with-retry-after-carries-it-and-throttles",
    ),
    pytest.param(
        RawResponse(429, {"retry-after": "3"}, b""),
        _expected(
            _rate_limited("Too many requests", 429, 3.0),
            reason="HTTP 429",
            retry=True,
            retry_after=3.0,
            reached=False,
            throttle=True,
        ),
        id="http-429-without-code",
    ),
    pytest.param(
        RawResponse(200, {"content-type": "application/json"}, _json(code=429)),
        _expected(
            _rate_limited("Too many requests", 200, None),
            reason="code 429",
            retry=True,
            reached=False,
            throttle=True,
        ),
        id="code-429-in-body",
    ),
    pytest.param(
        RawResponse(502, {}, b""),
        _expected(
            _unexpected(502, "not a valid API response: empty body", ""),
            reason="HTTP 502 without a control code",
            retry=True,
        ),
        id="5xx-without-code",
    ),
    pytest.param(
        RawResponse(500, {"retry-after-ms": "1500"}, b"oops"),
        _expected(
            _unexpected(
                500,
                "not a valid API response: body is neither JSON nor XML (Content-Type '')",
                "oops",
            ),
            reason="HTTP 500 without a control code",
            retry=True,
            retry_after=1.5,
            throttle=True,
        ),
        id="5xx-with-retry-after-ms",
    ),
    pytest.param(
        RawResponse(404, {"content-type": "text/html"}, b"<h1>Not here</h1>"),
        _expected(
            _unexpected(404, "not a valid API response: XML <h1> has no code", "<h1>Not here</h1>"),
            reason="XML <h1> has no code",
            retry=False,
        ),
        id="4xx-html-is-final-with-the-problem-as-reason",
    ),
    pytest.param(
        RawResponse(400, {}, _json(success=False)),
        _expected(
            _unexpected(400, "not a valid API response: no control code", '{"success": false}'),
            reason="no control code",
            retry=False,
        ),
        id="json-without-code-is-final",
    ),
    pytest.param(
        RawResponse(200, {}, _json(code=4)),
        _expected(
            _api_error(MessageNotFoundError, 4, "Message not found", 200),
            reason="code 4",
            retry=False,
        ),
        id="code-4-without-message-gets-the-provider-message",
    ),
]


@pytest.mark.parametrize(("raw", "expected"), VERDICTS)
def test_interpret_response_gives_this_exact_verdict(
    raw: RawResponse, expected: dict[str, Any]
) -> None:
    assert _verdict(interpret_response(raw, message_id=ID)) == expected


def test_code_200_without_attempt_counts_one_attempt() -> None:
    verdict = interpret_response(RawResponse(200, {}, _json(code=200)), message_id=ID)
    assert verdict.result == CancelResult(
        success=True,
        code=CancelCode.CANCELLED,
        message="The email has been canceled.",
        message_id=ID,
        attempts=1,
    )


# --- redaction inside errors[] ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        (
            [{"message": f"bad key {SECRET}", "field": "apiKey", "count": 3}],
            ({"message": "bad key [REDACTED]", "field": "apiKey", "count": 3},),
        ),
        (
            [{"detail": f"?apiKey={SECRET}&x=1"}, "not a mapping", {"n": None}],
            ({"detail": "?apiKey=[REDACTED]&x=1"}, {"n": None}),
        ),
        ([{"hint": "s3cr3t-key%20"}], ({"hint": "[REDACTED]%20"},)),
    ],
)
def test_secret_is_masked_in_every_string_of_api_error_errors(
    errors: list[Any], expected: tuple[dict[str, Any], ...]
) -> None:
    raw = RawResponse(200, {}, _json(code=10, errors=errors))
    error = interpret_response(raw, message_id=ID, secret=SECRET).error
    assert isinstance(error, APIError)
    assert error.errors == expected


def test_without_a_secret_errors_keep_everything_but_api_key_values() -> None:
    raw = RawResponse(200, {}, _json(code=10, errors=[{"message": f"{SECRET} apiKey={SECRET}"}]))
    error = interpret_response(raw, message_id=ID).error
    assert isinstance(error, APIError)
    assert error.errors == ({"message": f"{SECRET} apiKey=[REDACTED]"},)


# --- messages ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"errors": [{"message": "first"}, {"message": "second"}]}, "first; second"),
        (
            {"errors": [{"message": "a"}, {"code": 9}, {"message": ""}, {"message": "b"}]},
            "a; b",
        ),
        ({"error": {"message": "  inner  "}}, "inner"),
        ({"error": {"message": 5}}, "Message not found"),
        ({"error": {"detail": "no message key"}}, "Message not found"),
        ({"error": {"message": "   "}}, "Message not found"),
        ({"error": "  outer  "}, "outer"),
        ({"message": "  top  ", "error": "outer"}, "top"),
        ({"message": 12, "error": "outer"}, "outer"),
    ],
)
def test_error_message_is_the_first_text_found_else_the_provider_message(
    fields: dict[str, Any], message: str
) -> None:
    raw = RawResponse(200, {}, _json(code=4, **fields))
    error = interpret_response(raw, message_id=ID).error
    assert error is not None
    assert error.message == message


# --- Retry-After ---------------------------------------------------------------------------


def test_retry_after_date_in_the_past_is_zero_counted_from_the_given_now() -> None:
    raw = RawResponse(429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, b"")
    verdict = interpret_response(raw, message_id=ID, now=1_764_000_000.0)
    assert verdict.retry_after == 0.0
    assert isinstance(verdict.error, RateLimitError)
    assert verdict.error.retry_after == 0.0


def test_retry_after_date_in_the_future_counts_from_the_given_now() -> None:
    raw = RawResponse(429, {"retry-after": "Fri, 01 Jan 2100 00:00:00 GMT"}, b"")
    delay = interpret_response(raw, message_id=ID, now=4_102_444_700.0).retry_after
    assert delay == 100.0


def test_retry_after_date_without_a_now_asks_for_no_wait() -> None:
    # The core reads no clock: without the caller's now, a date cannot be counted.
    raw = RawResponse(429, {"retry-after": "Fri, 01 Jan 2100 00:00:00 GMT"}, b"")
    assert interpret_response(raw, message_id=ID).retry_after is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "0"}, 0.0),
        ({"retry-after-ms": "0", "retry-after": "9"}, 0.0),
        ({"retry-after-ms": "-1", "retry-after": "9"}, 9.0),
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after": "0"}, 0.0),
    ],
)
def test_retry_after_ms_of_zero_means_now(headers: dict[str, str], expected: float) -> None:
    assert parse_retry_after(headers) == expected


# --- Content-Type against sniffing ---------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "answer"),
    [
        (
            "application/json",
            b"<result><code>200</code></result>",
            Answer({}, None, "invalid JSON: JSONDecodeError"),
        ),
        (
            "text/xml",
            b'{"code": 200}',
            Answer({}, None, "invalid XML: not well-formed (invalid token): line 1, column 0"),
        ),
        (
            "application/xml",
            b'{"code": 200}',
            Answer({}, None, "invalid XML: not well-formed (invalid token): line 1, column 0"),
        ),
        ("application/problem+json", b"<r/>", Answer({}, None, "invalid JSON: JSONDecodeError")),
        ("APPLICATION/Problem+JSON", b"<r/>", Answer({}, None, "invalid JSON: JSONDecodeError")),
        (
            "application/json; charset=utf-8; q=1",
            b"<r/>",
            Answer({}, None, "invalid JSON: JSONDecodeError"),
        ),
        (
            "application/atom+xml",
            b'{"code": 200}',
            Answer({}, None, "invalid XML: not well-formed (invalid token): line 1, column 0"),
        ),
        (
            "Text/XML; charset=utf-8",
            b'{"code": 200}',
            Answer({}, None, "invalid XML: not well-formed (invalid token): line 1, column 0"),
        ),
        ("text/plain", b'{"code": 200}', Answer({"code": 200}, 200)),
        ("text/plain", b"<r><code>4</code></r>", Answer({"code": "4"}, 4)),
        (
            None,
            b'XX{"code": 4}',
            Answer({}, None, "body is neither JSON nor XML (Content-Type '')"),
        ),
    ],
)
def test_content_type_decides_over_the_first_character_when_it_names_json_or_xml(
    content_type: str | None, body: bytes, answer: Answer
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    assert read_answer(RawResponse(200, headers, body)) == answer


@pytest.mark.parametrize(
    ("body", "answer"),
    [
        (
            b"<result><code>4</code><entry>x</entry><entry>y</entry></result>",
            Answer({"code": "4"}, 4),
        ),
        (
            b"<result><code>4</code><message>Hello <b>big</b> world</message></result>",
            Answer({"code": "4", "message": "Hello big world"}, 4),
        ),
        (
            b"<result><entry>1</entry><entry>6</entry><entry>A <i>b</i> c</entry></result>",
            Answer({"success": "1", "code": "6", "message": "A b c"}, 6),
        ),
        (b'{"success": false}', Answer({"success": False}, None, "no control code")),
    ],
)
def test_xml_named_fields_ignore_entries_and_join_nested_text(body: bytes, answer: Answer) -> None:
    assert read_answer(RawResponse(200, {}, body)) == answer


# --- building the request --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message_id", "message", "error_message_id"),
    [
        (None, "message id must be a str or an int, got NoneType", None),
        (1.5, "message id must be a str or an int, got float", None),
        (True, "message id must be a str or an int, got bool", None),
        ("", "message id is required and must not be blank", ""),
        ("  \t", "message id is required and must not be blank", "  \t"),
    ],
)
def test_bad_message_id_error_says_why_and_keeps_the_id_given(
    message_id: object, message: str, error_message_id: str | None
) -> None:
    with pytest.raises(APIError) as caught:
        normalize_message_id(message_id)
    assert (caught.value.message, caught.value.message_id, caught.value.code) == (
        message,
        error_message_id,
        CancelCode.MESSAGE_ID_REQUIRED,
    )


def test_missing_key_error_says_where_a_key_comes_from() -> None:
    with pytest.raises(APIError) as caught:
        build_request("https://h.test", None, " 7 ", "json")
    assert (caught.value.message, caught.value.message_id, caught.value.code) == (
        "an API key is required: pass api_key= or set $MAILPARTNER_API_KEY",
        "7",
        CancelCode.API_KEY_REQUIRED,
    )


def test_request_format_defaults_to_json_without_a_format_param() -> None:
    request = build_request("https://h.test", Secret("key"), 7, "json")
    assert request.params == (("apiKey", "key"), ("messageId", "7"))


def test_transport_error_verdict_names_the_error_type_and_its_message() -> None:
    error = APIConnectionError("connection refused", message_id=ID)
    verdict = interpret_transport_error(error)
    assert (verdict.reason, verdict.reached, verdict.retry, verdict.error) == (
        "APIConnectionError: connection refused",
        False,
        True,
        error,
    )


def test_unexpected_response_error_without_excerpt_shows_only_the_status() -> None:
    assert str(UnexpectedResponseError("bad", http_status=500)) == "bad [HTTP 500]"


@pytest.mark.parametrize(
    ("key", "message_id", "response_format", "query"),
    [
        ("k+y-123456", "300", "json", "apiKey=k%2By-123456&messageId=300"),
        ("a b&c=d/e", "1 2", "json", "apiKey=a%20b%26c%3Dd%2Fe&messageId=1%202"),
        ("key-\u00e9-123", "x+1", "xml", "apiKey=key-%C3%A9-123&messageId=x%2B1&_format=xml"),
    ],
)
def test_query_percent_encodes_every_value_and_asks_xml_only_when_told(
    key: str, message_id: str, response_format: ResponseFormat, query: str
) -> None:
    request = build_request("https://api.example/v1", Secret(key), message_id, response_format)
    assert request.query() == query
