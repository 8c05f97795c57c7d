"""The sans-I/O protocol core, table-driven: exact inputs, exact outputs, no network.

Then the core pinned exactly: whole verdicts, every text, every redaction. Each row
of those tables states one input and everything that comes out of it, so any change
to a message, a reason, a delay or a flag fails a row (``nox -s mutate`` checks that
none goes unnoticed). Last, the decisions on answers a hostile or odd server sends:
charsets, JSON nested too deeply, redaction at any depth, ids no request can carry.
"""

from __future__ import annotations

import email.utils
import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import httpx
import pytest

from mailpartner_async import (
    AlreadyCancelledError,
    AlreadySentError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    CancelCode,
    CancellationTooLateError,
    CancelResult,
    InvalidRequestError,
    MailPartnerError,
    MessageNotFoundError,
    RateLimitError,
    UnexpectedResponseError,
)
from mailpartner_async._core.protocol import (
    AMBIGUOUS_FRAMING,
    Answer,
    RawResponse,
    Verdict,
    _charset,
    build_request,
    cancelled_by_this_call,
    error_for_code,
    interpret_response,
    interpret_transport_error,
    normalize_message_id,
    parse_retry_after,
    read_answer,
)
from mailpartner_async._core.secrets import Secret
from mailpartner_async._core.settings import MAX_BODY_BYTES, ResponseFormat

BASE_URL = "https://api.mailpartner.fr/v1"
URL = "https://api.mailpartner.fr/v1/message-cancel"
# Characters that the query string encodes, so every spelling of the key is exercised.
KEY = "k3y/w1th+odd&chars=and space"
KEY_SPELLINGS = (KEY, quote(KEY, safe=""), quote_plus(KEY))

# Header names as a RawResponse holds them: lowercase.
JSON = {"content-type": "application/json"}
XML = {"content-type": "application/xml"}


def _json(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def _answer(
    status: int,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    truncated: bool = False,
    **options: Any,
) -> Any:
    raw = RawResponse(status, {} if headers is None else headers, body, truncated=truncated)
    return interpret_response(raw, message_id="300", **options)


def _read(body: bytes, content_type: str | None = None, *, oversized: bool = False) -> Answer:
    headers = {} if content_type is None else {"content-type": content_type}
    return read_answer(RawResponse(200, headers, body, oversized=oversized))


# --- build_request ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("message_id", "response_format", "expected_params", "expected_id"),
    [
        ("300", "json", (("apiKey", KEY), ("messageId", "300")), "300"),
        (300, "json", (("apiKey", KEY), ("messageId", "300")), "300"),
        (0, "json", (("apiKey", KEY), ("messageId", "0")), "0"),
        ("300", "xml", (("apiKey", KEY), ("messageId", "300"), ("_format", "xml")), "300"),
        (
            "300&apiKey=x",
            "json",
            (("apiKey", KEY), ("messageId", "300&apiKey=x")),
            "300&apiKey=x",
        ),
        ("é 42", "json", (("apiKey", KEY), ("messageId", "é 42")), "é 42"),
    ],
)
def test_build_request_sends_key_and_id_as_separate_params(
    message_id: object,
    response_format: Any,
    expected_params: tuple[tuple[str, str], ...],
    expected_id: str,
) -> None:
    request = build_request(BASE_URL, Secret(KEY), message_id, response_format)

    assert request.method == "GET"
    assert request.url == URL
    assert request.params == expected_params
    assert request.message_id == expected_id


@pytest.mark.parametrize(
    "message_id", ["300&apiKey=x", "300&messageId=301", "300#frag", "300?x=1", "a+b c%20"]
)
def test_id_with_query_syntax_reaches_server_as_one_literal_value(message_id: str) -> None:
    request = build_request(BASE_URL, Secret(KEY), message_id, "json")

    sent = httpx.Request(request.method, request.url, params=request.params).url
    query = parse_qs(urlsplit(str(sent)).query, keep_blank_values=True)

    assert query == {"apiKey": [KEY], "messageId": [message_id]}


@pytest.mark.parametrize(
    "message_id",
    ["", " ", "  \t\r\n", None, True, False, 3.0, 300.5, b"300", ["300"], object()],
)
def test_blank_or_mistyped_id_is_code_3_before_any_request(message_id: object) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        build_request(BASE_URL, Secret(KEY), message_id, "json")

    assert caught.value.code is CancelCode.MESSAGE_ID_REQUIRED
    assert caught.value.http_status is None


@pytest.mark.parametrize("api_key", [None, ""])
def test_missing_key_is_code_1_before_any_request(api_key: str | None) -> None:
    with pytest.raises(AuthenticationError) as caught:
        build_request(BASE_URL, Secret(api_key) if api_key is not None else None, "300", "json")

    assert caught.value.code is CancelCode.API_KEY_REQUIRED
    assert caught.value.http_status is None
    assert caught.value.message_id == "300"


# --- read_answer -----------------------------------------------------------------

POSITIONAL_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<result>
    <entry><![CDATA[ false ]]></entry>
    <entry>
        <![CDATA[4]]>
    </entry>
    <entry><![CDATA[Message introuvable]]></entry>
