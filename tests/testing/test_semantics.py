"""The fake's answers, table-driven through its sans-I/O core and through the real SDK."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from mailpartner_async import (
    AlreadyCancelledError,
    AlreadySentError,
    AuthenticationError,
    CancelCode,
    CancellationTooLateError,
    MessageNotFoundError,
)
from mailpartner_async._core.models import PROVIDER_MESSAGES
from mailpartner_async._core.protocol import Answer, RawResponse, read_answer
from mailpartner_async.testing import CANCEL_CUTOFF, FakeClock, FakeMailPartner

from .conftest import NOW

ENDPOINT = "/v1/message-cancel"
KEY = "test-key"


@pytest.fixture
def stocked(fake: FakeMailPartner) -> FakeMailPartner:
    """A fake holding one message in each state the table needs."""
    fake.schedule(timedelta(hours=1), "far")
    fake.schedule(CANCEL_CUTOFF, "edge")
    fake.schedule(CANCEL_CUTOFF - timedelta(seconds=1), "soon")
    fake.schedule(timedelta(0), "due")
    fake.schedule(timedelta(minutes=-1), "past")
    fake.schedule(timedelta(hours=1), "done")
    fake.handle("GET", ENDPOINT, [("apiKey", KEY), ("messageId", "done")])
    return fake


@pytest.mark.parametrize(
    ("params", "code", "http_status", "status_after"),
    [
        pytest.param({"messageId": "far"}, 1, 400, "scheduled", id="no-key"),
        pytest.param({"apiKey": "  ", "messageId": "far"}, 1, 400, "scheduled", id="blank-key"),
        pytest.param({"apiKey": "wrong", "messageId": "far"}, 10, 400, "scheduled", id="bad-key"),
        pytest.param({"apiKey": KEY}, 3, 400, None, id="no-id"),
        pytest.param({"apiKey": KEY, "messageId": " "}, 3, 400, None, id="blank-id"),
        pytest.param({"apiKey": KEY, "messageId": "nope"}, 4, 400, None, id="unknown"),
        pytest.param({"apiKey": KEY, "messageId": "done"}, 5, 400, "cancelled", id="cancelled"),
        pytest.param({"apiKey": KEY, "messageId": "soon"}, 6, 400, "scheduled", id="4m59s"),
        pytest.param({"apiKey": KEY, "messageId": "due"}, 7, 400, "sent", id="at-send-time"),
        pytest.param({"apiKey": KEY, "messageId": "past"}, 7, 400, "sent", id="past"),
        pytest.param({"apiKey": KEY, "messageId": "edge"}, 200, 200, "cancelled", id="5m00s"),
        pytest.param({"apiKey": KEY, "messageId": "far"}, 200, 200, "cancelled", id="1h"),
    ],
)
def test_handle_answers_the_providers_code(
    stocked: FakeMailPartner,
    params: dict[str, str],
    code: int,
    http_status: int,
    status_after: str | None,
) -> None:
    answer = stocked.handle("GET", ENDPOINT, params.items())

    assert answer.status == http_status
    assert answer.code == code
    assert answer.failure is None
    assert dict(answer.headers)["content-type"] == "application/json"
    assert json.loads(answer.body) == {
        "success": code == 200,
        "code": code,
        "message": PROVIDER_MESSAGES[code],
    }
    if status_after is not None:
        assert stocked.status(params["messageId"]) == status_after


def test_json_answer_is_the_providers_exact_bytes(fake: FakeMailPartner) -> None:
    message_id = fake.schedule(timedelta(hours=1))
    answer = fake.handle("GET", ENDPOINT, [("apiKey", KEY), ("messageId", message_id)])
    assert (
        answer.body == b'{"success": true, "code": 200, "message": "The email has been canceled."}'
    )


def test_xml_answer_is_the_positional_form(fake: FakeMailPartner) -> None:
    answer = fake.handle("GET", ENDPOINT, [("apiKey", KEY), ("messageId", "x"), ("_format", "xml")])

    assert answer.status == 400
    assert dict(answer.headers)["content-type"].startswith("application/xml")
    assert answer.body == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b"<result><entry>false</entry><entry>4</entry>"
        b"<entry><![CDATA[Message not found]]></entry></result>\n"
    )
    raw = RawResponse(answer.status, dict(answer.headers), answer.body)
    assert read_answer(raw) == Answer(
        {"success": "false", "code": "4", "message": "Message not found"}, 4
    )


def test_format_names_other_than_xml_answer_json(fake: FakeMailPartner) -> None:
    answer = fake.handle("GET", ENDPOINT, [("apiKey", KEY), ("_format", "json")])
    assert json.loads(answer.body)["code"] == 3


def test_repeated_parameter_takes_the_last_value(fake: FakeMailPartner) -> None:
    answer = fake.handle("GET", ENDPOINT, [("apiKey", "wrong"), ("apiKey", KEY)])
    assert answer.code == 3


def test_other_path_is_404_without_control_code(fake: FakeMailPartner) -> None:
    answer = fake.handle("GET", "/v1/message-status", [("apiKey", KEY)])
    assert (answer.status, answer.code) == (404, None)
    assert json.loads(answer.body) == {"detail": "Not Found"}


def test_other_method_is_405_naming_get(fake: FakeMailPartner) -> None:
    answer = fake.handle("POST", ENDPOINT, [("apiKey", KEY)])
    assert (answer.status, answer.code) == (405, None)
    assert dict(answer.headers)["allow"] == "GET"


# --- the 5-minute rule and the send time, through the real SDK --------------------


@pytest.mark.anyio
async def test_cancel_5m01s_before_send_time_succeeds(
    fake: FakeMailPartner, clock: FakeClock
) -> None:
    message_id = fake.schedule(timedelta(minutes=10))
    clock.advance(timedelta(minutes=4, seconds=59))
    async with fake.async_client() as client:
        result = await client.cancel(message_id)
    assert (result.code, result.attempts) == (CancelCode.CANCELLED, 1)
    assert fake.status(message_id) == "cancelled"


@pytest.mark.anyio
async def test_cancel_exactly_5m00s_before_send_time_succeeds(
    fake: FakeMailPartner, clock: FakeClock
) -> None:
    message_id = fake.schedule(NOW + timedelta(minutes=10))
    clock.advance(timedelta(minutes=5))
    async with fake.async_client() as client:
        result = await client.cancel(message_id)
    assert result.code == CancelCode.CANCELLED


@pytest.mark.anyio
async def test_cancel_4m59s_before_send_time_is_too_late(
    fake: FakeMailPartner, clock: FakeClock
) -> None:
    message_id = fake.schedule(timedelta(minutes=10))
    clock.advance(timedelta(minutes=5, seconds=1))
    async with fake.async_client() as client:
        with pytest.raises(CancellationTooLateError) as caught:
            await client.cancel(message_id)
    assert caught.value.code == 6
    assert caught.value.message == PROVIDER_MESSAGES[6]
    assert fake.status(message_id) == "scheduled"


@pytest.mark.anyio
async def test_cancel_after_send_time_is_already_sent(
    fake: FakeMailPartner, clock: FakeClock
) -> None:
    message_id = fake.schedule(timedelta(minutes=10))
    clock.advance(timedelta(minutes=10, seconds=1))
    async with fake.async_client() as client:
        with pytest.raises(AlreadySentError):
            await client.cancel(message_id)
    assert fake.status(message_id) == "sent"


@pytest.mark.anyio
async def test_second_cancel_is_already_cancelled(fake: FakeMailPartner) -> None:
    message_id = fake.schedule(timedelta(hours=1))
    async with fake.async_client() as client:
        await client.cancel(message_id)
        with pytest.raises(AlreadyCancelledError) as caught:
            await client.cancel(message_id)
    assert caught.value.http_status == 400


@pytest.mark.anyio
async def test_cancelled_message_stays_cancelled_after_its_send_time(
    fake: FakeMailPartner, clock: FakeClock
) -> None:
    message_id = fake.schedule(timedelta(hours=1))
    async with fake.async_client() as client:
        await client.cancel(message_id)
        clock.advance(timedelta(hours=2))
        with pytest.raises(AlreadyCancelledError):
            await client.cancel(message_id)
    assert fake.status(message_id) == "cancelled"


@pytest.mark.anyio
async def test_wrong_key_is_authentication_error_code_10(fake: FakeMailPartner) -> None:
    message_id = fake.schedule(timedelta(hours=1))
    async with fake.async_client(api_key="not-the-key") as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.cancel(message_id)
    assert caught.value.code == CancelCode.INVALID_API_KEY
    assert fake.status(message_id) == "scheduled"


@pytest.mark.anyio
async def test_xml_answers_are_read_back_by_the_sdk(fake: FakeMailPartner) -> None:
    message_id = fake.schedule(timedelta(hours=1))
    async with fake.async_client(response_format="xml") as client:
        result = await client.cancel(message_id)
        with pytest.raises(MessageNotFoundError) as caught:
            await client.cancel("missing")
    assert (result.code, result.message) == (CancelCode.CANCELLED, PROVIDER_MESSAGES[200])
    assert caught.value.message == PROVIDER_MESSAGES[4]
    assert [r.params.get("_format") for r in fake.requests] == ["xml", "xml"]


@pytest.mark.anyio
async def test_id_with_query_characters_reaches_the_fake_as_one_id(
    fake: FakeMailPartner,
) -> None:
    message_id = fake.schedule(timedelta(hours=1), "300&apiKey=x")
    async with fake.async_client() as client:
        result = await client.cancel(message_id)
    assert result.message_id == "300&apiKey=x"
    assert fake.requests[0].api_key == KEY


# --- schedule_unknown ------------------------------------------------------------


@pytest.mark.anyio
async def test_schedule_unknown_takes_new_ids_as_scheduled_an_hour_ahead(
    clock: FakeClock,
) -> None:
    fake = FakeMailPartner(clock=clock, schedule_unknown=True)
    async with fake.async_client() as client:
        first = await client.cancel(12345)
        with pytest.raises(AlreadyCancelledError):
            await client.cancel(12345)
    assert first.code == CancelCode.CANCELLED
    assert fake.status(12345) == "cancelled"


def test_schedule_unknown_still_checks_the_key(clock: FakeClock) -> None:
    fake = FakeMailPartner(clock=clock, schedule_unknown=True)
    answer = fake.handle("GET", ENDPOINT, [("apiKey", "wrong"), ("messageId", "a")])
    assert answer.code == 10
    with pytest.raises(KeyError):
        fake.status("a")


def test_schedule_unknown_off_answers_4_and_registers_nothing(fake: FakeMailPartner) -> None:
    answer = fake.handle("GET", ENDPOINT, [("apiKey", KEY), ("messageId", "a")])
    assert answer.code == 4
    with pytest.raises(KeyError, match="'a'"):
        fake.status("a")
