"""Error and outcome values pinned exactly: constructor defaults, texts and batch counts."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest

from mailpartner_async import (
    AlreadyCancelledError,
    AlreadySentError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    BatchProgress,
    CancelCode,
    CancellationTooLateError,
    CancelOutcome,
    CancelResult,
    MailPartnerError,
    MessageNotFoundError,
    RateLimitError,
    ScheduledMessage,
    UnexpectedResponseError,
)
from mailpartner_async._core.models import outcome_category

RESULT = CancelResult(success=True, code=CancelCode.CANCELLED, message="ok", message_id="1")


def _error(cls: type[APIError], code: int) -> APIError:
    return cls("no", code=code)


@pytest.mark.parametrize(
    ("outcome", "counts"),
    [
        (CancelOutcome("1", result=RESULT), {"done": 1, "cancelled": 1}),
        (
            CancelOutcome("1", error=_error(AlreadyCancelledError, 5)),
            {"done": 1, "already_cancelled": 1},
        ),
        (CancelOutcome("1", error=_error(CancellationTooLateError, 6)), {"done": 1, "too_late": 1}),
        (CancelOutcome("1", error=_error(AlreadySentError, 7)), {"done": 1, "already_sent": 1}),
        (CancelOutcome("1", error=_error(MessageNotFoundError, 4)), {"done": 1, "not_found": 1}),
        (CancelOutcome("1", error=RateLimitError("slow")), {"done": 1, "failed": 1}),
        (CancelOutcome("1", error=APIConnectionError("down")), {"done": 1, "failed": 1}),
        (CancelOutcome("1", error=UnexpectedResponseError("html")), {"done": 1, "failed": 1}),
    ],
)
def test_batch_progress_counts_each_outcome_under_its_category(
    outcome: CancelOutcome, counts: dict[str, int]
) -> None:
    assert BatchProgress().add(outcome) == BatchProgress(**counts)
    assert {"done", outcome_category(outcome)} == counts.keys()


def test_batch_progress_adds_onto_earlier_counts() -> None:
    progress = BatchProgress(done=4, cancelled=2, not_found=1, failed=1)
    progress = progress.add(CancelOutcome("1", result=RESULT))
    progress = progress.add(CancelOutcome("2", error=_error(MessageNotFoundError, 4)))
    assert progress == BatchProgress(done=6, cancelled=3, not_found=2, failed=1)


@pytest.mark.parametrize("fields", [{}, {"result": RESULT, "error": APIConnectionError("down")}])
def test_outcome_with_neither_or_both_is_refused_saying_so(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="exactly one of") as caught:
        CancelOutcome("1", **fields)  # type: ignore[arg-type]
    assert str(caught.value) == "a CancelOutcome holds exactly one of result or error"


@pytest.mark.parametrize(
    ("send_at", "error", "message"),
    [
        ("2030-01-01T12:00:00Z", TypeError, "send_at must be a datetime, got str"),
        (date(2030, 1, 1), TypeError, "send_at must be a datetime, got date"),
        (datetime(2030, 1, 1, 12), ValueError, "send_at must be an aware datetime (with a tzinfo)"),
    ],
)
def test_scheduled_message_refuses_a_send_at_not_an_aware_datetime_saying_what_it_got(
    send_at: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        ScheduledMessage("1", send_at)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_scheduled_message_keeps_an_aware_send_at_as_given() -> None:
    send_at = datetime(2030, 1, 1, 12, tzinfo=UTC)
    assert ScheduledMessage(7, send_at).send_at is send_at


# Built inside the test (not at collection) so the constructors run under test.
ERRORS: list[tuple[Callable[[], MailPartnerError], tuple[str, ...], dict[str, object]]] = [
    (lambda: MailPartnerError("boom"), ("boom",), {"message": "boom", "message_id": None}),
    (
        lambda: APIConnectionError("down"),
        ("down",),
        {"message": "down", "message_id": None, "request_sent": False, "transient": True},
    ),
    (
        lambda: APIConnectionError("down", message_id="8", request_sent=True),
        ("down",),
        {"message": "down", "message_id": "8", "request_sent": True, "transient": True},
    ),
    (
        lambda: APITimeoutError("slow", message_id="9", request_sent=True),
        ("slow",),
        {"message": "slow", "message_id": "9", "request_sent": True, "transient": True},
    ),
    (
        lambda: UnexpectedResponseError("html"),
        ("html",),
        {"message": "html", "message_id": None, "http_status": None, "body_excerpt": ""},
    ),
]


@pytest.mark.parametrize(("make", "args", "attributes"), ERRORS)
def test_error_keeps_exactly_what_it_was_given_and_documented_defaults(
    make: Callable[[], MailPartnerError], args: tuple[str, ...], attributes: dict[str, object]
) -> None:
    error = make()
    assert (error.args, vars(error)) == (args, attributes)


def test_connection_error_survives_pickling_with_its_fields() -> None:
    error = APIConnectionError("down", message_id="9", request_sent=True, transient=False)
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 -- our own bytes, just made
    assert (type(copy), copy.args, vars(copy)) == (
        APIConnectionError,
        ("down",),
        {"message": "down", "message_id": "9", "request_sent": True, "transient": False},
    )


def _error_outcome(error: MailPartnerError) -> CancelOutcome:
    return CancelOutcome("1", error=error)


@pytest.mark.parametrize(
    ("outcome", "stopped"),
    [
        (CancelOutcome("1", result=RESULT), True),
        (
            CancelOutcome(
                "1",
                result=CancelResult(
                    success=True, code=CancelCode.ALREADY_CANCELLED, message="", message_id="1"
                ),
            ),
            True,
        ),
        (_error_outcome(AlreadyCancelledError("", code=CancelCode.ALREADY_CANCELLED)), True),
        (_error_outcome(CancellationTooLateError("", code=CancelCode.TOO_LATE)), False),
        (_error_outcome(AlreadySentError("", code=CancelCode.ALREADY_SENT)), False),
        (_error_outcome(MessageNotFoundError("", code=CancelCode.MESSAGE_NOT_FOUND)), False),
        (_error_outcome(APIConnectionError("down")), False),
        (_error_outcome(MailPartnerError("not sent")), False),
    ],
)
def test_stopped_is_true_for_code_200_and_code_5_only(
    outcome: CancelOutcome, stopped: bool
) -> None:
    assert outcome.stopped is stopped


def test_progress_counts_the_stopped_and_those_going_out() -> None:
    progress = BatchProgress(done=7, cancelled=3, already_cancelled=2, too_late=1, failed=1)
    assert (progress.stopped, progress.going_out) == (5, 2)