</result>
"""


@pytest.mark.parametrize(
    ("body", "content_type", "fields", "code"),
    [
        pytest.param(
            b'{"success": true, "code": 200, "message": "The email has been canceled."}',
            None,
            {"success": True, "code": 200, "message": "The email has been canceled."},
            200,
            id="json",
        ),
        pytest.param(
            b'\xef\xbb\xbf \r\n\t{"success": false, "code": 4, "message": "Message not found"}',
            None,
            {"success": False, "code": 4, "message": "Message not found"},
            4,
            id="json-bom-and-leading-whitespace",
        ),
        pytest.param(
            b'{"success": false, "code": 10, "error": "Cl\\u00e9 API incorrecte"}',
            "application/json; charset=utf-8",
            {"success": False, "code": 10, "error": "Clé API incorrecte"},
            10,
            id="json-error-key",
        ),
        pytest.param(
            b'{"code": "4", "errors": [{"elementId": "messageId", "message": "Requis"}]}',
            "application/problem+json",
            {"code": "4", "errors": [{"elementId": "messageId", "message": "Requis"}]},
            4,
            id="json-errors-list",
        ),
        pytest.param(
            POSITIONAL_XML,
            "application/xml",
            {"success": "false", "code": "4", "message": "Message introuvable"},
            4,
            id="xml-positional-cdata-whitespace",
        ),
        pytest.param(
            b"<result><entry>true</entry><entry>200</entry>"
            b"<entry>The email has been canceled.</entry></result>",
            None,
            {"success": "true", "code": "200", "message": "The email has been canceled."},
            200,
            id="xml-positional-plain",
        ),
        pytest.param(
            b"\xef\xbb\xbf\n  " + POSITIONAL_XML,
            "text/xml; charset=utf-8",
            {"success": "false", "code": "4", "message": "Message introuvable"},
            4,
            id="xml-bom-and-leading-whitespace",
        ),
        pytest.param(
            "<result><success>false</success><code> 10 </code>"
            "<message><![CDATA[Clé API incorrecte]]></message></result>".encode(),
            "application/xml",
            {"success": "false", "code": "10", "message": "Clé API incorrecte"},
            10,
            id="xml-named",
        ),
        pytest.param(
            b"<result><success>false</success><code>3</code><errors><error>"
            b"<elementId>messageId</elementId><message>Identifiant requis</message>"
            b"</error></errors></result>",
            None,
            {
                "success": "false",
                "code": "3",
                "errors": [{"elementId": "messageId", "message": "Identifiant requis"}],
            },
            3,
            id="xml-named-errors-list",
        ),
        pytest.param(
            b'{"success": false, "code": 5, "message": "deja"}',
            "text/plain",
            {"success": False, "code": 5, "message": "deja"},
            5,
            id="sniffed-json-under-text-plain",
        ),
        pytest.param(
            b"<result><entry>false</entry><entry>6</entry><entry>trop tard</entry></result>",
            "text/plain",
            {"success": "false", "code": "6", "message": "trop tard"},
            6,
            id="sniffed-xml-under-text-plain",
        ),
    ],
)
def test_read_answer_gives_the_api_fields_and_the_code(
    body: bytes, content_type: str | None, fields: dict[str, Any], code: int
) -> None:
    assert _read(body, content_type) == Answer(fields, code)


def test_body_of_exactly_the_size_cap_is_read() -> None:
    head, tail = b'{"code": 200, "message": "', b'"}'
    body = head + b"x" * (MAX_BODY_BYTES - len(head) - len(tail)) + tail
    assert len(body) == MAX_BODY_BYTES

    assert _read(body).code == 200


def test_body_declared_over_the_size_cap_is_not_read() -> None:
    body = _json(success=True, code=200, message="ok")

    assert _read(body, "application/json", oversized=True) == Answer(
        {}, None, f"body larger than {MAX_BODY_BYTES} bytes"
    )


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<result><entry>false</entry><entry>4</entry><entry>&lol9;</entry></result>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE result [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<result><entry>false</entry><entry>4</entry><entry>&xxe;</entry></result>
"""
DOCTYPE_ONLY = b"""<?xml version="1.0"?>
<!DOCTYPE result>
<result><entry>true</entry><entry>200</entry><entry>ok</entry></result>
"""
HTML_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
OVERSIZED = b'{"code": 200, "message": "' + b"x" * MAX_BODY_BYTES + b'"}'

# (body, Content-Type, how the reason read_answer gives starts)
NOT_API_BODIES: list[Any] = [
    pytest.param(b"", None, "empty body", id="empty"),
    pytest.param(b" \r\n\t ", "application/json", "empty body", id="blank"),
    pytest.param(b"\xef\xbb\xbf", None, "empty body", id="bom-only"),
    pytest.param(HTML_PAGE, "text/html", "XML <html> has no code", id="html-page"),
    pytest.param(
        b"<!DOCTYPE html>\n<html><body>Oops</body></html>",
        "text/html; charset=utf-8",
        "XML declares a DTD or entities",
        id="html5-page",
    ),
    pytest.param(
        b"Service Unavailable", "text/plain", "body is neither JSON nor XML", id="plain-text"
    ),
    pytest.param(b'"cancelled"', None, "body is neither JSON nor XML", id="bare-json-string"),
    pytest.param(b'{"code": 4,', None, "invalid JSON", id="invalid-json"),
    pytest.param(b'{"success": false, "code": 4, "mess', None, "invalid JSON", id="truncated"),
    pytest.param(b"{\xff\xfe}", None, "invalid JSON", id="json-not-utf8"),
    pytest.param(b'[{"code": 4}]', None, "JSON body is not an object", id="json-array"),
    pytest.param(b"4", "application/json", "JSON body is not an object", id="json-number"),
    pytest.param(b"null", "application/json", "JSON body is not an object", id="json-null"),
    pytest.param(
        b"<result><code>4</code></result>",
        "application/json",
        "invalid JSON",
        id="content-type-json-decides-over-xml-body",
    ),
    pytest.param(
        b'{"code": 4}', "application/xml", "invalid XML", id="content-type-xml-over-json-body"
    ),
    pytest.param(b"<result><entry>true</entry>", None, "invalid XML", id="truncated-xml"),
    pytest.param(
        b"<result><success>true</success></result>", None, "XML <result> has no code", id="no-code"
    ),
    pytest.param(
        b"<result><entry>true</entry></result>", None, "XML <result> has no code", id="one-entry"
    ),
    pytest.param(
        b'<?xml version="1.0" encoding="no-such-codec"?><result><code>4</code></result>',
        "application/xml",
        "invalid XML",
        id="xml-unknown-encoding",
    ),
    pytest.param(
        b'<?xml version="1.0" encoding="UTF-7"?><result><code>4</code></result>',
        None,
        "invalid XML",
        id="xml-multi-byte-encoding",
    ),
    pytest.param(OVERSIZED, None, f"body larger than {MAX_BODY_BYTES} bytes", id="oversized"),
    pytest.param(BILLION_LAUGHS, XML["content-type"], "XML declares a DTD", id="billion-laughs"),
    pytest.param(EXTERNAL_ENTITY, None, "XML declares a DTD", id="external-entity"),
    pytest.param(DOCTYPE_ONLY, None, "XML declares a DTD", id="doctype-without-entities"),
]


