"""AsyncRedisRescue and RedisRescue on a real redis-server, against the in-process fake:
submitting, working a campaign to its end, and reading it back (status, outcomes, plan).

Leases, stale tokens and re-leases: test_rescue_leases.py; outages and broken replies:
test_rescue_outages.py; keys, TTL and deletion: test_rescue_keys.py.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from mailpartner_async import (
    ConfigurationError,
    InvalidRequestError,
    ScheduledMessage,
)
from mailpartner_async.redis import AsyncRedisRescue, RedisRescue, RescueStatus
from mailpartner_async.testing import FakeClock, FakeMailPartner
from tests.support.redis_server import RedisServer

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def campaign_name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def campaign(redis_server: RedisServer) -> Iterator[str]:
    name = campaign_name()
    yield name
    with RedisRescue(redis_server.url, campaign=name) as rescue:
        rescue.delete()


def scheduled(
    fake: FakeMailPartner, minutes: Sequence[float], now: datetime = NOW
) -> list[ScheduledMessage]:
    """A message on the fake for each send time, ``minutes`` after ``now``."""
    sends = [now + timedelta(minutes=m) for m in minutes]
    return [ScheduledMessage(fake.schedule(send_at), send_at) for send_at in sends]


@pytest.mark.anyio
async def test_submitting_the_same_ids_again_queues_none_of_them_twice(
    redis_server: RedisServer, campaign: str
) -> None:
    fake = FakeMailPartner(clock=FakeClock(NOW))
    messages = scheduled(fake, [10, 20, 30])

    async def more() -> AsyncIterator[ScheduledMessage | str | int]:
        yield messages[0]
        yield "plain"
        yield 42

    async with AsyncRedisRescue(redis_server.url, campaign=campaign) as rescue:
        assert await rescue.submit(messages) == 3
        assert await rescue.submit(messages) == 0
        assert await rescue.submit(more()) == 2  # "plain" and 42 are new
        assert await rescue.submit(["42", " plain "]) == 0  # the same ids, as the client reads them
        status = await rescue.status()
    assert (status.submitted, status.left, status.in_flight) == (5, 5, 0)
    assert status.final.done == 0


@pytest.mark.anyio
async def test_a_bad_id_is_refused_before_its_chunk_is_written(
    redis_server: RedisServer, campaign: str
) -> None:
    async with AsyncRedisRescue(redis_server.url, campaign=campaign) as rescue:
        with pytest.raises(InvalidRequestError, match="item 2 of the submitted messages"):
            await rescue.submit(["1", "2", "   ", "3"])
        with pytest.raises(ConfigurationError, match="iterable"):
            await rescue.submit("123")
        assert (await rescue.status()).submitted == 0


@pytest.mark.anyio
async def test_work_gives_every_id_one_outcome_and_sends_none_twice(
    redis_server: RedisServer, campaign: str
) -> None:
    clock = FakeClock(NOW)
    fake = FakeMailPartner(clock=clock)
    messages = scheduled(fake, [10 + n for n in range(40)])
    async with AsyncRedisRescue(redis_server.url, campaign=campaign, clock=clock) as rescue:
        await rescue.submit([*messages, "unknown-id"])
        async with fake.async_client(max_concurrency=4) as client:
            with anyio.fail_after(60):
                progress = await rescue.work(client)
        status = await rescue.status()
        outcomes = [outcome async for outcome in rescue.outcomes()]
    sent = [str(r.message_id) for r in fake.requests]
    assert sorted(sent) == sorted([str(m.message_id) for m in messages] + ["unknown-id"])
    assert (progress.done, progress.cancelled, progress.not_found) == (41, 40, 1)
    assert (status.submitted, status.left, status.in_flight, status.final) == (41, 0, 0, progress)
    assert sorted(o.message_id for o in outcomes) == sorted(sent)
    assert all(fake.status(str(m.message_id)) == "cancelled" for m in messages)


@pytest.mark.anyio
async def test_earliest_cut_off_starts_first_and_ids_without_a_send_time_before_all(
    redis_server: RedisServer, campaign: str
) -> None:
    clock = FakeClock(NOW)
    fake = FakeMailPartner(clock=clock, schedule_unknown=True)
    minutes = [50, 10, 40, 20, 30, 60, 15, 45]
    messages = scheduled(fake, minutes)
    async with AsyncRedisRescue(redis_server.url, campaign=campaign, clock=clock) as rescue:
        await rescue.submit([*messages, "first"])
        # One request at a time: the order of the requests is the order leased.
        async with fake.async_client(max_concurrency=1) as client:
            await rescue.work(client)
    by_time = [str(m.message_id) for _, m in sorted(zip(minutes, messages, strict=True))]
    assert [str(r.message_id) for r in fake.requests] == ["first", *by_time]


@pytest.mark.anyio
async def test_an_id_inside_its_last_five_minutes_gets_no_request_and_a_too_late_outcome(
    redis_server: RedisServer, campaign: str
) -> None:
    clock = FakeClock(NOW)
    fake = FakeMailPartner(clock=clock)
    late, fine = scheduled(fake, [4, 6])
    async with AsyncRedisRescue(redis_server.url, campaign=campaign, clock=clock) as rescue:
        await rescue.submit([late, fine])
        async with fake.async_client() as client:
            progress = await rescue.work(client)
        outcomes = {o.message_id: o async for o in rescue.outcomes()}
    assert [str(r.message_id) for r in fake.requests] == [fine.message_id]
    assert (progress.too_late, progress.cancelled) == (0, 1)  # the lease script recorded it
    error = outcomes[str(late.message_id)].error
    assert error is not None
    assert "not attempted" in error.message
    assert type(error).__name__ == "CancellationTooLateError"
    assert "cut-off passed 60 s ago" in error.message


def test_the_sync_twin_with_several_threads_on_one_campaign_gives_one_outcome_per_id(
    redis_server: RedisServer, campaign: str
) -> None:
    fake = FakeMailPartner()
    messages = scheduled(fake, [10 + n / 10 for n in range(150)], datetime.now(UTC))
    with RedisRescue(redis_server.url, campaign=campaign) as rescue:
        assert rescue.submit(iter(messages)) == 150
    progresses = []

    def worker(n: int) -> None:
        with (
            RedisRescue(redis_server.url, campaign=campaign, worker=f"thread-{n}") as mine,
            fake.client(max_concurrency=3) as client,
        ):
            progresses.append(mine.work(client))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    with RedisRescue(redis_server.url, campaign=campaign) as rescue:
        status = rescue.status()
        outcomes = list(rescue.outcomes())
    sent = [str(r.message_id) for r in fake.requests]
    assert sorted(sent) == sorted(str(m.message_id) for m in messages)  # each once
    assert sum(p.done for p in progresses) == 150 == status.final.cancelled
    assert len(outcomes) == 150
    assert all(o.stopped for o in outcomes)
    assert set(status.workers) >= {"thread-0", "thread-1", "thread-2"}


@pytest.mark.anyio
async def test_status_reads_back_as_json_ready_values_with_a_rate_and_an_eta(
    redis_server: RedisServer, campaign: str
) -> None:
    clock = FakeClock(NOW)
    fake = FakeMailPartner(clock=clock)
    messages = scheduled(fake, [10, 11, 12, 13])
    async with AsyncRedisRescue(
        redis_server.url, campaign=campaign, clock=clock, worker="w-1"
    ) as rescue:
        await rescue.submit(messages[:2])
        async with fake.async_client() as client:
            await rescue.work(client)
        await rescue.submit(messages[2:])
        status = await rescue.status()
    assert isinstance(status, RescueStatus)
    assert (status.submitted, status.left, status.final.cancelled) == (4, 2, 2)
    assert status.workers == ("w-1",)
    assert status.rate_per_minute == 2.0
    assert status.eta == timedelta(minutes=1)
    data = status.as_dict()
    assert data["final"] == {
        "done": 2,
        "cancelled": 2,
        "already_cancelled": 0,
        "too_late": 0,
        "already_sent": 0,
        "not_found": 0,
        "failed": 0,
    }
    assert (data["left"], data["eta_seconds"], data["workers"]) == (2, 60.0, ["w-1"])
    assert abs(datetime.fromisoformat(str(data["now"])) - datetime.now(UTC)) < timedelta(minutes=1)


@pytest.mark.anyio
async def test_the_plan_of_what_is_left_counts_each_budget_side_by_side(
    redis_server: RedisServer, campaign: str
) -> None:
    clock = FakeClock(NOW)
    fake = FakeMailPartner(clock=clock)
    # 6 ids whose cut-offs are 45 s away, and one already lost: at 2 a minute, one
    # budget reaches 2 (starts at 0 and 30 s), two reach 4, three all 6.
    messages = scheduled(fake, [5.75] * 6 + [4])
    async with AsyncRedisRescue(redis_server.url, campaign=campaign, clock=clock) as rescue:
        await rescue.submit(messages)
        plans = [await rescue.plan(pools=n, rate_limit=2) for n in (1, 2, 3)]
    assert [p.reachable for p in plans] == [2, 4, 6]
    assert [p.pools for p in plans] == [1, 2, 3]
    assert all(p.lost == (str(messages[-1].message_id),) for p in plans)
    assert plans[0].now == NOW
