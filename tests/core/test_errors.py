"""The error tree: its shape, what errors print, and that they survive pickling; the
batch input error pinned exactly."""

from __future__ import annotations

import copy
import pickle

import pytest

import mailpartner_async
from mailpartner_async import (
    AlreadyCancelledError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BatchError,
    BatchProgress,
    CancelCode,
    CancelOutcome,
    ConfigurationError,
    IdsSourceError,
    MailPartnerError,
    MessageNotFoundError,
    RateLimitError,
    UnexpectedResponseError,
)
from mailpartner_async._core import errors as errors_module


def _drawn_tree(docstring: str) -> dict[str, str]:
    """Each error's parent as the tree in ``docstring`` draws it (four columns a level)."""
    drawing = docstring.split("The tree::", 1)[1].strip("\n").split("\n\n", 1)[0]
    parents: dict[str, str] = {}
    path: list[str] = []
    for line in drawing.splitlines():
        text = line[4:]  # the block's indent
        name = text.lstrip("│├└─ ").split()[0]
        depth = (len(text) - len(text.lstrip("│├└─ "))) // 4
        del path[depth:]
        if path:
            parents[name] = path[-1]
        path.append(name)
    return parents


def test_error_tree_is_the_one_drawn_in_the_docs() -> None:
    drawn = _drawn_tree(errors_module.__doc__ or "")
    errors = [getattr(mailpartner_async, name) for name in drawn]
    real = {error.__name__: error.__bases__[0].__name__ for error in errors}

    assert real == drawn
    assert set(drawn) | {"MailPartnerError"} == {
        name
        for name in mailpartner_async.__all__
        if isinstance(getattr(mailpartner_async, name), type)
        and issubclass(getattr(mailpartner_async, name), MailPartnerError)
    }
    # Drawn apart: a caller's `except ValueError` also catches a bad setting.
    assert ConfigurationError.__bases__ == (MailPartnerError, ValueError)


@pytest.mark.parametrize(
    ("error", "text", "representation"),
    [
        (MailPartnerError("boom"), "boom", "MailPartnerError('boom', message_id=None)"),
        (
            MailPartnerError("boom", message_id="300"),
            "boom (message id '300')",
            "MailPartnerError('boom', message_id='300')",
        ),
        (
            ConfigurationError("bad base_url"),
            "bad base_url",
            "ConfigurationError('bad base_url', message_id=None)",
        ),
        (
            MessageNotFoundError(
                "Message not found",
                code=CancelCode.MESSAGE_NOT_FOUND,
                message_id="300",
                http_status=200,
            ),
            "[code 4] Message not found (message id '300')",
            "MessageNotFoundError(code=4, message='Message not found', message_id='300', "
            "http_status=200)",
        ),
        (
            AuthenticationError("Clé API incorrecte", code=10, http_status=401),
            "[code 10] Clé API incorrecte",
            "AuthenticationError(code=10, message='Clé API incorrecte', message_id=None, "
            "http_status=401)",
        ),
        (
            APIError("Autre", code=42),
            "[code 42] Autre",
            "APIError(code=42, message='Autre', message_id=None, http_status=None)",
        ),
        (
            RateLimitError("Too many requests", retry_after=2.0),
            "[code 429] Too many requests",
            "RateLimitError(code=429, message='Too many requests', message_id=None, "
            "http_status=None)",
        ),
        (
            APITimeoutError("request timed out", message_id="7", request_sent=True),
            "request timed out (message id '7')",
            "APITimeoutError('request timed out', message_id='7')",
        ),
        (
            UnexpectedResponseError(
                "not a valid API response: empty body",
                message_id="300",
                http_status=502,
                body_excerpt="<html>",
            ),
            "not a valid API response: empty body (message id '300') [HTTP 502]: '<html>'",
            "UnexpectedResponseError('not a valid API response: empty body', "
            "message_id='300', http_status=502)",
        ),
        (
            UnexpectedResponseError("not a valid API response: empty body", http_status=500),
            "not a valid API response: empty body [HTTP 500]",
            "UnexpectedResponseError('not a valid API response: empty body', "
            "message_id=None, http_status=500)",
        ),
    ],
)
def test_str_and_repr(error: MailPartnerError, text: str, representation: str) -> None:
    assert str(error) == text
    assert repr(error) == representation


@pytest.mark.parametrize(
    "error",
    [
        MailPartnerError("boom", message_id="1"),
        ConfigurationError("bad base_url"),
        APIError("Autre", code=42, message_id="1", http_status=400),
        MessageNotFoundError(
            "Message introuvable",
            code=CancelCode.MESSAGE_NOT_FOUND,
            message_id="300",
            http_status=200,
            errors=[{"elementId": "messageId", "message": "introuvable"}],
        ),
        AuthenticationError("Incorrect API key", code=CancelCode.INVALID_API_KEY),
        RateLimitError("Too many requests", message_id="2", http_status=429, retry_after=1.5),
        APIConnectionError("connection reset", message_id="3", request_sent=True),
        APITimeoutError("connect timed out", message_id="4", request_sent=False),
        UnexpectedResponseError("bad", message_id="5", http_status=502, body_excerpt="<html>"),
    ],
    ids=lambda error: type(error).__name__,
)
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickling_keeps_type_and_attributes(error: MailPartnerError, protocol: int) -> None:
    restored = pickle.loads(pickle.dumps(error, protocol=protocol))  # noqa: S301

    assert type(restored) is type(error)
    assert restored.__dict__ == error.__dict__
    assert restored.args == error.args
    assert str(restored) == str(error)
    assert repr(restored) == repr(error)


def test_pickling_keeps_the_code_enum_member() -> None:
    error = AlreadyCancelledError("déjà", code=CancelCode.ALREADY_CANCELLED)

    restored = pickle.loads(pickle.dumps(error))  # noqa: S301

    assert restored.code is CancelCode.ALREADY_CANCELLED


def test_deepcopy_keeps_attributes() -> None:
    error = RateLimitError("Too many requests", http_status=429, retry_after=3.0)

    copied = copy.deepcopy(error)

    assert type(copied) is RateLimitError
    assert copied.retry_after == 3.0
    assert copied.http_status == 429
    assert copied.code == 429


# --- pinned exactly: the batch errors -------------------------------------------------


def test_ids_source_error_keeps_its_message_and_a_copy_of_the_outcomes() -> None:
    outcome = CancelOutcome("1", error=MailPartnerError("x"))
    given = (outcome,)
    error = IdsSourceError("the ids broke", outcomes=given)
    assert (str(error), error.outcomes) == ("the ids broke", [outcome])
    assert IdsSourceError("none").outcomes == []
    assert error.message_id is None


def test_batch_error_keeps_its_outcomes_and_its_progress() -> None:
    outcome = CancelOutcome("1", error=MailPartnerError("x"))
    progress = BatchProgress(done=1, failed=1)
    error = BatchError("the journal failed", outcomes=(outcome,), progress=progress)
    assert (str(error), error.outcomes, error.progress) == (
        "the journal failed",
        [outcome],
        progress,
    )
    assert BatchError("none").progress is None