@pytest.mark.parametrize(("body", "content_type", "reason"), NOT_API_BODIES)
def test_read_answer_gives_no_code_and_the_reason_for_what_is_not_an_api_response(
    body: bytes, content_type: str | None, reason: str
) -> None:
    answer = _read(body, content_type)

    assert (answer.fields, answer.code) == ({}, None)
    assert answer.problem.startswith(reason)


GOOD_BODY = json.dumps({"success": True, "code": 200, "message": "ok"}).encode()


@pytest.mark.parametrize(
    "raw",
    [
        RawResponse(200, {"transfer-encoding": "chunked", "content-length": "62"}, GOOD_BODY),
        RawResponse(200, {"transfer-encoding": "gzip, chunked", "content-length": "0"}, GOOD_BODY),
        RawResponse(0, {}, b"", refused=AMBIGUOUS_FRAMING),
    ],
    ids=["chunked-and-length", "gzip-chunked-and-length", "refused-by-the-library"],
)
def test_an_answer_framed_both_ways_is_no_api_response_whatever_its_body(
    raw: RawResponse,
) -> None:
    answer = read_answer(raw)
    verdict = interpret_response(raw, message_id="300")

    assert (answer.fields, answer.code, answer.problem) == ({}, None, AMBIGUOUS_FRAMING)
    assert isinstance(verdict.error, UnexpectedResponseError)
    assert not verdict.retry


@pytest.mark.parametrize("headers", [{"content-length": "62"}, {"transfer-encoding": "chunked"}])
def test_an_answer_framed_one_way_is_read(headers: dict[str, str]) -> None:
    assert read_answer(RawResponse(200, headers, GOOD_BODY)).code == 200


# --- interpret_response: control codes -------------------------------------------

# The number in the body as the provider's page lists it, the error and the named member.
CODE_ERRORS: list[tuple[int, type[APIError], CancelCode]] = [
    (1, AuthenticationError, CancelCode.API_KEY_REQUIRED),
    (3, InvalidRequestError, CancelCode.MESSAGE_ID_REQUIRED),
    (4, MessageNotFoundError, CancelCode.MESSAGE_NOT_FOUND),
    (5, AlreadyCancelledError, CancelCode.ALREADY_CANCELLED),
    (6, CancellationTooLateError, CancelCode.TOO_LATE),
    (7, AlreadySentError, CancelCode.ALREADY_SENT),
    (10, AuthenticationError, CancelCode.INVALID_API_KEY),
]


@pytest.mark.parametrize(("code", "error_class", "member"), CODE_ERRORS)
def test_control_code_is_final_and_raises_its_own_error(
    code: int, error_class: type[APIError], member: CancelCode
) -> None:
    verdict = _answer(200, _json(success=False, code=code, message=f"text {code}"), JSON)

    assert verdict.result is None
    assert type(verdict.error) is error_class
    assert verdict.error.code is member
    assert verdict.error.message == f"text {code}"
    assert verdict.error.message_id == "300"
    assert verdict.error.http_status == 200
    assert verdict.error.errors == ()
    assert verdict.retry is False
    assert verdict.throttle is False
    assert verdict.reason == f"code {code}"


@pytest.mark.parametrize("code", [42, 0, 2, 8, 201, 999])
def test_unknown_control_code_is_plain_api_error(code: int) -> None:
    verdict = _answer(200, _json(success=False, code=code, message="Autre erreur"))

    assert type(verdict.error) is APIError
    assert verdict.error.code == code
    assert type(verdict.error.code) is int
    assert verdict.error.message == "Autre erreur"
    assert verdict.retry is False


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 410, 422, 500, 502, 503])
@pytest.mark.parametrize(
    ("code", "error_class"), [(4, MessageNotFoundError), (10, AuthenticationError)]
)
def test_control_code_decides_whatever_the_http_status(
    status: int, code: int, error_class: type[APIError]
) -> None:
    verdict = _answer(status, _json(success=False, code=code, message="m"))

    assert type(verdict.error) is error_class
    assert verdict.error.http_status == status
    assert verdict.retry is False


