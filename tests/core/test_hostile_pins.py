"""Exact-input pins for the sans-I/O parts the hostile-network work added: charsets,
deep redaction, settings of the newer options, ids, and the batch input error."""

from __future__ import annotations

from typing import Any

import pytest

from mailpartner_async import (
    CancelCode,
    CancelOutcome,
    CancelResult,
    ConfigurationError,
    IdsSourceError,
    InvalidRequestError,
    MailPartnerError,
    UnexpectedResponseError,
)
from mailpartner_async._core.protocol import (
    RawResponse,
    _charset,
    build_request,
    interpret_response,
    normalize_message_id,
)
from mailpartner_async._core.secrets import REDACTED, Secret, redact_json
from mailpartner_async._core.settings import Settings

SECRET = "pin-Secret-4242"


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


def _read(body: bytes, content_type: str) -> CancelResult | MailPartnerError | None:
    verdict = interpret_response(
        RawResponse(200, {"content-type": content_type}, body), message_id="1"
    )
    return verdict.result if verdict.result is not None else verdict.error


def test_an_unknown_charset_reads_the_json_as_utf8() -> None:
    body = '{"code": 200, "message": "été"}'.encode()
    result = _read(body, "application/json; charset=no-such-codec")
    assert isinstance(result, CancelResult)
    assert result.message == "été"


@pytest.mark.parametrize("charset", ["\udcff", "utf\x00"])
def test_a_charset_the_codec_registry_cannot_read_reads_the_json_as_utf8(charset: str) -> None:
    body = '{"code": 200, "message": "été"}'.encode()
    result = _read(body, f"application/json; charset={charset}")
    assert isinstance(result, CancelResult)
    assert result.message == "été"


@pytest.mark.parametrize(("charset", "codec"), [("hex", "hex"), ("ROT13", "rot-13")])
def test_a_charset_naming_a_codec_not_of_text_is_an_unexpected_response_naming_it(
    charset: str, codec: str
) -> None:
    error = _read(b'{"code": 200}', f"application/json; charset={charset}")
    assert isinstance(error, UnexpectedResponseError)
    assert error.message == f"not a valid API response: charset {codec!r} is not a text encoding"


def test_json_deeper_than_the_parser_allows_is_not_an_api_response_and_says_so() -> None:
    error = _read(b"[" * 30_000 + b"]" * 30_000, "application/json")  # 60 KB, under the cap
    assert isinstance(error, UnexpectedResponseError)
    assert error.message == "not a valid API response: invalid JSON: nested too deeply"


def test_a_body_not_in_its_charset_is_invalid_json() -> None:
    error = _read(b'{"code": 200, "message": "\xff\xfe"}', "application/json; charset=utf-8")
    assert isinstance(error, MailPartnerError)
    assert "invalid JSON: UnicodeDecodeError" in str(error)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (SECRET, REDACTED),
        (f"x {SECRET} y", f"x {REDACTED} y"),
        (7, 7),
        (1.5, 1.5),
        (True, True),
        (None, None),
        ([SECRET, 1], [REDACTED, 1]),
        ((SECRET, 2), [REDACTED, 2]),
        ({SECRET: SECRET}, {REDACTED: REDACTED}),
        ({1: "a"}, {"1": "a"}),
        ({SECRET}, "{'[REDACTED]'}"),
        (b"bytes", "b'bytes'"),
    ],
)
def test_redact_json_redacts_each_kind_of_value(value: Any, expected: Any) -> None:
    assert redact_json(value, SECRET) == expected


def test_only_secrets_of_six_characters_or_more_are_held_for_masking() -> None:
    short, long = Secret("abcde"), Secret("abcdef-held")
    assert redact_json("abcde abcdef-held") == "abcde [REDACTED]"
    del short, long


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


def settings(**changes: Any) -> Settings:
    arguments: dict[str, Any] = {
        "api_key": "k" * 10,
        "base_url": None,
        "timeout": 10.0,
        "max_retries": 2,
        "response_format": "json",
        "max_concurrency": None,
        "rate_limit": 2000,
        "allow_insecure_http": False,
        "transport": "httpx",
        "retry_policy": None,
    }
    arguments.update(changes)
    return Settings.create(**arguments)


@pytest.mark.parametrize(
    ("transport", "expected"),
    [("httpx", 10), ("httpx2", 20), ("aiohttp", 50), (object(), 10)],
)
def test_max_concurrency_none_is_the_transports_default(transport: object, expected: int) -> None:
    assert settings(transport=transport).max_concurrency == expected
    assert settings(transport=transport, max_concurrency=4).max_concurrency == 4


@pytest.mark.parametrize("bad", [0, -1, True, 2.0, "10"])
def test_max_concurrency_must_be_an_int_of_at_least_one(bad: object) -> None:
    with pytest.raises(ConfigurationError, match=r"max_concurrency must be an int >= 1"):
        settings(max_concurrency=bad)


def test_a_rate_limiter_must_be_one_or_none() -> None:
    from mailpartner_async._compat import check_rate_limiter

    assert check_rate_limiter(None) is None
    with pytest.raises(ConfigurationError, match=r"rate_limiter must be a rate limiter.*got 5"):
        check_rate_limiter(5)


def test_ids_source_error_keeps_its_message_and_a_copy_of_the_outcomes() -> None:
    outcome = CancelOutcome("1", error=MailPartnerError("x"))
    given = (outcome,)
    error = IdsSourceError("the ids broke", outcomes=given)
    assert (str(error), error.outcomes) == ("the ids broke", [outcome])
    assert IdsSourceError("none").outcomes == []
    assert error.message_id is None
