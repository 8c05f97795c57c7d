"""Injected faults drive the real SDK's retry paths, async and sync."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from mailpartner_async import (
    APIConnectionError,
    APITimeoutError,
    CancelCode,
    RateLimitError,
    UnexpectedResponseError,
)
from mailpartner_async.testing import FakeMailPartner, FaultKind

ENDPOINT = "/v1/message-cancel"


@pytest.mark.anyio
async def test_two_503_then_success_takes_three_attempts(fake: FakeMailPartner) -> None:
    message_id = fake.schedule(timedelta(hours=1))
    fake.fail_next(2, "http_503")
    async with fake.async_client() as client:
        result = await client.cancel(message_id)
    assert (result.code, result.attempts) == (CancelCode.CANCELLED, 3)
    assert [(r.status, r.code, r.fault) for r in fake.requests] == [
        (503, None, "http_503"),
        (503, None, "http_503"),
        (200, 200, None),
    ]


@pytest.mark.anyio
async def test_connect_error_never_reached_the_fake_so_retry_cancels(
    fake: FakeMailPartner,
) -> None:
    message_id = fake.schedule(timedelta(hours=1))
    fake.fail_next(1, "connect_error")
    async with fake.async_client() as client:
        result = await client.cancel(message_id)
    # Code 200, not 5: the first attempt did nothing.
    assert (result.code, result.attempts) == (CancelCode.CANCELLED, 2)
    assert [(r.status, r.code, r.fault) for r in fake.requests] == [
        (None, None, "connect_error"),
        (200, 200, None),
    ]


@pytest.mark.anyio
async def test_timeout_cancels_then_loses_the_answer_so_retry_reports_ours(
    fake: FakeMailPartner,
) -> None:
    message_id = fake.schedule(timedelta(hours=1))
    fake.fail_next(1, "timeout")
    async with fake.async_client() as client:
        result = await client.cancel(message_id)
    assert result.success is True
    assert (result.code, result.attempts) == (CancelCode.ALREADY_CANCELLED, 2)
    assert fake.status(message_id) == "cancelled"
    assert [(r.status, r.code, r.fault) for r in fake.requests] == [
        (None, 200, "timeout"),
        (400, 5, None),
    ]


@pytest.mark.anyio
async def test_rate_limit_fault_is_retried_after_zero_seconds(fake: FakeMailPartner) -> None:
    message_id = fake.schedule(timedelta(hours=1))
    fake.fail_next(1, "rate_limit")
    async with fake.async_client(fast_retries=False) as client:
        started = time.perf_counter()
        result = await client.cancel(message_id)
    # The SDK's real backoff would wait >= 0.375 s; Retry-After: 0 is honoured instead.
    assert time.perf_counter() - started < 0.3
    assert (result.code, result.attempts) == (CancelCode.CANCELLED, 2)
    assert [(r.status, r.code) for r in fake.requests] == [(429, 429), (200, 200)]


@pytest.mark.anyio
async def test_rate_limit_on_every_attempt_raises_rate_limit_error(
    fake: FakeMailPartner,
) -> None:
    message_id = fake.schedule(timedelta(hours=1))
    fake.fail_next(3, "rate_limit")
    async with fake.async_client(max_retries=2) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.cancel(message_id)
    assert (caught.value.code, caught.value.http_status) == (429, 429)
    assert caught.value.retry_after == 0
    assert fake.status(message_id) == "scheduled"


@pytest.mark.anyio
async def test_503_on_every_attempt_raises_unexpected_response(fake: FakeMailPartner) -> None:
    message_id = fake.schedule(timedelta(hours=1))
    fake.fail_next(3, "http_503")
    async with fake.async_client(max_retries=2) as client:
        with pytest.raises(UnexpectedResponseError) as caught:
            await client.cancel(message_id)
    assert caught.value.http_status == 503
    assert fake.status(message_id) == "scheduled"
    assert len(fake.requests) == 3


@pytest.mark.anyio
async def test_connect_errors_on_every_attempt_raise_not_sent(fake: FakeMailPartner) -> None:
    fake.fail_next(2, "connect_error")
    async with fake.async_client(max_retries=1) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.cancel("1")
    assert not isinstance(caught.value, APITimeoutError)
    assert caught.value.request_sent is False


@pytest.mark.anyio
async def test_timeouts_on_every_attempt_raise_timeout_error_sent(
    fake: FakeMailPartner,
) -> None:
    fake.fail_next(1, "timeout")
    async with fake.async_client(max_retries=0) as client:
        with pytest.raises(APITimeoutError) as caught:
            await client.cancel("1")
    assert caught.value.request_sent is True


@pytest.mark.anyio
async def test_faults_queue_in_order_and_then_stop(fake: FakeMailPartner) -> None:
    message_id = fake.schedule(timedelta(hours=1))
    fake.fail_next(1, "connect_error")
    fake.fail_next(2, "http_503")
    fake.fail_next(0, "timeout")
    async with fake.async_client(max_retries=5) as client:
        result = await client.cancel(message_id)
    assert result.attempts == 4
    assert [r.fault for r in fake.requests] == ["connect_error", "http_503", "http_503", None]


def test_faults_apply_to_any_path(fake: FakeMailPartner) -> None:
    fake.fail_next(1, "http_503")
    assert fake.handle("GET", "/elsewhere", []).status == 503
    assert fake.handle("GET", "/elsewhere", []).status == 404


@pytest.mark.parametrize("kind", ["boom", "HTTP_503", ""])
def test_fail_next_refuses_unknown_kinds(fake: FakeMailPartner, kind: str) -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        fake.fail_next(1, kind)  # type: ignore[arg-type]


@pytest.mark.parametrize("count", [-1, 1.0, True])
def test_fail_next_refuses_bad_counts(fake: FakeMailPartner, count: object) -> None:
    with pytest.raises(ValueError, match="count"):
        fake.fail_next(count, "timeout")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_fast_retries_make_backoff_take_milliseconds(fake: FakeMailPartner) -> None:
    fake.fail_next(2, "connect_error")
    async with fake.async_client() as client:
        started = time.perf_counter()
        await client.cancel(fake.schedule(timedelta(hours=1)))
    # The SDK's own policy sleeps >= 0.375 + 0.75 s for two retries.
    assert time.perf_counter() - started < 0.3


# --- the sync client ------------------------------------------------------------


def test_sync_client_retries_503_then_succeeds(fake: FakeMailPartner) -> None:
    message_id = fake.schedule(timedelta(hours=1))
    fake.fail_next(2, "http_503")
    with fake.client() as client:
        result = client.cancel(message_id)
    assert (result.code, result.attempts) == (CancelCode.CANCELLED, 3)


def test_sync_client_timeout_then_retry_reports_ours(fake: FakeMailPartner) -> None:
    message_id = fake.schedule(timedelta(hours=1))
    fake.fail_next(1, "timeout")
    with fake.client() as client:
        result = client.cancel(message_id)
    assert (result.code, result.attempts) == (CancelCode.ALREADY_CANCELLED, 2)


def test_sync_client_connect_error_then_retry_cancels(fake: FakeMailPartner) -> None:
    message_id = fake.schedule(timedelta(hours=1))
    fake.fail_next(1, "connect_error")
    with fake.client() as client:
        result = client.cancel(message_id)
    assert (result.code, result.attempts) == (CancelCode.CANCELLED, 2)


@pytest.mark.parametrize("kind", ["connect_error", "timeout"])
def test_faults_reach_a_sync_client_on_httpx2_as_its_own_exceptions(
    fake: FakeMailPartner, kind: FaultKind
) -> None:
    message_id = fake.schedule(timedelta(hours=1))
    fake.fail_next(1, kind)
    with fake.client(transport="httpx2") as client:
        result = client.cancel(message_id)
    # A connect error never reached the fake: the retry cancels. A time-out did the
    # work and lost the answer: the retry's code 5 is reported as ours.
    expected = CancelCode.CANCELLED if kind == "connect_error" else CancelCode.ALREADY_CANCELLED
    assert (result.code, result.attempts) == (expected, 2)


@pytest.mark.anyio
async def test_an_async_client_on_httpx2_gets_the_fakes_faults(fake: FakeMailPartner) -> None:
    message_id = fake.schedule(timedelta(hours=1))
    fake.fail_next(1, "timeout")
    async with fake.async_client(transport="httpx2") as client:
        result = await client.cancel(message_id)
    assert (result.code, result.attempts) == (CancelCode.ALREADY_CANCELLED, 2)