@pytest.mark.parametrize("status", [200, 202, 400, 500, 503])
@pytest.mark.parametrize("attempt", [1, 3])
def test_code_200_is_a_cancel_result_counting_attempts(status: int, attempt: int) -> None:
    body = _json(success=True, code=200, message="The email has been canceled.")

    verdict = _answer(status, body, attempt=attempt)

    assert verdict.error is None
    assert verdict.retry is False
    assert verdict.result == CancelResult(
        success=True,
        code=CancelCode.CANCELLED,
        message="The email has been canceled.",
        message_id="300",
        attempts=attempt,
    )


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param(_json(code="4"), JSON, id="json-string"),
        pytest.param(_json(code=" 4 "), JSON, id="json-padded-string"),
        pytest.param(_json(code=4.0), JSON, id="json-float"),
        pytest.param(b"<result><entry>false</entry><entry>4</entry></result>", XML, id="xml"),
        pytest.param(
            b"<result><success>false</success><code>4</code></result>", {}, id="xml-named"
        ),
    ],
)
def test_code_4_in_any_spelling_is_message_not_found(
    body: bytes, headers: Mapping[str, str]
) -> None:
    verdict = _answer(200, body, headers)

    assert type(verdict.error) is MessageNotFoundError
    assert verdict.error.code is CancelCode.MESSAGE_NOT_FOUND
    assert verdict.error.message == "Message not found"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_json(success=False, code=5, message="Déjà annulé"), "Déjà annulé"),
        (_json(success=False, code="5"), "The mail has already been canceled"),
        (
            b"<result><entry>false</entry><entry><![CDATA[5]]></entry>"
            b"<entry><![CDATA[ already ]]></entry></result>",
            "already",
        ),
    ],
)
@pytest.mark.parametrize("attempt", [2, 3])
def test_code_5_after_lost_response_is_success(body: bytes, message: str, attempt: int) -> None:
    verdict = _answer(200, body, attempt=attempt, earlier_attempt_reached=True)

    assert verdict.error is None
    assert verdict.result is not None
    assert verdict.result.success is True
    assert verdict.result == CancelResult(
        success=True,
        code=CancelCode.ALREADY_CANCELLED,
        message=message,
        message_id="300",
        attempts=attempt,
    )
    assert verdict.retry is False


def test_code_5_without_earlier_reaching_attempt_is_already_cancelled_error() -> None:
    verdict = _answer(200, _json(code=5, message="Déjà annulé"), attempt=2)

    assert verdict.result is None
    assert type(verdict.error) is AlreadyCancelledError
    assert verdict.error.message == "Déjà annulé"
    assert verdict.retry is False


@pytest.mark.parametrize(
    ("code", "earlier_attempt_reached", "cancelled"),
    [
        (200, False, True),
        (200, True, True),
        (5, True, True),
        (5, False, False),
        (4, True, False),
        (7, True, False),
        (429, True, False),
        (42, True, False),
    ],
)
def test_cancelled_by_this_call(code: int, earlier_attempt_reached: bool, cancelled: bool) -> None:
    assert (
        cancelled_by_this_call(code, earlier_attempt_reached=earlier_attempt_reached) is cancelled
    )


@pytest.mark.parametrize("status", [200, 400, 429])
@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [({}, None), ({"retry-after": "7"}, 7.0), ({"retry-after-ms": "1500"}, 1.5)],
)
def test_code_429_in_body_is_retried_and_throttles(
    status: int, headers: dict[str, str], retry_after: float | None
) -> None:
    verdict = _answer(status, _json(success=False, code=429, message="Trop de requêtes"), headers)

    assert type(verdict.error) is RateLimitError
    assert verdict.error.code is CancelCode.RATE_LIMITED
    assert verdict.error.message == "Trop de requêtes"
    assert verdict.error.http_status == status
    assert verdict.error.retry_after == retry_after
    assert verdict.retry is True
    assert verdict.throttle is True
    assert verdict.reached is False
    assert verdict.retry_after == retry_after


@pytest.mark.parametrize("body", [b"", HTML_PAGE, b"Too Many Requests", _json(success=False)])
def test_http_429_without_code_is_retried_and_throttles(body: bytes) -> None:
    verdict = _answer(429, body, {"retry-after": "3"})

    assert type(verdict.error) is RateLimitError
    assert verdict.error.code is CancelCode.RATE_LIMITED
    assert verdict.error.message == "Too many requests"
    assert verdict.error.http_status == 429
    assert verdict.error.retry_after == 3.0
    assert verdict.retry is True
    assert verdict.throttle is True
    assert verdict.reached is False
    assert verdict.retry_after == 3.0


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
@pytest.mark.parametrize("body", [b"", HTML_PAGE, b'{"success": false}', b"{oops"])
def test_5xx_without_code_is_retried_and_may_have_reached(status: int, body: bytes) -> None:
    verdict = _answer(status, body)

    assert type(verdict.error) is UnexpectedResponseError
    assert verdict.error.http_status == status
    assert verdict.error.message_id == "300"
    assert verdict.retry is True
    assert verdict.reached is True
    assert verdict.throttle is False
    assert verdict.retry_after is None


def test_5xx_with_retry_after_throttles() -> None:
    verdict = _answer(503, HTML_PAGE, {"retry-after": "12"})

    assert verdict.retry is True
    assert verdict.throttle is True
    assert verdict.retry_after == 12.0


@pytest.mark.parametrize(("body", "content_type", "reason"), NOT_API_BODIES)
def test_body_that_is_not_an_api_response_is_final_unexpected_response(
    body: bytes, content_type: str | None, reason: str
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}

    verdict = _answer(200, body, headers)

    assert verdict.result is None
    assert type(verdict.error) is UnexpectedResponseError
    assert verdict.error.http_status == 200
    assert verdict.error.message_id == "300"
    assert verdict.error.message.startswith(f"not a valid API response: {reason}")
    assert verdict.retry is False


