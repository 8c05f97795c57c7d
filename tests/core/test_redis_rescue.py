"""The fleet rescue's sans-I/O side: campaign keys and settings, the checks of every
script reply (table-driven: what a broken Redis might answer), and the ledger's
encoding of outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailpartner_async import (
    AlreadyCancelledError,
    APIConnectionError,
    APITimeoutError,
    BatchProgress,
    CancelCode,
    CancelOutcome,
    CancelResult,
    ConfigurationError,
    InvalidRequestError,
    MailPartnerError,
    MessageNotFoundError,
    RateLimitError,
    ScheduledMessage,
    UnexpectedResponseError,
)
from mailpartner_async._core.redis_plan import RedisReplyError
from mailpartner_async._core.redis_rescue import (
    Leased,
    check_lease,
    check_ttl,
    read_flags,
    read_lease,
    read_recorded,
    read_status,
    rescue_keys,
)
from mailpartner_async._core.rescue import too_late_error
from mailpartner_async._core.rescue_ledger import (
    NO_SEND,
    decode_outcome,
    encode_outcome,
    queue_entry,
    scheduled,
    settled_on_release,
)

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
NOW_MS = 1_893_499_200_000


def test_every_key_of_a_campaign_carries_its_one_hash_tag() -> None:
    keys = rescue_keys("spring promo")
    assert keys.tag == "{mailpartner-rescue:spring promo}"
    assert [key.removeprefix(keys.tag + ":") for key in keys.all] == [
        "queue",
        "sends",
        "leases",
        "tokens",
        "leased",
        "ledger",
        "counts",
        "recent",
        "workers",
    ]


def test_no_two_campaigns_share_a_key_even_with_braces_in_their_names() -> None:
    names = ["a", "a}:queue", "a}", "{a", "a}:sends}:queue"]
    keys = [key for name in names for key in rescue_keys(name).all]
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize(
    ("campaign", "message"),
    [
        ("", "non-empty str"),
        (None, "non-empty str"),
        (7, "non-empty str"),
        ("x" * 201, "at most 200"),
        ("a\nb", "control characters"),
        ("a\x00", "control characters"),
    ],
)
def test_a_campaign_name_is_checked(campaign: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        rescue_keys(campaign)


def test_a_campaign_name_of_200_characters_is_fine() -> None:
    assert len(rescue_keys("x" * 200).all) == 9


@pytest.mark.parametrize("lease", [0, -1, float("inf"), float("nan"), True, "30", None])
def test_a_lease_is_a_positive_finite_number_of_seconds(lease: object) -> None:
    with pytest.raises(ConfigurationError, match="lease must be"):
        check_lease(lease)


@pytest.mark.parametrize("lease", [0.001, 0.5, 0.999])
def test_a_lease_under_a_second_is_refused_with_the_reason(lease: float) -> None:
    with pytest.raises(ConfigurationError, match=r"lease must be at least 1 s, got .*lapse"):
        check_lease(lease)


@pytest.mark.parametrize("ttl", [0, -5, float("inf"), False, "60"])
def test_a_ttl_is_none_or_a_positive_finite_number_of_seconds(ttl: object) -> None:
    with pytest.raises(ConfigurationError, match="ttl must be"):
        check_ttl(ttl)


def test_good_lease_and_ttl_come_back_as_floats() -> None:
    assert (check_lease(1), check_lease(2.5), check_ttl(None), check_ttl(3600)) == (
        1.0,
        2.5,
        None,
        3600.0,
    )


GOOD_LEASE = [NOW_MS, 1, 3, 2, 9, b"300", 1, b"123 2030-01-01T12:10:00+00:00", b"p", 2, b"-7 "]


def test_a_lease_reply_is_read_in_order() -> None:
    reply = read_lease(GOOD_LEASE, 2)
    assert (reply.now_ms, reply.late, reply.queued, reply.leased, reply.submitted) == (
        NOW_MS,
        1,
        3,
        2,
        9,
    )
    assert reply.ids == (
        Leased("300", 1, "123 2030-01-01T12:10:00+00:00"),
        Leased("p", 2, "-7 "),
    )


BROKEN_LEASES = {
    "not a list": b"ok",
    "too short": [NOW_MS, 0, 0, 0],
    "a partial id": [NOW_MS, 0, 0, 1, 1, b"300", 1],
    "more ids than asked": [*GOOD_LEASE, b"q", 1, b"-7 "],
    "a text count": [NOW_MS, b"0", 0, 0, 0],
    "a negative count": [NOW_MS, -1, 0, 0, 0],
    "a zero time": [0, 0, 0, 0, 0],
    "a double": [NOW_MS, 0.5, 0, 0, 0],
    "a boolean": [NOW_MS, True, 0, 0, 0],
    "an id that is a number": [NOW_MS, 0, 0, 1, 1, 300, 1, b"-7 "],
    "leased zero times": [NOW_MS, 0, 0, 1, 1, b"300", 0, b"-7 "],
    "an id not in UTF-8": [NOW_MS, 0, 0, 1, 1, b"\xff", 1, b"-7 "],
    "a nested list": [[NOW_MS], 0, 0, 0, 0],
    "fewer leased than handed out": [NOW_MS, 0, 0, 0, 1, b"300", 1, b"-7 "],
}


@pytest.mark.parametrize("case", list(BROKEN_LEASES))
def test_a_lease_reply_that_the_script_never_gives_is_a_reply_error(case: str) -> None:
    with pytest.raises(RedisReplyError):
        read_lease(BROKEN_LEASES[case], 2)


def test_flags_read_as_booleans_in_order() -> None:
    assert read_flags([1, 0, 1], 3) == (True, False, True)
    assert read_flags([], 0) == ()


def test_record_flags_tell_recorded_here_from_recorded_the_same_by_another() -> None:
    assert read_recorded([1, 2, 0], 3) == (1, 2, 0)
    for reply in ([3], [-1], [b"2"], [True], [2.0]):
        with pytest.raises(RedisReplyError, match="a flag other than 0 or 1 or 2"):
            read_recorded(reply, 1)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [([1], 2), ([1, 0], 1), ([2], 1), ([b"1"], 1), ([True], 1), (1, 1), ([1.0], 1), ([-1], 1)],
)
def test_flags_other_than_as_many_zeros_and_ones_as_asked_are_a_reply_error(
    reply: object, expected: int
) -> None:
    with pytest.raises(RedisReplyError):
        read_flags(reply, expected)


GOOD_STATUS = [
    NOW_MS,
    10,
    4,
    2,
    3,
    [b"done", b"4", b"cancelled", b"2", b"too_late", b"1", b"failed", b"1"],
    [b"7", b"8"],
    [b"w-1"],
]


def test_a_status_reply_is_read_into_a_rescue_status() -> None:
    status = read_status(GOOD_STATUS, "promo")
    assert status.final == BatchProgress(done=4, cancelled=2, too_late=1, failed=1)
    assert (status.submitted, status.left, status.in_flight) == (10, 6, 2)
    assert (status.in_flight_ids, status.workers) == (("7", "8"), ("w-1",))
    assert (status.rate_per_minute, status.now, status.campaign) == (3.0, NOW, "promo")
    assert status.eta == timedelta(minutes=2)


def test_a_status_without_any_rate_has_no_eta() -> None:
    status = read_status([NOW_MS, 0, 0, 0, 0, [], [], []], "promo")
    assert (status.eta, status.left, status.final) == (None, 0, BatchProgress())


BROKEN_STATUSES = {
    "seven items": GOOD_STATUS[:7],
    "counts of odd length": [*GOOD_STATUS[:5], [b"done"], [], []],
    "a count that is not a number": [*GOOD_STATUS[:5], [b"done", b"x"], [], []],
    "a negative count": [*GOOD_STATUS[:5], [b"done", b"-1"], [], []],
    "no lists": [*GOOD_STATUS[:5], b"", b"", b""],
    "a text submitted": [NOW_MS, b"10", *GOOD_STATUS[2:]],
    "a map": {b"now": NOW_MS},
}


@pytest.mark.parametrize("case", list(BROKEN_STATUSES))
def test_a_status_reply_that_the_script_never_gives_is_a_reply_error(case: str) -> None:
    with pytest.raises(RedisReplyError):
        read_status(BROKEN_STATUSES[case], "promo")


def test_a_queue_entry_holds_the_cut_off_in_ms_and_the_send_time() -> None:
    entry = queue_entry(ScheduledMessage(300, NOW + timedelta(minutes=10)))
    assert (entry.message_id, entry.score) == ("300", NOW_MS + 5 * 60_000)
    assert entry.sends == f"{NOW_MS + 300_000} 2030-01-01T12:10:00+00:00"
    assert queue_entry(" 42 ") == type(entry)("42", NO_SEND, f"{NO_SEND} ")


@pytest.mark.parametrize("item", ["", "  ", None, 1.5, True, b"1"])
def test_a_queue_entry_refuses_what_the_client_refuses(item: object) -> None:
    with pytest.raises(InvalidRequestError):
        queue_entry(item)


def test_a_leased_id_becomes_the_item_it_was_submitted_as() -> None:
    message = ScheduledMessage("300", NOW + timedelta(minutes=10))
    assert scheduled("300", queue_entry(message).sends) == message
    assert scheduled("p", queue_entry("p").sends) == "p"


@given(st.text())
def test_a_sends_value_of_any_text_gives_the_id_or_an_aware_scheduled_message(
    sends: str,
) -> None:
    item = scheduled("p", sends)
    assert item == "p" or (
        isinstance(item, ScheduledMessage) and item.send_at.utcoffset() is not None
    )


@pytest.mark.parametrize(
    "sends", ["", "x", "123", "123 ", "x 2030", "1 2030-01-01T12:00:00", "1 tomorrow", "1 \x00"]
)
def test_a_sends_value_without_a_readable_aware_send_time_gives_the_plain_id(sends: str) -> None:
    assert scheduled("p", sends) == "p"


def _result(code: CancelCode, attempts: int = 1) -> CancelResult:
    return CancelResult(
        success=True, code=code, message="done", message_id="300", attempts=attempts
    )


OUTCOMES = [
    CancelOutcome("300", result=_result(CancelCode.CANCELLED, 2)),
    CancelOutcome("300", result=_result(CancelCode.ALREADY_CANCELLED)),
    CancelOutcome("300", error=AlreadyCancelledError("already", code=5, message_id="300")),
    CancelOutcome("300", error=MessageNotFoundError("no", code=4, message_id="300")),
    CancelOutcome("300", error=RateLimitError("slow", message_id="300")),
    CancelOutcome("300", error=APITimeoutError("timed out", message_id="300")),
    CancelOutcome("300", error=APIConnectionError("refused", message_id="300")),
    CancelOutcome("300", error=UnexpectedResponseError("html", message_id="300")),
    CancelOutcome("300", error=MailPartnerError("not sent: the clock failed", message_id="300")),
    CancelOutcome("300", error=too_late_error(ScheduledMessage("300", NOW), NOW)),
]


@pytest.mark.parametrize("outcome", OUTCOMES, ids=lambda o: repr(o.result or o.error)[:40])
def test_an_outcome_reads_back_from_the_ledger_as_it_was_recorded(outcome: CancelOutcome) -> None:
    text, category = encode_outcome(outcome)
    back = decode_outcome("300", text)
    assert back.result == outcome.result
    assert type(back.error) is type(outcome.error)
    assert str(back.error) == str(outcome.error)
    assert (back.ok, back.stopped) == (outcome.ok, outcome.stopped)
    assert BatchProgress().add(back) == BatchProgress().add(outcome)
    assert getattr(BatchProgress().add(outcome), category) == 1  # the category it adds to


def test_a_too_late_entry_of_the_lease_script_reads_back_as_the_batch_words_it() -> None:
    late = NOW_MS + 60_000
    text = f'{{"late":{late},"send_at":"2030-01-01T12:03:00+00:00"}}'
    outcome = decode_outcome("7", text)
    expected = too_late_error(
        ScheduledMessage("7", NOW + timedelta(minutes=3)), NOW + timedelta(minutes=1)
    )
    assert str(outcome.error) == str(expected)
    assert "its cut-off passed 180 s ago" in str(outcome.error)


@pytest.mark.parametrize(
    "text",
    ["[]", "{}", '{"ok": true}', '{"ok": false, "message": "x"}', "not json", '{"late": "x"}'],
)
def test_a_ledger_entry_the_rescue_never_writes_raises(text: str) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        decode_outcome("1", text)


def test_an_unknown_error_class_reads_back_as_a_mail_partner_error() -> None:
    outcome = decode_outcome("1", '{"ok":false,"error":"Gone","message":"m","code":null}')
    assert type(outcome.error) is MailPartnerError


def test_code_5_on_an_id_leased_again_counts_as_cancelled_and_on_a_first_lease_does_not() -> None:
    five = CancelOutcome("300", error=AlreadyCancelledError("already", code=5, message_id="300"))
    assert settled_on_release(five, 1) is five
    again = settled_on_release(five, 2)
    assert again.result is not None
    assert (again.result.code, again.result.message, again.stopped) == (
        CancelCode.ALREADY_CANCELLED,
        "already",
        True,
    )
    assert BatchProgress().add(again).cancelled == 1
    other = CancelOutcome("300", error=MessageNotFoundError("no", code=4, message_id="300"))
    assert settled_on_release(other, 3) is other
