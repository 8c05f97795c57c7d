"""Protocol decisions on answers a hostile or odd server sends (issue: hostile networks)."""

from __future__ import annotations

import pickle

import pytest

from mailpartner_async import (
    CancelCode,
    InvalidRequestError,
    MessageNotFoundError,
    UnexpectedResponseError,
)
from mailpartner_async._core.protocol import (
    RawResponse,
    Verdict,
    build_request,
    interpret_response,
    normalize_message_id,
)
from mailpartner_async._core.secrets import Secret

KEY = "hostile-Key-0123456789"


def verdict(body: bytes, headers: dict[str, str] | None = None, status: int = 200) -> Verdict:
    return interpret_response(RawResponse(status, headers or {}, body), message_id="300")


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
    held = Secret(KEY)
    body = (
        b'{"success": false, "code": 4, "message": "x", "errors": ['
        b'{"elementId": 1, "message": {"deep": ["' + KEY.encode() + b'"]}},'
        b'["' + KEY.encode() + b'"], 42]}'
    )
    error = verdict(body, {"content-type": "application/json"}).error
    assert isinstance(error, MessageNotFoundError)
    assert list(error.errors) == [{"elementId": 1, "message": {"deep": ["[REDACTED]"]}}]
    for text in (str(error), repr(error), repr(error.errors), repr(vars(error))):
        assert KEY not in text
    assert KEY.encode() not in pickle.dumps(error)
    del held


def test_an_int_too_long_to_print_is_code_3_not_a_value_error() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        normalize_message_id(10**5000)
    assert caught.value.code is CancelCode.MESSAGE_ID_REQUIRED


def test_a_request_keeps_the_key_in_its_secret_until_sent() -> None:
    request = build_request("https://api.test/v1", Secret(KEY), "300", "xml")
    assert KEY not in repr(request)
    assert request.params == (("apiKey", KEY), ("messageId", "300"), ("_format", "xml"))
