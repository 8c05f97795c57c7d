"""Secrets pinned exactly: the six-character threshold, the holder's texts."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import pytest

from mailpartner_async._core.secrets import Secret, redact


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
