"""The journal's records, sans-I/O (table-driven, exact lines and states): the key's
fingerprint, the target a header names, which outcomes are final, each record's line
and how lines are read back. The file around them is tests/test_journal.py's."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from mailpartner_async import (
    AlreadyCancelledError,
    AlreadySentError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BatchProgress,
    CancelCode,
    CancellationTooLateError,
    CancelOutcome,
    CancelResult,
    InvalidRequestError,
    MailPartnerError,
    MessageNotFoundError,
    RateLimitError,
    UnexpectedResponseError,
)
from mailpartner_async._core.journal import (
    JournalState,
    JournalTarget,
    decided_locally,
    encode_record,
    final_record,
    header_record,
    is_final,
    key_fingerprint,
    parse_record,
)

KEY = "mp-live-4f9c2a7d1e"


def test_the_fingerprint_is_the_hmac_of_the_key_under_the_fixed_label_cut_to_16_digits() -> None:
    label = b"mailpartner-async journal key fingerprint v1"
    digest = hmac.new(label, KEY.encode(), hashlib.sha256).hexdigest()

    assert key_fingerprint(KEY) == f"hmac-sha256:{digest[:16]}"
    assert len(key_fingerprint("")) == len("hmac-sha256:") + 16
    assert key_fingerprint(KEY) != key_fingerprint(KEY + "x")


def test_the_fingerprint_of_a_non_ascii_key_is_of_its_utf8_bytes() -> None:
    digest = hmac.new(
        b"mailpartner-async journal key fingerprint v1", "clé-é".encode(), hashlib.sha256
    ).hexdigest()

    assert key_fingerprint("clé-é") == f"hmac-sha256:{digest[:16]}"


@pytest.mark.parametrize(
    ("base_url", "api_key", "sandbox", "expected"),
    [
        ("https://api.example/v1", KEY, False, ("https://api.example/v1", True, False)),
        ("https://api.example/v1/", KEY, True, ("https://api.example/v1", True, True)),
        ("https://api.example/v1///", None, False, ("https://api.example/v1", False, False)),
        # Only slashes are cut: a path ending in X, or in a space, keeps it.
        ("https://api.example/INBOX/", None, False, ("https://api.example/INBOX", False, False)),
        ("https://api.example/v1 ", None, False, ("https://api.example/v1 ", False, False)),
    ],
)
def test_a_clients_target_keeps_its_url_without_trailing_slashes_and_only_a_fingerprint(
    base_url: str, api_key: str | None, sandbox: bool, expected: tuple[str, bool, bool]
) -> None:
    target = JournalTarget.of(base_url, api_key, sandbox=sandbox)

    url, has_key, in_sandbox = expected
    assert target == JournalTarget(
        url, key_fingerprint(KEY) if has_key else None, sandbox=in_sandbox
    )


def test_a_target_is_for_real_unless_told_it_is_the_sandbox() -> None:
    assert JournalTarget.of("https://a.example", KEY).sandbox is False
    assert JournalTarget("https://a.example", None).sandbox is False


@pytest.mark.parametrize(
    ("target", "described"),
    [
        (JournalTarget("https://a.example", None), "https://a.example"),
        (
            JournalTarget("https://a.example", "hmac-sha256:0011"),
            "https://a.example with the key hmac-sha256:0011",
        ),
        (JournalTarget("https://a.example", None, sandbox=True), "the sandbox"),
        (
            JournalTarget("https://a.example", "hmac-sha256:0011", sandbox=True),
            "the sandbox with the key hmac-sha256:0011",
        ),
        (JournalTarget("https://a.example", ""), "https://a.example"),
    ],
)
def test_a_target_describes_where_and_with_which_key(target: JournalTarget, described: str) -> None:
    assert target.describe() == described


@pytest.mark.parametrize(
    ("target", "record"),
    [
        (
            JournalTarget("https://a.example", "hmac-sha256:0011"),
            {"base_url": "https://a.example", "key": "hmac-sha256:0011", "sandbox": False},
        ),
        (
            JournalTarget("https://a.example", None, sandbox=True),
            {"base_url": "https://a.example", "key": None, "sandbox": True},
        ),
    ],
)
def test_a_target_is_written_as_its_three_fields_and_read_back_the_same(
    target: JournalTarget, record: dict[str, Any]
) -> None:
    assert target.as_record() == record
    assert JournalTarget.from_record(record) == target


@pytest.mark.parametrize(
    "record",
    [
        None,
        "https://a.example",
        ["https://a.example", None, False],
        {},
        {"key": None, "sandbox": False},  # no url
        {"base_url": 7, "key": None, "sandbox": False},
        {"base_url": "https://a.example", "key": None},  # no sandbox flag
        {"base_url": "https://a.example", "key": None, "sandbox": 0},
        {"base_url": "https://a.example", "key": None, "sandbox": "false"},
        {"base_url": "https://a.example", "key": 7, "sandbox": False},
        {"base_url": "https://a.example", "key": b"hmac", "sandbox": True},
    ],
)
def test_a_header_target_in_another_form_names_no_target(record: object) -> None:
    assert JournalTarget.from_record(record) is None


def test_a_target_with_no_key_field_reads_as_one_with_no_key() -> None:
    record = {"base_url": "https://a.example", "sandbox": True}

    assert JournalTarget.from_record(record) == JournalTarget("https://a.example", None, True)


@pytest.mark.parametrize(
    ("target", "header"),
    [
        (None, {"event": "journal", "version": 1}),
        (
            JournalTarget("https://a.example", "hmac-sha256:0011"),
            {
                "event": "journal",
                "version": 1,
                "target": {
                    "base_url": "https://a.example",
                    "key": "hmac-sha256:0011",
                    "sandbox": False,
                },
            },
        ),
    ],
)
def test_a_new_journal_starts_with_its_version_and_its_target(
    target: JournalTarget | None, header: dict[str, Any]
) -> None:
    assert header_record(target) == header


def _result(code: CancelCode = CancelCode.CANCELLED) -> CancelOutcome:
    result = CancelResult(success=True, code=code, message="ok", message_id="300")
    return CancelOutcome("300", result=result)


def _error(error: MailPartnerError) -> CancelOutcome:
    return CancelOutcome("300", error=error)


def _answered(cls: type[APIError], code: int, http_status: int = 200) -> CancelOutcome:
    return _error(cls("m", code=code, message_id="300", http_status=http_status))


def _local(cls: type[APIError], code: int) -> CancelOutcome:
    return _error(cls("m", code=code, message_id="300"))


# outcome -> (decided without a request, final)
FINALITY = [
    (_result(), (False, True)),
    (_result(CancelCode.ALREADY_CANCELLED), (False, True)),
    (_answered(InvalidRequestError, 3), (False, True)),
    (_answered(MessageNotFoundError, 4), (False, True)),
    (_answered(AlreadyCancelledError, 5), (False, True)),
    (_answered(CancellationTooLateError, 6), (False, True)),
    (_answered(AlreadySentError, 7), (False, True)),
    (_answered(AlreadySentError, 7, http_status=404), (False, True)),
    # Decided here, with no answer: a rerun asks the server.
    (_local(CancellationTooLateError, 6), (True, False)),
    (_local(InvalidRequestError, 3), (True, False)),
    # Codes a rerun may answer otherwise.
    (_answered(AuthenticationError, 1), (False, False)),
    (_answered(AuthenticationError, 10), (False, False)),
    (_answered(RateLimitError, 429, http_status=429), (False, False)),
    (_local(RateLimitError, 429), (True, False)),
    (_answered(APIError, 42), (False, False)),
    (_error(APIConnectionError("reset", message_id="300", request_sent=True)), (False, False)),
    (_error(APITimeoutError("slow", message_id="300")), (False, False)),
    (_error(UnexpectedResponseError("html", message_id="300")), (False, False)),
    (_error(MailPartnerError("closed", message_id="300")), (False, False)),
]


@pytest.mark.parametrize(("outcome", "expected"), FINALITY)
def test_an_outcome_is_final_when_a_rerun_would_get_the_same_answer(
    outcome: CancelOutcome, expected: tuple[bool, bool]
) -> None:
    assert (decided_locally(outcome), is_final(outcome)) == expected


@pytest.mark.parametrize(
    ("outcome", "record"),
    [
        (_result(), {"event": "final", "id": "300", "outcome": "cancelled", "code": 200}),
        (
            _result(CancelCode.ALREADY_CANCELLED),
            {"event": "final", "id": "300", "outcome": "cancelled", "code": 5},
        ),
        (
            _answered(AlreadyCancelledError, 5),
            {"event": "final", "id": "300", "outcome": "already_cancelled", "code": 5},
        ),
        (
            _answered(CancellationTooLateError, 6),
            {"event": "final", "id": "300", "outcome": "too_late", "code": 6},
        ),
        (
            _answered(AlreadySentError, 7),
            {"event": "final", "id": "300", "outcome": "already_sent", "code": 7},
        ),
        (
            _answered(MessageNotFoundError, 4),
            {"event": "final", "id": "300", "outcome": "not_found", "code": 4},
        ),
        (
            _answered(InvalidRequestError, 3),
            {"event": "final", "id": "300", "outcome": "failed", "code": 3},
        ),
        (
            _error(APIConnectionError("reset", message_id="300")),
            {"event": "final", "id": "300", "outcome": "failed"},
        ),
    ],
)
def test_a_final_line_names_the_id_its_count_and_its_code(
    outcome: CancelOutcome, record: dict[str, Any]
) -> None:
    written = final_record(outcome)

    assert written == record
    assert [type(value) for value in written.values()] == [type(v) for v in record.values()]


@pytest.mark.parametrize(
    ("record", "line"),
    [
        ({"event": "start", "id": "300"}, b'{"event": "start", "id": "300"}\n'),
        ({"event": "start", "id": "café"}, '{"event": "start", "id": "café"}\n'.encode()),
        ({"event": "journal", "version": 1}, b'{"event": "journal", "version": 1}\n'),
    ],
)
def test_a_record_is_one_line_of_json_in_utf8(record: dict[str, Any], line: bytes) -> None:
    assert encode_record(record) == line


def test_an_id_utf8_cannot_hold_cannot_be_written() -> None:
    with pytest.raises(UnicodeEncodeError):
        encode_record({"event": "start", "id": "bad\udcff"})


@pytest.mark.parametrize(
    ("line", "record"),
    [
        (b'{"event": "start", "id": "300"}', {"event": "start", "id": "300"}),
        (
            b'{"event": "final", "id": "300", "outcome": "too_late", "code": 6}',
            {"event": "final", "id": "300", "outcome": "too_late", "code": 6},
        ),
        (
            b'{"event": "final", "id": "300", "outcome": "cancelled"}',
            {"event": "final", "id": "300", "outcome": "cancelled"},
        ),
        (b'{"event": "journal", "version": 1}', {"event": "journal", "version": 1}),
        (b'{"event": "journal", "version": 2}', {"event": "journal", "version": 2}),
        ('{"event": "start", "id": "café"}'.encode(), {"event": "start", "id": "café"}),
        # Not records of this version: skipped.
        (b"", None),
        (b'{"event": "start", "id": "30', None),  # a line cut short
        (b"\xff\xfe", None),
        (b"[1, 2]", None),
        (b'"start"', None),
        (b"null", None),
        (b'{"event": "journal"}', None),
        (b'{"event": "journal", "version": "1"}', None),
        (b'{"event": "start"}', None),
        (b'{"event": "start", "id": 300}', None),
        (b'{"event": "final", "id": "300"}', None),
        (b'{"event": "final", "id": "300", "outcome": "done"}', None),
        (b'{"event": "final", "id": "300", "outcome": "lost"}', None),
        (b'{"event": "final", "id": "300", "outcome": 1}', None),
        (b'{"event": "final", "id": "300", "outcome": ["cancelled"]}', None),
        (b'{"event": "stop", "id": "300", "outcome": "cancelled"}', None),
        (b'{"id": "300", "outcome": "cancelled"}', None),
    ],
)
def test_a_line_is_read_as_its_record_or_skipped(
    line: bytes, record: dict[str, Any] | None
) -> None:
    assert parse_record(line) == record


HEADER = b'{"event": "journal", "version": 1, "target": {"base_url": "https://a.example", "key": null, "sandbox": true}}'  # noqa: E501
UNBOUND_HEADER = b'{"event": "journal", "version": 1}'


def _start(message_id: str) -> bytes:
    return b'{"event": "start", "id": "%s"}' % message_id.encode()


def _final(message_id: str, outcome: str) -> bytes:
    return b'{"event": "final", "id": "%s", "outcome": "%s"}' % (
        message_id.encode(),
        outcome.encode(),
    )


# lines -> (kind, target, final, started before, previous, ignored)
STATES = [
    ([], ("empty", None, {}, set(), BatchProgress(), 0)),
    ([b"id,send_at"], ("foreign", None, {}, set(), BatchProgress(), 0)),
    # Not a journal: nothing after the first line is read.
    ([b"not json", _final("1", "cancelled")], ("foreign", None, {}, set(), BatchProgress(), 0)),
    (
        [HEADER],
        ("journal", JournalTarget("https://a.example", None, True), {}, set(), BatchProgress(), 0),
    ),
    ([UNBOUND_HEADER], ("journal", None, {}, set(), BatchProgress(), 0)),
    (
        [HEADER, _start("1"), _final("1", "cancelled"), _start("2")],
        (
            "journal",
            JournalTarget("https://a.example", None, True),
            {"1": "cancelled"},
            {"1", "2"},
            BatchProgress(done=1, cancelled=1),
            0,
        ),
    ),
    # Records with no header: an older version's journal, read all the same.
    (
        [_start("1"), _final("1", "too_late"), _final("2", "not_found")],
        (
            "unbound",
            None,
            {"1": "too_late", "2": "not_found"},
            {"1"},
            BatchProgress(done=2, too_late=1, not_found=1),
            0,
        ),
    ),
    (
        [_final("1", "failed")],
        ("unbound", None, {"1": "failed"}, set(), BatchProgress(done=1, failed=1), 0),
    ),
    # The first final line of an id wins; a later one is not counted again.
    (
        [
            UNBOUND_HEADER,
            _final("1", "already_sent"),
            _final("1", "cancelled"),
            _final("2", "already_sent"),
            _final("3", "already_cancelled"),
        ],
        (
            "journal",
            None,
            {"1": "already_sent", "2": "already_sent", "3": "already_cancelled"},
            set(),
            BatchProgress(done=3, already_sent=2, already_cancelled=1),
            0,
        ),
    ),
    # A second header, a broken line and an unknown count are each ignored and counted.
    (
        [HEADER, b"{oops", UNBOUND_HEADER, _final("1", "lost"), _final("2", "cancelled")],
        (
            "journal",
            JournalTarget("https://a.example", None, True),
            {"2": "cancelled"},
            set(),
            BatchProgress(done=1, cancelled=1),
            3,
        ),
    ),
]


@pytest.mark.parametrize(("lines", "expected"), STATES)
def test_a_journals_lines_are_read_into_exactly_this_state(
    lines: list[bytes],
    expected: tuple[str, JournalTarget | None, dict[str, str], set[str], BatchProgress, int],
) -> None:
    state = JournalState.read(lines)

    assert (
        state.kind,
        state.target,
        state.final,
        state.started_before,
        state.previous,
        state.ignored,
    ) == expected


def test_a_fresh_state_is_empty() -> None:
    state = JournalState()

    assert (state.kind, state.target, state.final, state.started_before) == (
        "empty",
        None,
        {},
        set(),
    )
    assert (state.previous, state.ignored) == (BatchProgress(), 0)


def test_code_5_for_an_id_an_earlier_run_started_is_reported_as_that_runs_cancel() -> None:
    state = JournalState.read([UNBOUND_HEADER, _start("300")])
    error = AlreadyCancelledError("déjà annulé", code=5, message_id="300", http_status=200)

    settled = state.settled(CancelOutcome("300", error=error))

    assert settled == CancelOutcome(
        "300",
        result=CancelResult(
            success=True, code=CancelCode.ALREADY_CANCELLED, message="déjà annulé", message_id="300"
        ),
    )
    assert settled.result is not None
    assert settled.result.code is CancelCode.ALREADY_CANCELLED


@pytest.mark.parametrize(
    "outcome",
    [
        # An id no earlier run started: the code 5 is someone else's cancel.
        CancelOutcome("301", error=AlreadyCancelledError("m", code=5, message_id="301")),
        _result(),
        _answered(CancellationTooLateError, 6),
        _answered(APIError, 5),  # code 5 in no AlreadyCancelledError: left as it is
        _error(APIConnectionError("reset", message_id="300", request_sent=True)),
    ],
)
def test_any_other_outcome_is_reported_as_it_came(outcome: CancelOutcome) -> None:
    state = JournalState.read([UNBOUND_HEADER, _start("300")])

    assert state.settled(outcome) is outcome