@pytest.mark.parametrize("status", [200, 201, 204, 301, 302, 400, 401, 403, 404, 418, 499])
def test_non_5xx_status_without_code_is_final_unexpected_response(status: int) -> None:
    verdict = _answer(status, HTML_PAGE, {"content-type": "text/html"})

    assert type(verdict.error) is UnexpectedResponseError
    assert verdict.error.http_status == status
    assert verdict.error.message == "not a valid API response: XML <html> has no code"
    assert verdict.error.body_excerpt == HTML_PAGE.decode()
    assert verdict.retry is False
    assert verdict.throttle is False


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_json(success=True), id="no-code"),
        pytest.param(_json(code=None, message="x"), id="null"),
        pytest.param(_json(code=True), id="bool"),
        pytest.param(_json(code="abc"), id="letters"),
        pytest.param(_json(code="-4"), id="negative-string"),
        pytest.param(_json(code=4.5), id="fraction"),
        pytest.param(_json(code=[4]), id="list"),
        pytest.param(_json(code={"value": 4}), id="object"),
        pytest.param(b'{"code": NaN}', id="nan"),
        pytest.param(_json(code="²"), id="superscript-digit"),
        pytest.param(_json(code="9" * 5000), id="over-int-digit-limit"),
        pytest.param(b"<result><code>\xc2\xb2</code></result>", id="xml-superscript-digit"),
    ],
)
def test_body_without_a_readable_code_is_unexpected_response(body: bytes) -> None:
    verdict = _answer(200, body)

    assert type(verdict.error) is UnexpectedResponseError
    assert verdict.error.message.startswith("not a valid API response: ")
    assert verdict.error.http_status == 200
    assert verdict.retry is False


@pytest.mark.parametrize(
    "body",
    [b'{"success": true, "co', _json(success=True, code=200, message="ok"), b""],
)
def test_truncated_body_is_retryable_unexpected_response(body: bytes) -> None:
    verdict = _answer(200, body, truncated=True)

    assert verdict.result is None
    assert type(verdict.error) is UnexpectedResponseError
    assert verdict.error.http_status == 200
    assert verdict.retry is True
    assert verdict.reached is True


@pytest.mark.parametrize(
    ("body", "message", "errors"),
    [
        pytest.param(
            _json(success=False, code=4, message="Message introuvable"),
            "Message introuvable",
            (),
            id="french-message",
        ),
        pytest.param(
            _json(success=False, code=10, error="Clé API incorrecte"),
            "Clé API incorrecte",
            (),
            id="error-key",
        ),
        pytest.param(
            _json(success=False, code=10, error={"message": "Clé invalide"}),
            "Clé invalide",
            (),
            id="error-object",
        ),
        pytest.param(
            _json(
                success=False,
                code=3,
                errors=[{"elementId": "messageId", "message": "L'identifiant est requis"}],
            ),
            "L'identifiant est requis",
            ({"elementId": "messageId", "message": "L'identifiant est requis"},),
            id="errors-list",
        ),
        pytest.param(
            _json(
                code=3,
                message="Erreurs",
                errors=[{"elementId": "a", "message": "un"}, {"elementId": "b", "message": "deux"}],
            ),
            "Erreurs",
            ({"elementId": "a", "message": "un"}, {"elementId": "b", "message": "deux"}),
            id="message-and-errors",
        ),
        pytest.param(
            _json(code=3, errors=[{"elementId": "a", "message": "un"}, "junk", {"x": 1}]),
            "un; junk",  # a string in the list is a message too
            ({"elementId": "a", "message": "un"}, {"x": 1}),
            id="errors-with-junk",
        ),
        pytest.param(
            _json(code=6),
            "You cannot cancel the mail less than 5 minutes before its scheduled time",
            (),
            id="default-message",
        ),
        pytest.param(
            _json(code=7, message="  "),
            "You cannot cancel a mail that has already been sent",
            (),
            id="blank-message",
        ),
        pytest.param(_json(code=42), "", (), id="unknown-code-no-message"),
        pytest.param(
            b"<result><success>false</success><code>4</code>"
            b"<message>Message introuvable</message></result>",
            "Message introuvable",
            (),
            id="xml-french",
        ),
        pytest.param(
            b"<result><success>false</success><code>3</code><errors><error>"
            b"<elementId>messageId</elementId><message>Requis</message>"
            b"</error></errors></result>",
            "Requis",
            ({"elementId": "messageId", "message": "Requis"},),
            id="xml-errors",
        ),
    ],
)
def test_provider_message_and_errors_are_kept(
    body: bytes, message: str, errors: tuple[dict[str, Any], ...]
) -> None:
    verdict = _answer(200, body)

    assert isinstance(verdict.error, APIError)
    assert verdict.error.message == message
    assert verdict.error.errors == errors


PROVIDER_ANSWERS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "fixtures" / "provider_answers.json").read_text("utf-8")
)["answers"]


@pytest.mark.parametrize(
    "answer", [pytest.param(answer, id=answer["id"]) for answer in PROVIDER_ANSWERS]
)
def test_provider_answers_keep_their_messages(answer: dict[str, Any]) -> None:
    # Whether under `message`, `error` or `errors`, as a string, an object or a list.
    verdict = _answer(answer["status"], json.dumps(answer["body"]).encode(), JSON)

    result = verdict.result if verdict.error is None else verdict.error
    assert result.message == answer["message"]
    if verdict.error is not None:
        assert verdict.error.errors == tuple(answer["errors"])
        assert str(verdict.error).startswith(f"[code {answer['body']['code']}] {answer['message']}")


# --- secrets in what the protocol produces ---------------------------------------

