"""What an attempt's failure means, whatever the HTTP library (table-driven, exact
errors): a transport failure as our error, what an attempt fails with when the batch
stopped or the client closed, a deadline passed, and an attempt settled."""

from __future__ import annotations

import pytest

from mailpartner_async import APIConnectionError, APITimeoutError, MailPartnerError
from mailpartner_async._core.attempt import (
    attempt_failure,
    deadline_passed,
    settled,
    transport_error,
)
from mailpartner_async._core.protocol import RawResponse


def _shown(error: MailPartnerError) -> tuple[type[MailPartnerError], str, str | None]:
    return type(error), error.message, error.message_id


def _connection(error: MailPartnerError) -> tuple[object, ...]:
    assert isinstance(error, APIConnectionError)
    return (*_shown(error), error.request_sent, error.transient)


# (sent, timed out, tls) -> (class, message, request_sent, transient)
TRANSPORT_ERRORS = [
    (
        (False, False, None),
        (APIConnectionError, "request failed (ConnectError: refused)", False, True),
    ),
    (
        (True, False, None),
        (APIConnectionError, "request failed (ConnectError: refused)", True, True),
    ),
    (
        (False, True, None),
        (APITimeoutError, "request timed out (ConnectError: refused)", False, True),
    ),
    (
        (True, True, None),
        (APITimeoutError, "request timed out (ConnectError: refused)", True, True),
    ),
    # TLS refused: not transient, whatever else is true of the failure.
    (
        (False, False, "certificate verify failed"),
        (
            APIConnectionError,
            "TLS refused the connection: certificate verify failed; not retried "
            "(ConnectError: refused)",
            False,
            False,
        ),
    ),
    (
        (True, True, "wrong version number"),
        (
            APIConnectionError,
            "TLS refused the connection: wrong version number; not retried (ConnectError: refused)",
            True,
            False,
        ),
    ),
]


@pytest.mark.parametrize(("facts", "expected"), TRANSPORT_ERRORS)
def test_a_transport_failure_is_this_exact_error(
    facts: tuple[bool, bool, str | None], expected: tuple[object, ...]
) -> None:
    sent, timed_out, tls = facts
    error = transport_error(
        "ConnectError", "refused", message_id="300", sent=sent, timed_out=timed_out, tls=tls
    )

    cls, message, request_sent, transient = expected
    assert _connection(error) == (cls, message, "300", request_sent, transient)


def test_a_transport_failure_is_not_about_tls_unless_told() -> None:
    error = transport_error("ReadError", "reset", message_id="7", sent=True, timed_out=False)

    assert _connection(error) == (
        APIConnectionError,
        "request failed (ReadError: reset)",
        "7",
        True,
        True,
    )


MAPPED = APITimeoutError("request timed out (ReadTimeout: )", message_id="300")


@pytest.mark.parametrize(("mapped", "closed"), [(MAPPED, True), (None, False), (None, True)])
def test_an_attempt_in_flight_when_the_batch_stopped_fails_saying_so(
    mapped: MailPartnerError | None, closed: bool
) -> None:
    error = attempt_failure(OSError("reset"), mapped, message_id="300", closed=closed, stopped=True)

    # The request may have gone: the stop shut its connection mid-way.
    assert _connection(error) == (
        APIConnectionError,
        "the batch stopped while this attempt was in flight",
        "300",
        True,
        True,
    )


@pytest.mark.parametrize("closed", [False, True])
def test_an_attempt_whose_failure_a_transport_mapped_fails_with_that_error(closed: bool) -> None:
    # (stopped left out: an attempt has not stopped unless told)
    assert attempt_failure(OSError(), MAPPED, message_id="300", closed=closed) is MAPPED


def test_an_attempt_the_client_closed_under_fails_saying_so() -> None:
    error = attempt_failure(OSError("reset"), None, message_id="300", closed=True)

    assert _shown(error) == (
        MailPartnerError,
        "the client was closed while this call was in flight",
        "300",
    )


def test_an_exception_no_transport_maps_on_an_open_client_is_raised_again() -> None:
    bug = KeyError("a bug in a transport")

    with pytest.raises(KeyError) as raised:
        attempt_failure(bug, None, message_id="300", closed=False)

    assert raised.value is bug


def test_a_deadline_passed_without_a_failure_is_a_timeout_of_a_request_maybe_sent() -> None:
    error = deadline_passed(None, message_id="300", deadline=2.5)

    assert _connection(error) == (
        APITimeoutError,
        "the attempt took longer than its time-out (2.5 s)",
        "300",
        True,
        True,
    )


def test_a_deadline_passed_before_a_byte_was_written_is_a_timeout_of_a_request_not_sent() -> None:
    error = deadline_passed(None, message_id="300", deadline=2.5, request_sent=False)

    assert _connection(error) == (
        APITimeoutError,
        "the attempt took longer than its time-out (2.5 s)",
        "300",
        False,
        True,
    )


def test_a_deadline_passed_after_a_failure_is_that_failure() -> None:
    assert deadline_passed(MAPPED, message_id="300", deadline=2.5) is MAPPED


def test_an_attempt_with_an_answer_is_settled_to_it() -> None:
    raw = RawResponse(200, {}, b"{}")

    assert settled(raw, None) is raw


@pytest.mark.parametrize("raw", [None, RawResponse(200, {}, b"{}")])
def test_an_attempt_that_failed_is_settled_by_raising_its_failure(
    raw: RawResponse | None,
) -> None:
    with pytest.raises(APITimeoutError) as raised:
        settled(raw, MAPPED)

    assert raised.value is MAPPED
    assert raised.value.__context__ is None


# Each failure that is not transient, alone and with the others: the first named wins
# (a source address refused, then a refused answer, then TLS), whatever else is true.
FINAL_FAILURES = [
    (
        {"source": "address not available"},
        "the connection could not leave from local_address: address not available",
        False,
    ),
    (
        {"refused": "Content-Length sent twice"},
        "the answer was refused: Content-Length sent twice",
        True,
    ),
    (
        {"tls": "certificate verify failed"},
        "TLS refused the connection: certificate verify failed",
        False,
    ),
    (
        {"source": "no such address", "refused": "x", "tls": "y"},
        "the connection could not leave from local_address: no such address",
        False,
    ),
    ({"refused": "twice", "tls": "y"}, "the answer was refused: twice", True),
]


@pytest.mark.parametrize(("given", "why", "request_sent"), FINAL_FAILURES)
@pytest.mark.parametrize("timed_out", [False, True])
def test_a_failure_that_is_not_transient_names_its_cause_and_is_not_retried(
    given: dict[str, str], why: str, request_sent: bool, timed_out: bool
) -> None:
    error = transport_error(
        "ConnectError", "refused", message_id="9", sent=False, timed_out=timed_out, **given
    )

    assert _connection(error) == (
        APIConnectionError,
        f"{why}; not retried (ConnectError: refused)",
        "9",
        request_sent,
        False,
    )
