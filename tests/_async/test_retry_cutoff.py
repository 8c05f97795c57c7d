"""Retries within the cut-off, over real sockets and on the fake: a batch makes no retry
whose start would fall after its id's cut-off; the outcome keeps the last error.

The batch's clock is a FakeClock standing still unless a test moves it, so "the
retry would start after the cut-off" depends only on the backoff, the pacer and
the send time given, never on how fast this machine runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailpartner_async import (
    APIConnectionError,
    AsyncMailPartner,
    AttemptInfo,
    BatchError,
    RateLimitError,
    RetryPolicy,
    ScheduledMessage,
    UnexpectedResponseError,
)
from mailpartner_async._async.pacer import AsyncPacer
from mailpartner_async.testing import FakeClock, FakeMailPartner
from tests.support.pacers import LimiterWithoutHeldFor
from tests.support.server import ScriptedServer, body, drop, reply

KEY = "cutoff-key-4242"
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
# Every retry waits half a minute (no jitter): far past a cut-off 10 s away.
SLOW = RetryPolicy(initial_delay=30.0, max_delay=30.0, jitter=0.0)
FAST = RetryPolicy(initial_delay=0.01, max_delay=0.02, jitter=0.0)
DOWN = body("upstream down", status=503)


def _client(server: ScriptedServer, **options: object) -> AsyncMailPartner:
    options.setdefault("rate_limit", None)
    options.setdefault("retry_policy", FAST)
    return AsyncMailPartner(KEY, base_url=server.base_url, **options)  # type: ignore[arg-type]


def _cut_off_in(seconds: float, message_id: str) -> ScheduledMessage:
    """A message whose cut-off (5 minutes before its send) is ``seconds`` after NOW."""
    return ScheduledMessage(message_id, NOW + timedelta(minutes=5, seconds=seconds))


@pytest.mark.anyio
async def test_a_retry_that_would_start_after_the_cutoff_is_not_made_and_the_next_id_is_sent(
    server: ScriptedServer,
) -> None:
    server.script("near", DOWN)
    attempts: list[AttemptInfo] = []
    ids = [_cut_off_in(10, "near"), _cut_off_in(600, "after")]
    async with _client(server, retry_policy=SLOW, on_attempt=attempts.append) as client:
        near, after = await client.cancel_many(ids, concurrency=1, clock=FakeClock(NOW))

    assert len(server.requests_for("near")) == 1  # the retry 30 s on was never sent
    error = near.error
    assert isinstance(error, UnexpectedResponseError)  # the real failure's class
    assert error.http_status == 503
    assert "not retried" in str(error)
    assert "cut-off" in str(error)
    assert not near.ok
    assert not near.stopped
    assert after.ok  # the worker went on at once to the id after it
    assert len(server.requests_for("after")) == 1
    # The decision came before the backoff: no retry was announced for "near".
    [near_attempt] = [a for a in attempts if a.message_id == "near"]
    assert near_attempt.will_retry is False
    assert near_attempt.delay is None


@pytest.mark.anyio
async def test_a_retry_that_fits_before_the_cutoff_is_still_made(server: ScriptedServer) -> None:
    server.script("fits", DOWN, reply(200))
    async with _client(server) as client:
        [outcome] = await client.cancel_many([_cut_off_in(10, "fits")], clock=FakeClock(NOW))

    assert outcome.result is not None
    assert outcome.result.attempts == 2
    assert len(server.requests_for("fits")) == 2


@pytest.mark.anyio
async def test_ids_without_a_send_time_are_retried_whatever_the_cutoffs_of_the_others(
    server: ScriptedServer,
) -> None:
    server.script("near", DOWN, reply(200))
    server.script("plain", DOWN, reply(200))
    retry_in_a_second = RetryPolicy(initial_delay=1.0, max_delay=1.0, jitter=0.0)
    ids: list[ScheduledMessage | str] = [_cut_off_in(0.5, "near"), "plain"]
    async with _client(server, retry_policy=retry_in_a_second) as client:
        near, plain = await client.cancel_many(ids, concurrency=2, clock=FakeClock(NOW))

    assert isinstance(near.error, UnexpectedResponseError)
    assert len(server.requests_for("near")) == 1
    assert plain.result is not None
    assert plain.result.attempts == 2
    assert len(server.requests_for("plain")) == 2


@pytest.mark.anyio
async def test_a_connection_failure_near_the_cutoff_keeps_its_error_class(
    server: ScriptedServer,
) -> None:
    server.script("near", drop())
    async with _client(server, retry_policy=SLOW) as client:
        [outcome] = await client.cancel_many([_cut_off_in(10, "near")], clock=FakeClock(NOW))

    assert len(server.requests_for("near")) == 1
    assert type(outcome.error) is APIConnectionError
    assert outcome.error.request_sent
    assert "not retried" in outcome.error.message


@pytest.mark.anyio
async def test_a_retry_after_past_the_cutoff_is_not_waited_and_the_rate_limit_error_kept(
    server: ScriptedServer,
) -> None:
    server.script("near", reply(429, status=429, headers={"Retry-After": "30"}))
    async with _client(server) as client:
        [outcome] = await client.cancel_many([_cut_off_in(10, "near")], clock=FakeClock(NOW))

    assert len(server.requests_for("near")) == 1
    assert isinstance(outcome.error, RateLimitError)
    assert outcome.error.retry_after == 30
    assert "not retried" in str(outcome.error)
    assert not outcome.stopped


@pytest.mark.anyio
async def test_a_retry_the_pacer_could_not_start_before_the_cutoff_is_not_made(
    server: ScriptedServer,
) -> None:
    # Two starts a minute: after the first attempt the pacer's next start is 30 s
    # away, though the backoff is 10 ms.
    server.script("near", DOWN)
    attempts: list[AttemptInfo] = []
    async with _client(server, rate_limit=2, on_attempt=attempts.append) as client:
        [outcome] = await client.cancel_many([_cut_off_in(10, "near")], clock=FakeClock(NOW))

    assert len(server.requests_for("near")) == 1
    assert isinstance(outcome.error, UnexpectedResponseError)
    assert "not retried" in str(outcome.error)
    [attempt] = attempts
    assert attempt.will_retry is False  # decided at once, not after the 10 ms backoff


@pytest.mark.anyio
async def test_a_cutoff_passed_during_the_backoff_stops_the_retry_before_it_starts(
    server: ScriptedServer,
) -> None:
    clock = FakeClock(NOW)

    def a_minute_passes(info: AttemptInfo) -> None:
        # Said after the first attempt, before its backoff: while this id waits, the
        # batch's clock moves past its cut-off.
        clock.advance(timedelta(minutes=1))

    server.script("near", DOWN, reply(200))
    async with _client(server, on_attempt=a_minute_passes) as client:
        [outcome] = await client.cancel_many([_cut_off_in(10, "near")], clock=clock)

    assert len(server.requests_for("near")) == 1
    assert isinstance(outcome.error, UnexpectedResponseError)
    assert "cut-off" in str(outcome.error)
    assert "passed 50.0 s ago" in str(outcome.error)


@pytest.mark.anyio
async def test_a_clock_failing_before_a_retry_stops_the_retry_and_the_batch(
    server: ScriptedServer,
) -> None:
    readings = iter([NOW, NOW])  # the batch's check of the clock, then the id's cut-off

    def clock() -> datetime:
        return next(readings)  # then StopIteration: the clock fails

    server.script("near", DOWN, reply(200))
    async with _client(server) as client:
        with pytest.raises(BatchError, match="the clock failed") as caught:
            await client.cancel_many([_cut_off_in(10, "near")], clock=clock)

    assert len(server.requests_for("near")) == 1
    [outcome] = caught.value.outcomes
    assert isinstance(outcome.error, UnexpectedResponseError)
    assert "not retried: the clock failed" in str(outcome.error)


@pytest.mark.anyio
async def test_a_plain_cancel_retries_as_before(server: ScriptedServer) -> None:
    server.script("300", DOWN, reply(200))
    async with _client(server) as client:
        result = await client.cancel("300")

    assert result.attempts == 2


@pytest.mark.anyio
async def test_on_the_fake_a_connect_error_near_the_cutoff_leaves_the_email_scheduled() -> None:
    clock = FakeClock(NOW)
    fake = FakeMailPartner(clock=clock)
    near_send = NOW + timedelta(minutes=5, seconds=10)
    near = fake.schedule(near_send)
    later_send = NOW + timedelta(hours=1)
    later = fake.schedule(later_send)
    fake.fail_next(1, "connect_error")
    ids = [ScheduledMessage(near, near_send), ScheduledMessage(later, later_send)]
    async with fake.async_client(retry_policy=SLOW) as client:
        first, second = await client.cancel_many(ids, concurrency=1, clock=clock)

    assert [r.message_id for r in fake.requests] == [near, later]  # no retry of near
    assert isinstance(first.error, APIConnectionError)
    assert "not retried" in str(first.error)
    assert fake.status(near) == "scheduled"  # it will go out: the outcome says so
    assert not first.stopped
    assert second.stopped
    assert fake.status(later) == "cancelled"


@pytest.mark.anyio
async def test_the_pacer_tells_how_long_a_start_is_held_without_taking_one() -> None:
    pacer = AsyncPacer(2)  # a start every 30 s
    assert pacer.held_for() == 0.0
    await pacer.wait()  # the first start: at once
    held = pacer.held_for()
    assert 29.0 < held <= 30.0
    assert pacer.held_for() <= held  # asking took no start
    await pacer.pause(120.0)
    assert 119.0 < pacer.held_for() <= 120.0


@pytest.mark.anyio
async def test_a_pacer_of_yours_without_held_for_is_taken_to_hold_nothing(
    server: ScriptedServer,
) -> None:
    server.script("fits", DOWN, reply(200))
    server.script("near", DOWN)
    limiter = LimiterWithoutHeldFor()
    async with _client(server, rate_limiter=limiter) as client:
        (fits,) = await client.cancel_many([_cut_off_in(600, "fits")], clock=FakeClock(NOW))
    async with _client(server, retry_policy=SLOW, rate_limiter=limiter) as client:
        (near,) = await client.cancel_many([_cut_off_in(10, "near")], clock=FakeClock(NOW))

    # No AttributeError: the retry that fits is made, through the user's pacer...
    assert fits.ok, fits
    assert len(server.requests_for("fits")) == 2
    assert limiter.made.waits == 3
    # ...and the one that does not is refused by its backoff alone.
    assert not near.ok
    assert "after the cut-off" in str(near.error)
    assert len(server.requests_for("near")) == 1