SECRET_ECHOES: list[Any] = [
    pytest.param(
        b"<html><a href='/v1/message-cancel?apiKey=" + quote_plus(KEY).encode() + b"'>", id="url"
    ),
    pytest.param(b"<html><body>Bad key " + KEY.encode() + b"</body></html>", id="raw"),
    pytest.param(b"<html>" + quote(KEY, safe="").encode() + b"</html>", id="percent"),
    pytest.param(b"<html>" + quote_plus(KEY).encode() + b"</html>", id="plus"),
    pytest.param(b"[" + KEY.encode() + b"]" + b"x" * 2000, id="long-body"),
    pytest.param(b" " * 470 + KEY.encode(), id="after-whitespace-run"),
    pytest.param(b"\n" * 119 + KEY.encode(), id="after-newlines"),
]


@pytest.mark.parametrize("status", [200, 404, 502])
@pytest.mark.parametrize("body", SECRET_ECHOES)
def test_excerpt_never_shows_the_key_even_when_body_echoes_it(status: int, body: bytes) -> None:
    verdict = _answer(status, body, {"content-type": "text/html"}, secret=KEY)

    error = verdict.error
    assert type(error) is UnexpectedResponseError
    for text in (error.body_excerpt, str(error), repr(error)):
        for spelling in KEY_SPELLINGS:
            assert spelling not in text
        # Not even a recognisable piece of it.
        assert KEY[:6] not in text


@pytest.mark.parametrize("body", SECRET_ECHOES)
def test_truncated_body_excerpt_never_shows_the_key(body: bytes) -> None:
    verdict = _answer(200, body, secret=KEY, truncated=True)

    assert type(verdict.error) is UnexpectedResponseError
    assert KEY[:6] not in verdict.error.body_excerpt
    assert KEY[:6] not in str(verdict.error)


@pytest.mark.parametrize(
    ("fields", "secret", "expected"),
    [
        ({"message": f"Incorrect API key {KEY}"}, KEY, "Incorrect API key [REDACTED]"),
        ({"message": f"Clé {quote(KEY, safe='')} inconnue"}, KEY, "Clé [REDACTED] inconnue"),
        ({"message": f"Clé {quote_plus(KEY)} inconnue"}, KEY, "Clé [REDACTED] inconnue"),
        (
            {"message": "rejected ?apiKey=abc123&messageId=1"},
            None,
            "rejected ?apiKey=[REDACTED]&messageId=1",
        ),
        ({"error": f"bad key: {KEY}"}, KEY, "bad key: [REDACTED]"),
        (
            {"errors": [{"elementId": "apiKey", "message": f"{KEY} unknown"}]},
            KEY,
            "[REDACTED] unknown",
        ),
    ],
)
def test_provider_message_echoing_the_key_is_redacted(
    fields: dict[str, Any], secret: str | None, expected: str
) -> None:
    verdict = _answer(200, _json(success=False, code=10, **fields), secret=secret)

    assert type(verdict.error) is AuthenticationError
    assert verdict.error.message == expected
    assert KEY not in str(verdict.error)
    assert KEY not in repr(verdict.error)


# --- interpret_transport_error ---------------------------------------------------


@pytest.mark.parametrize(
    ("error", "reached", "reason"),
    [
        (
            APIConnectionError("connection refused", message_id="300", request_sent=False),
            False,
            "APIConnectionError: connection refused",
        ),
        (
            APIConnectionError("connection reset", message_id="300", request_sent=True),
            True,
            "APIConnectionError: connection reset",
        ),
        (
            APITimeoutError("connect timed out", message_id="300", request_sent=False),
            False,
            "APITimeoutError: connect timed out",
        ),
        (
            APITimeoutError("read timed out", message_id="300", request_sent=True),
            True,
            "APITimeoutError: read timed out",
        ),
    ],
)
def test_transport_error_is_retried_and_reached_when_sent(
    error: APIConnectionError, reached: bool, reason: str
) -> None:
    verdict = interpret_transport_error(error)

    assert verdict.result is None
    assert verdict.error is error
    assert verdict.retry is True
    assert verdict.reached is reached
    assert verdict.throttle is False
    assert verdict.retry_after is None
    assert verdict.reason == reason


# --- parse_retry_after -----------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "now", "expected"),
    [
        ({}, 0.0, None),
        ({"Retry-After": "2"}, 0.0, 2.0),
        ({"retry-after": "0"}, 0.0, 0.0),
        ({"RETRY-AFTER": "1.5"}, 0.0, 1.5),
        ({"Retry-After": " 3 "}, 0.0, 3.0),
        ({"Retry-After-Ms": "1500"}, 0.0, 1.5),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.0, 0.25),
        ({"retry-after-ms": "soon", "Retry-After": "9"}, 0.0, 9.0),
        ({"retry-after-ms": "-5", "Retry-After": "9"}, 0.0, 9.0),
        ({"retry-after-ms": "nan"}, 0.0, None),
        ({"retry-after-ms": "inf", "Retry-After": "4"}, 0.0, 4.0),
        ({"Retry-After": "-1"}, 0.0, None),
        ({"Retry-After": "soon"}, 0.0, None),
        ({"Retry-After": ""}, 0.0, None),
        ({"Retry-After": "inf"}, 0.0, None),
        ({"Retry-After": "-inf"}, 0.0, None),
        ({"Retry-After": "nan"}, 0.0, None),
        ({"Retry-After": "1e400"}, 0.0, None),
        ({"Retry-After": "Thu, 01 Jan 1970 00:00:10 GMT"}, 0.0, 10.0),
        ({"Retry-After": "Thu, 01 Jan 1970 00:00:10 GMT"}, 4.0, 6.0),
        ({"Retry-After": "Thu, 01 Jan 1970 00:00:10 GMT"}, 100.0, 0.0),
        ({"Retry-After": email.utils.formatdate(1_700_000_030, usegmt=True)}, 1_700_000_000, 30.0),
        ({"Retry-After": "Mon, 32 Jan 2020 00:00:00 GMT"}, 0.0, None),
        ({"Retry-After": "Mon, 01 Jan 99999999 00:00:00 GMT"}, 0.0, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], now: float, expected: float | None) -> None:
    assert parse_retry_after(headers, now=now) == expected


