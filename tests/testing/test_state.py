"""The fake's state as tests see it: schedule, status, the clock and the request log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mailpartner_async.testing import FakeClock, FakeMailPartner, RecordedRequest

from .conftest import NOW

ENDPOINT = "/v1/message-cancel"


def test_schedule_generates_distinct_ids(fake: FakeMailPartner) -> None:
    fake.schedule(timedelta(hours=1), "2")
    ids = [fake.schedule(timedelta(hours=1)) for _ in range(3)]
    assert ids == ["1", "3", "4"]


def test_schedule_takes_int_ids_as_strings(fake: FakeMailPartner) -> None:
    assert fake.schedule(timedelta(hours=1), 300) == "300"
    assert fake.status("300") == fake.status(300) == "scheduled"


def test_schedule_accepts_an_aware_datetime_in_any_zone(
    fake: FakeMailPartner, clock: FakeClock
) -> None:
    paris = timezone(timedelta(hours=1))
    message_id = fake.schedule(datetime(2030, 1, 1, 14, 0, tzinfo=paris))  # 13:00 UTC
    clock.set(datetime(2030, 1, 1, 13, 0, tzinfo=UTC))
    assert fake.status(message_id) == "sent"


def test_schedule_refuses_a_naive_datetime(fake: FakeMailPartner) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        fake.schedule(datetime(2030, 1, 1, 12, 0))


@pytest.mark.parametrize("send_at", [3600, "2030-01-01T12:00:00Z", None])
def test_schedule_refuses_other_types(fake: FakeMailPartner, send_at: object) -> None:
    with pytest.raises(TypeError, match="aware datetime or a timedelta"):
        fake.schedule(send_at)  # type: ignore[arg-type]


def test_schedule_refuses_an_id_already_registered(fake: FakeMailPartner) -> None:
    fake.schedule(timedelta(hours=1), "300")
    with pytest.raises(ValueError, match="already registered"):
        fake.schedule(timedelta(hours=2), 300)


@pytest.mark.parametrize(("message_id", "error"), [(" ", ValueError), (True, TypeError)])
def test_schedule_refuses_bad_ids(
    fake: FakeMailPartner, message_id: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        fake.schedule(timedelta(hours=1), message_id)  # type: ignore[arg-type]


def test_status_turns_sent_when_the_clock_reaches_send_time(
    fake: FakeMailPartner, clock: FakeClock
) -> None:
    message_id = fake.schedule(timedelta(minutes=10))
    clock.advance(timedelta(minutes=10) - timedelta(microseconds=1))
    assert fake.status(message_id) == "scheduled"
    clock.advance(timedelta(microseconds=1))
    assert fake.status(message_id) == "sent"


def test_status_of_an_unknown_id_is_key_error(fake: FakeMailPartner) -> None:
    with pytest.raises(KeyError, match="'nope'"):
        fake.status("nope")


def test_clock_returning_naive_time_is_a_clear_error() -> None:
    fake = FakeMailPartner(clock=lambda: datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="clock's time must be timezone-aware"):
        fake.schedule(timedelta(hours=1))


def test_default_clock_is_utc_now() -> None:
    fake = FakeMailPartner()
    message_id = fake.schedule(datetime.now(UTC) + timedelta(seconds=1))
    assert fake.status(message_id) == "scheduled"
    past = fake.schedule(datetime.now(UTC) - timedelta(seconds=1))
    assert fake.status(past) == "sent"


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(NOW)
    assert clock() == NOW
    assert clock.advance(90) == NOW + timedelta(seconds=90)
    assert clock.advance(timedelta(minutes=-1)) == NOW + timedelta(seconds=30)
    clock.set(datetime(2031, 1, 1, tzinfo=UTC))
    assert clock() == datetime(2031, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2031, 1, 1))
    with pytest.raises(TypeError):
        clock.advance(True)


@pytest.mark.parametrize("api_key", ["", "  "])
def test_fake_refuses_a_blank_key(api_key: str) -> None:
    with pytest.raises(ValueError, match="non-blank"):
        FakeMailPartner(api_key)


@pytest.mark.parametrize("limit", [0, -1, True, 2.5])
def test_fake_refuses_a_bad_rate_limit(limit: object) -> None:
    with pytest.raises(ValueError, match="rate_limit_per_minute"):
        FakeMailPartner(rate_limit_per_minute=limit)  # type: ignore[arg-type]


# --- the request log ---------------------------------------------------------------


def test_requests_records_each_call_in_order(fake: FakeMailPartner) -> None:
    message_id = fake.schedule(timedelta(hours=1))
    fake.handle("GET", ENDPOINT, [("apiKey", "test-key"), ("messageId", message_id)])
    fake.handle("POST", "/v1/other", [("messageId", "9"), ("_format", "xml")])

    assert fake.requests == [
        RecordedRequest(
            method="GET",
            path=ENDPOINT,
            params={"apiKey": "test-key", "messageId": message_id},
            status=200,
            code=200,
        ),
        RecordedRequest(
            method="POST",
            path="/v1/other",
            params={"messageId": "9", "_format": "xml"},
            status=404,
            code=None,
        ),
    ]
    assert fake.requests[0].message_id == message_id
    assert fake.requests[1].api_key is None


def test_requests_is_a_snapshot(fake: FakeMailPartner) -> None:
    snapshot = fake.requests
    snapshot.append(RecordedRequest("GET", ENDPOINT, {}, 200, 200))
    fake.handle("GET", ENDPOINT, [])
    assert len(fake.requests) == 1
    assert fake.requests[0].code == 1


def test_recorded_params_cannot_be_changed_by_the_test_reading_them(
    fake: FakeMailPartner,
) -> None:
    fake.handle("GET", ENDPOINT, [("apiKey", "k"), ("messageId", "1")])
    [record] = fake.requests
    with pytest.raises(TypeError):
        record.params["apiKey"] = "other"  # type: ignore[index]

    assert fake.requests[0].api_key == "k"
    assert len({record, *fake.requests}) == 1


def test_recorded_request_keeps_the_key_but_never_shows_it() -> None:
    fake = FakeMailPartner("s3cr3t-key")
    fake.handle("GET", ENDPOINT, [("apiKey", "s3cr3t-key"), ("messageId", "1")])
    [record] = fake.requests

    assert record.api_key == "s3cr3t-key"
    for text in (repr(record), str(record), repr(fake.requests), repr(fake), str(fake)):
        assert "s3cr3t" not in text
    assert "'apiKey': '[REDACTED]'" in repr(record)
    assert "'messageId': '1'" in repr(record)
