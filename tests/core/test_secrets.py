"""The one home for secrets, table-driven: the key holder and text redaction
(the log filter: tests/test_log_redaction.py).

Then pinned exactly (for ``nox -s mutate``): the six-character threshold, the
holder's texts, the redaction of each kind of JSON value.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest

from mailpartner_async._core.protocol import (
    build_request,
)
from mailpartner_async._core.secrets import (
    REDACTED,
    Secret,
    excerpt,
    redact,
    redact_json,
    redact_params,
    redacted_url,
)

BASE_URL = "https://api.mailpartner.fr/v1"
URL = "https://api.mailpartner.fr/v1/message-cancel"
# Characters that the query string encodes, so every spelling of the key is exercised.
KEY = "k3y/w1th+odd&chars=and space"
KEY_SPELLINGS = (KEY, quote(KEY, safe=""), quote_plus(KEY))


# --- redact, redacted_url, excerpt -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret", "expected"),
    [
        (
            "GET /v1/message-cancel?apiKey=abc&messageId=1",
            None,
            "GET /v1/message-cancel?apiKey=[REDACTED]&messageId=1",
        ),
        ("?APIKEY=abc", None, "?APIKEY=[REDACTED]"),
        ("apiKey=abc def", None, "apiKey=[REDACTED] def"),
        ("'apiKey=abc'", None, "'apiKey=[REDACTED]'"),
        ("apiKey=", None, "apiKey=[REDACTED]"),
        (f"the key is {KEY}.", KEY, "the key is [REDACTED]."),
        (f"?apiKey={quote(KEY, safe='')}&x=1", KEY, "?apiKey=[REDACTED]&x=1"),
        (f"encoded {quote(KEY, safe='')} here", KEY, "encoded [REDACTED] here"),
        (f"plus {quote_plus(KEY)} here", KEY, "plus [REDACTED] here"),
        (f"{KEY}{KEY}", KEY, "[REDACTED][REDACTED]"),
        ("nothing to hide", KEY, "nothing to hide"),
        ("nothing to hide", "", "nothing to hide"),
        ("", KEY, ""),
    ],
)
def test_redact(text: str, secret: str | None, expected: str) -> None:
    assert redact(text, secret) == expected


def test_url_httpx_sends_is_redacted() -> None:
    request = build_request(BASE_URL, Secret(KEY), "300&apiKey=x", "xml")
    url = str(httpx.Request(request.method, request.url, params=request.params).url)
    assert KEY_SPELLINGS[2] in url  # the test would prove nothing otherwise

    assert redact(url) == (
        "https://api.mailpartner.fr/v1/message-cancel?apiKey=[REDACTED]"
        "&messageId=300%26apiKey%3Dx&_format=xml"
    )


@pytest.mark.parametrize(
    ("url", "params", "expected"),
    [
        (
            URL,
            (("apiKey", KEY), ("messageId", "300")),
            f"{URL}?apiKey=[REDACTED]&messageId=300",
        ),
        (
            URL,
            (("apiKey", KEY), ("messageId", "300&apiKey=x"), ("_format", "xml")),
            f"{URL}?apiKey=[REDACTED]&messageId=300%26apiKey%3Dx&_format=xml",
        ),
        (f"{URL}?apiKey={quote_plus(KEY)}", (), f"{URL}?apiKey=[REDACTED]"),
        (f"{URL}?trace=1", (("apiKey", KEY),), f"{URL}?trace=1&apiKey=[REDACTED]"),
        (URL, (), URL),
    ],
)
def test_redacted_url(url: str, params: tuple[tuple[str, str], ...], expected: str) -> None:
    assert redacted_url(url, params) == expected


@pytest.mark.parametrize(
    ("body", "secret", "expected"),
    [
        (b"", None, ""),
        (
            b"<html>\n  <body>Bad   Gateway</body>\r\n</html>\n",
            None,
            "<html> <body>Bad Gateway</body> </html>",
        ),
        (b"x" * 120, None, "x" * 120),
        (b"x" * 121, None, "x" * 119 + "…"),
        (b"y" * 5000, None, "y" * 119 + "…"),
        (b"\xff\xfeok", None, "\ufffd\ufffdok"),
        ("Clé API incorrecte".encode(), None, "Clé API incorrecte"),
        (b"see ?apiKey=abc&x=1", None, "see ?apiKey=[REDACTED]&x=1"),
        (f"echo {KEY} end".encode(), KEY, "echo [REDACTED] end"),
        (b"x" * 115 + KEY.encode(), KEY, "x" * 115 + "[RED…"),
    ],
)
def test_excerpt(body: bytes, secret: str | None, expected: str) -> None:
    assert excerpt(body, secret) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"apiKey": KEY, "messageId": "300"}, {"apiKey": "[REDACTED]", "messageId": "300"}),
        ({"APIKEY": KEY, "apikey": "x"}, {"APIKEY": "[REDACTED]", "apikey": "[REDACTED]"}),
        ({"apiKeys": "shown", "key": "shown"}, {"apiKeys": "shown", "key": "shown"}),
        ({"messageId": KEY}, {"messageId": KEY}),
        ({}, {}),
    ],
)
def test_redact_params_masks_the_key_parameter_in_any_case(
    params: dict[str, str], expected: dict[str, str]
) -> None:
    assert redact_params(params) == expected


# --- Secret ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "render", [repr, str, "{}".format, "{!s:>40}".format, lambda s: f"{s}", lambda s: f"{s!r}"]
)
def test_secret_never_renders_its_value(render: Callable[[Secret], str]) -> None:
    text = render(Secret(KEY))

    assert KEY not in text
    assert "**********" in text


def test_secret_reveals_its_value_only_when_asked() -> None:
    assert Secret(KEY).reveal() == KEY


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_secret_refuses_to_be_pickled(protocol: int) -> None:
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(Secret(KEY), protocol=protocol)


def test_redact_masks_the_secret_it_is_given_and_no_other() -> None:
    given, other = Secret("echoed-Key-42"), Secret("other-Key-43")
    text = "HTTP/1.1 200 echoed-Key-42 other-Key-43"

    assert redact(text, given) == "HTTP/1.1 200 [REDACTED] other-Key-43"
    assert redact(text, "other-Key-43") == "HTTP/1.1 200 echoed-Key-42 [REDACTED]"
    assert redact(text) == text  # no registry: a key alive elsewhere is not masked
    encoded_twice = "echoed%2DKey%2D42"  # not a spelling the key is sent in
    assert redact(f"x=echoed-Key-42 y={encoded_twice}", given) == f"x=[REDACTED] y={encoded_twice}"
    del other


def test_redact_json_masks_strings_at_any_depth_and_keeps_scalars() -> None:
    secret = "deep-Key-1234"
    value = {"a": [{"b": {"c": secret}}, [secret, 42, None, True, 1.5]], secret: "x"}
    assert redact_json(value, secret) == {
        "a": [{"b": {"c": "[REDACTED]"}}, ["[REDACTED]", 42, None, True, 1.5]],
        "[REDACTED]": "x",
    }


# --- pinned exactly: the six-character threshold, the holder's texts, the filter install ---


@pytest.mark.parametrize(
    ("text", "secret", "expected"),
    [
        ("key abc123 here", "abc123", "key [REDACTED] here"),
        ("key abc12 here", "abc12", "key abc12 here"),
        ("key abc123 here", None, "key abc123 here"),
        ("key abc123 here", "", "key abc123 here"),
        ("a/b c+d a%2Fb%20c%2Bd a%2Fb+c%2Bd", "a/b c+d", "[REDACTED] [REDACTED] [REDACTED]"),
    ],
)
def test_secret_of_six_characters_or_more_is_masked_in_every_spelling(
    text: str, secret: str | None, expected: str
) -> None:
    assert redact(text, secret) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [("abc123", "key [REDACTED] here"), ("abc12", "key abc12 here")]
)
def test_a_secret_holder_of_six_characters_or_more_is_masked_when_given(
    value: str, expected: str
) -> None:
    held = Secret(value)
    assert redact(f"key {held.reveal()} here", held) == expected


@pytest.mark.parametrize("render", [repr, str, "{}".format, "{:>40}".format])
def test_secret_renders_as_a_fixed_mask(render: Callable[[Secret], str]) -> None:
    assert render(Secret("abcdefgh")) == "Secret('**********')"


def test_secret_refuses_pickling_saying_why() -> None:
    with pytest.raises(TypeError) as caught:
        pickle.dumps(Secret("abcdefgh"))
    assert str(caught.value) == "an API key is not pickled"


# --- pinned exactly: redaction of JSON values, and what a secret is held for -----


SECRET = "pin-Secret-4242"


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


@pytest.mark.parametrize(
    ("secret", "expected"),
    [(Secret("abcde"), "abcde abcdef-held"), (Secret("abcdef-held"), "abcde [REDACTED]")],
    ids=["five", "eleven"],
)
def test_only_secrets_of_six_characters_or_more_are_masked(secret: Secret, expected: str) -> None:
    assert redact_json("abcde abcdef-held", secret) == expected