# --- error_for_code --------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error_class", "is_member"),
    [
        (1, AuthenticationError, True),
        (3, InvalidRequestError, True),
        (4, MessageNotFoundError, True),
        (5, AlreadyCancelledError, True),
        (6, CancellationTooLateError, True),
        (7, AlreadySentError, True),
        (10, AuthenticationError, True),
        (429, RateLimitError, True),
        (0, APIError, False),
        (2, APIError, False),
        (42, APIError, False),
        (999, APIError, False),
    ],
)
def test_error_for_code(code: int, error_class: type[APIError], is_member: bool) -> None:
    errors = [{"elementId": "messageId", "message": "m"}]

    error = error_for_code(code, "texte", message_id="300", http_status=400, errors=errors)

    assert type(error) is error_class
    assert error.code == code
    assert isinstance(error.code, CancelCode) is is_member
    assert error.message == "texte"
    assert error.message_id == "300"
    assert error.http_status == 400
    assert error.errors == ({"elementId": "messageId", "message": "m"},)


def test_error_for_code_429_keeps_retry_after() -> None:
    error = error_for_code(429, "Too many requests", retry_after=2.5)

    assert type(error) is RateLimitError
    assert error.retry_after == 2.5
    assert error.http_status is None


# --- pinned exactly: whole verdicts, every text, every redaction -----------------


ID = "msg-42"
SECRET = "s3cr3t-key"


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


# --- answers a hostile or odd server sends ---------------------------------------


HOSTILE_KEY = "hostile-Key-0123456789"


def verdict(
    body: bytes,
    headers: dict[str, str] | None = None,
    status: int = 200,
    secret: Secret | None = None,
) -> Verdict:
    raw = RawResponse(status, headers or {}, body)
    return interpret_response(raw, message_id="300", secret=secret)


@pytest.mark.parametrize(
    "raw",
    [
        RawResponse(200, {"content-type": f"text/x-{HOSTILE_KEY}"}, b"plain"),
        RawResponse(502, {"content-type": f"text/x-{HOSTILE_KEY}"}, b"plain"),
        RawResponse(200, {}, b"", undecodable=f"Content-Encoding {HOSTILE_KEY!r} is not supported"),
    ],
    ids=["content-type", "content-type-5xx", "content-encoding"],
)
def test_a_header_echoing_the_key_is_masked_in_the_error_and_the_reason(raw: RawResponse) -> None:
    found = interpret_response(raw, message_id="300", secret=HOSTILE_KEY)
    assert isinstance(found.error, UnexpectedResponseError)
    assert "[REDACTED]" in found.error.message
    for text in (str(found.error), repr(found.error), found.reason):
        assert HOSTILE_KEY not in text


@pytest.mark.parametrize(
    ("charset", "content_type"),
    [
        ("iso-8859-1", "application/json; charset=iso-8859-1"),
        ("iso-8859-1", 'application/json; charset="ISO-8859-1"'),
        ("cp1252", "application/json;charset=windows-1252"),
        ("utf-16", "application/json; charset=utf-16"),
    ],
)
def test_json_in_the_charset_its_content_type_names_is_read(
    charset: str, content_type: str
) -> None:
    body = '{"success": true, "code": 200, "message": "Le courriel a été annulé"}'
    result = interpret_response(
        RawResponse(200, {"content-type": content_type}, body.encode(charset)), message_id="1"
    ).result
    assert result is not None
    assert (result.code, result.message) == (CancelCode.CANCELLED, "Le courriel a été annulé")


def test_latin1_bytes_without_a_charset_are_not_an_api_response() -> None:
    body = '{"success": true, "code": 200, "message": "été"}'.encode("iso-8859-1")
    error = verdict(body, {"content-type": "application/json"}).error
    assert isinstance(error, UnexpectedResponseError)


def test_json_nested_too_deeply_is_an_unexpected_response_not_a_recursion_error() -> None:
    body = b"[" * 30_000 + b"]" * 30_000
    found = verdict(body, {"content-type": "application/json"})
    assert isinstance(found.error, UnexpectedResponseError)
    assert "nested too deeply" in str(found.error)


def test_an_undecodable_body_is_an_unexpected_response_saying_why() -> None:
    raw = RawResponse(200, {}, b"", undecodable="Content-Encoding 'br' is not supported")
    error = interpret_response(raw, message_id="1").error
    assert isinstance(error, UnexpectedResponseError)
    assert "Content-Encoding 'br' is not supported" in str(error)


def test_errors_values_are_redacted_at_any_depth_and_survive_pickling() -> None:
    body = (
        b'{"success": false, "code": 4, "message": "x", "errors": ['
        b'{"elementId": 1, "message": {"deep": ["' + HOSTILE_KEY.encode() + b'"]}},'
        b'["' + HOSTILE_KEY.encode() + b'"], 42]}'
    )
    error = verdict(body, {"content-type": "application/json"}, secret=Secret(HOSTILE_KEY)).error
    assert isinstance(error, MessageNotFoundError)
    assert list(error.errors) == [{"elementId": 1, "message": {"deep": ["[REDACTED]"]}}]
    for text in (str(error), repr(error), repr(error.errors), repr(vars(error))):
        assert HOSTILE_KEY not in text
    assert HOSTILE_KEY.encode() not in pickle.dumps(error)


