"""Secrets pinned exactly: the six-character threshold, the holder's texts, the filter install."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Iterator

import pytest

from mailpartner_async._core.secrets import (
    _FILTER,
    _REDACTED_LOGGERS,
    Secret,
    install_log_redaction,
    redact,
)


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
def test_a_live_secret_of_six_characters_or_more_is_masked_without_being_named(
    value: str, expected: str
) -> None:
    held = Secret(value)
    assert redact(f"key {held.reveal()} here") == expected


@pytest.mark.parametrize("render", [repr, str, "{}".format, "{:>40}".format])
def test_secret_renders_as_a_fixed_mask(render: Callable[[Secret], str]) -> None:
    assert render(Secret("abcdefgh")) == "Secret('**********')"


def test_secret_refuses_pickling_saying_why() -> None:
    with pytest.raises(TypeError) as caught:
        pickle.dumps(Secret("abcdefgh"))
    assert str(caught.value) == "an API key is not pickled"


def test_filter_leaves_a_record_without_args_once_it_masks() -> None:
    record = logging.LogRecord("httpx", logging.INFO, "f", 1, "GET %s", ("/x?apiKey=abc",), None)
    assert _FILTER.filter(record) is True
    assert (record.msg, record.args, record.getMessage()) == (
        "GET /x?apiKey=[REDACTED]",
        None,
        "GET /x?apiKey=[REDACTED]",
    )


@pytest.fixture
def loggers_without_filter() -> Iterator[list[logging.Logger]]:
    loggers = [logging.getLogger(name) for name in _REDACTED_LOGGERS]
    for logger in loggers:
        logger.removeFilter(_FILTER)
    root_filters = list(logging.getLogger().filters)
    yield loggers
    for logger in loggers:
        logger.removeFilter(_FILTER)
        logger.addFilter(_FILTER)
    logging.getLogger().filters[:] = root_filters


def test_install_log_redaction_adds_the_filter_once_to_each_http_logger(
    loggers_without_filter: list[logging.Logger],
) -> None:
    install_log_redaction()
    install_log_redaction()
    assert [logger.filters.count(_FILTER) for logger in loggers_without_filter] == [1] * len(
        _REDACTED_LOGGERS
    )
    assert _FILTER not in logging.getLogger().filters