def test_an_int_too_long_to_print_is_code_3_not_a_value_error() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        normalize_message_id(10**5000)
    assert caught.value.code is CancelCode.MESSAGE_ID_REQUIRED


def test_a_request_keeps_the_key_in_its_secret_until_sent() -> None:
    request = build_request("https://api.test/v1", Secret(HOSTILE_KEY), "300", "xml")
    assert HOSTILE_KEY not in repr(request)
    assert request.params == (("apiKey", HOSTILE_KEY), ("messageId", "300"), ("_format", "xml"))


# --- pinned exactly: charsets, ids and the request without a key -----------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("", None),
        ("application/json", None),
        ("application/json; charset=utf-8", "utf-8"),
        ("application/json; charset=UTF-8", "utf-8"),
        ("application/json;charset=latin-1", "iso8859-1"),
        ('application/json; charset="ISO-8859-1"', "iso8859-1"),
        ("application/json; format=x; charset=cp1252", "cp1252"),
        ("application/json; charset=no-such-codec", None),
        ("application/json; charsets=latin-1", None),
        ("application/json; xcharset=latin-1", None),
        ("charset=latin-1", None),  # a parameter needs a media type before it
        ("application/json; Charset = latin-1 ", "iso8859-1"),
        ("application/json; charset=latin-1; charset=utf-16", "iso8859-1"),
        ("application/json; charset=", None),
        ("application/json; charset=hex", "hex"),  # a codec, not a text encoding
        # Names the registry cannot even read (aiohttp hands a non-UTF-8 header byte
        # over as a lone surrogate).
        ("application/json; charset=\udcff", None),
        ("application/json; charset=utf\x00", None),
    ],
)
def test_charset_is_the_named_text_codec_of_the_content_type(
    content_type: str, expected: str | None
) -> None:
    assert _charset(content_type) == expected


def _outcome(body: bytes, content_type: str) -> CancelResult | MailPartnerError | None:
    verdict = interpret_response(
        RawResponse(200, {"content-type": content_type}, body), message_id="1"
    )
    return verdict.result if verdict.result is not None else verdict.error


def test_an_unknown_charset_reads_the_json_as_utf8() -> None:
    body = '{"code": 200, "message": "été"}'.encode()
    result = _outcome(body, "application/json; charset=no-such-codec")
    assert isinstance(result, CancelResult)
    assert result.message == "été"


@pytest.mark.parametrize("charset", ["\udcff", "utf\x00"])
def test_a_charset_the_codec_registry_cannot_read_reads_the_json_as_utf8(charset: str) -> None:
    body = '{"code": 200, "message": "été"}'.encode()
    result = _outcome(body, f"application/json; charset={charset}")
    assert isinstance(result, CancelResult)
    assert result.message == "été"


@pytest.mark.parametrize(("charset", "codec"), [("hex", "hex"), ("ROT13", "rot-13")])
def test_a_charset_naming_a_codec_not_of_text_is_an_unexpected_response_naming_it(
    charset: str, codec: str
) -> None:
    error = _outcome(b'{"code": 200}', f"application/json; charset={charset}")
    assert isinstance(error, UnexpectedResponseError)
    assert error.message == f"not a valid API response: charset {codec!r} is not a text encoding"


def test_json_deeper_than_the_parser_allows_is_not_an_api_response_and_says_so() -> None:
    error = _outcome(b"[" * 30_000 + b"]" * 30_000, "application/json")  # 60 KB, under the cap
    assert isinstance(error, UnexpectedResponseError)
    assert error.message == "not a valid API response: invalid JSON: nested too deeply"


def test_a_body_not_in_its_charset_is_invalid_json() -> None:
    error = _outcome(b'{"code": 200, "message": "\xff\xfe"}', "application/json; charset=utf-8")
    assert isinstance(error, MailPartnerError)
    assert "invalid JSON: UnicodeDecodeError" in str(error)


@pytest.mark.parametrize(
    ("message_id", "expected"),
    [(300, "300"), ("  7 ", "7"), ("a b", "a b"), (0, "0"), (-1, "-1")],
)
def test_an_id_is_its_text_stripped(message_id: object, expected: str) -> None:
    assert normalize_message_id(message_id) == expected


@pytest.mark.parametrize(
    ("message_id", "message", "reported_id"),
    [
        (10**5000, "message id is an int too large to be a message id", None),
        ("   ", "message id is required and must not be blank", "   "),
        (1.5, "message id must be a str or an int, got float", None),
        (True, "message id must be a str or an int, got bool", None),
    ],
    ids=["huge-int", "blank", "float", "bool"],
)
def test_a_bad_id_is_code_3_with_its_reason(
    message_id: object, message: str, reported_id: str | None
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        normalize_message_id(message_id)
    assert (caught.value.message, caught.value.message_id) == (message, reported_id)
    assert caught.value.code is CancelCode.MESSAGE_ID_REQUIRED


def test_a_request_without_a_key_or_with_a_blank_one_is_code_1() -> None:
    for key in (None, Secret("")):
        with pytest.raises(MailPartnerError) as caught:
            build_request("https://h.test", key, "9", "json")
        assert getattr(caught.value, "code", None) is CancelCode.API_KEY_REQUIRED
    request = build_request("https://h.test", Secret("k"), "9", "json")
    assert (request.url, request.message_id, request.method) == (
        "https://h.test/message-cancel",
        "9",
        "GET",
    )
