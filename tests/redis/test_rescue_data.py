"""The rescue against Redis data it did not expect, on a real redis-server: a campaign
that is empty, expired or wiped mid-run ends ``work()`` with an error naming the loss
(never as a finished campaign); a sends value that is not the rescue's strands no id;
the queue read for a plan misses no id while workers pop it; and an outcome whose
retry the clock stopped is not made final."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import anyio
import pytest
import redis

from mailpartner_async import AsyncMailPartner, BatchError, ScheduledMessage
from mailpartner_async._core.redis_rescue import rescue_keys
from mailpartner_async.redis import AsyncRedisRescue, RedisRescue
from mailpartner_async.testing import FakeClock, FakeMailPartner
from tests.support.redis_server import RedisServer
from tests.support.server import ScriptedServer, reply

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def campaign(redis_server: RedisServer) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    with RedisRescue(redis_server.url, campaign=name) as rescue:
        rescue.delete()


def _keys(campaign: str) -> list[str]:
    return list(rescue_keys(campaign).all)


@pytest.mark.anyio
async def test_work_on_a_campaign_never_submitted_is_an_error_saying_to_submit_first(
    redis_server: RedisServer, campaign: str
) -> None:
    fake = FakeMailPartner()
    async with (
        AsyncRedisRescue(redis_server.url, campaign=campaign) as rescue,
        fake.async_client() as client,
    ):
        with anyio.fail_after(10), pytest.raises(BatchError) as caught:
            await rescue.work(client)
    assert f"Redis holds no ids for campaign {campaign!r}: submit them first" in str(caught.value)
    assert caught.value.progress is not None
    assert caught.value.progress.done == 0
    assert fake.requests == []


@pytest.mark.anyio
async def test_work_after_the_ttl_ran_out_says_so_instead_of_finishing(
    redis_server: RedisServer, campaign: str
) -> None:
    fake = FakeMailPartner()
    ids = [fake.schedule(timedelta(hours=1)) for _ in range(3)]
    async with (
        AsyncRedisRescue(redis_server.url, campaign=campaign, ttl=0.5) as rescue,
        fake.async_client() as client,
    ):
        assert await rescue.submit(ids) == 3
        await anyio.sleep(1.0)  # every key expires with the ttl
        with anyio.fail_after(10), pytest.raises(BatchError, match="its ttl ran out"):
            await rescue.work(client)
    assert fake.requests == []


@pytest.mark.anyio
async def test_a_campaign_wiped_mid_run_ends_work_naming_the_loss_and_a_resubmit_finishes_it(
    redis_server: RedisServer, campaign: str, server: ScriptedServer
) -> None:
    server.default = reply(delay=0.15)
    ids = [str(n) for n in range(30)]

    def wipe() -> None:
        time.sleep(0.6)
        redis.Redis.from_url(redis_server.url).flushdb()

    wiper = threading.Thread(target=wipe)
    async with (
        AsyncRedisRescue(redis_server.url, campaign=campaign, lease=3.0) as rescue,
        AsyncMailPartner("k", base_url=server.base_url, max_concurrency=3) as client,
    ):
        await rescue.submit(ids)
        wiper.start()
        try:
            with anyio.fail_after(30), pytest.raises(BatchError) as caught:
                await rescue.work(client)
        finally:
            wiper.join()
        first = [str(r.message_id) for r in server.requests]
        error = caught.value
        assert "Redis no longer holds the campaign's data: it knew 30 ids, now " in error.message
        assert "submit the campaign again" in error.message
        assert error.outcomes == []  # what it held was recorded in the new data
        assert error.progress is not None
        assert 0 < error.progress.done == len(first) < len(ids)
        kept = {o.message_id async for o in rescue.outcomes()}
        assert kept  # what came after the wipe is there
        assert kept <= set(first)
        # As the error says: submit again, work again.
        assert await rescue.submit(ids) == len(ids) - len(kept)
        with anyio.fail_after(30):
            await rescue.work(client)
        status = await rescue.status()
        ledger = [o.message_id async for o in rescue.outcomes()]
    assert (status.submitted, status.left, status.final.done) == (30, 0, 30)
    assert sorted(ledger) == sorted(ids)
    # Only the ids whose outcome the wipe took were asked twice.
    asked = [str(r.message_id) for r in server.requests]
    assert sorted(asked) == sorted(ids + [i for i in first if i not in kept])


@pytest.mark.anyio
async def test_sends_values_that_are_not_the_rescues_strand_no_id(
    redis_server: RedisServer, campaign: str
) -> None:
    clock = FakeClock(NOW)
    fake = FakeMailPartner(clock=clock)
    sends = [NOW + timedelta(minutes=10 + n) for n in range(6)]
    messages = [ScheduledMessage(fake.schedule(s), s) for s in sends]
    ids = [str(m.message_id) for m in messages]
    keys = _keys(campaign)
    direct = redis.Redis.from_url(redis_server.url)
    async with AsyncRedisRescue(
        redis_server.url, campaign=campaign, lease=1.0, clock=clock
    ) as rescue:
        await rescue.submit(messages)
        # Queued with a sends value of garbage, without one, or with an unreadable
        # send time; and one leased by a dead worker with garbage, its lease lapsed.
        direct.hset(keys[1], ids[0], "garbage")
        direct.hdel(keys[1], ids[1])
        direct.hset(keys[1], ids[2], "123 not-a-time")
        direct.zrem(keys[0], ids[3])
        direct.zadd(keys[2], {ids[3]: 1})  # a lease that ran out long ago
        direct.hset(keys[3], ids[3], "dead-token")
        direct.hset(keys[1], ids[3], "no space at all")
        async with fake.async_client() as client:
            with anyio.fail_after(30):
                progress = await rescue.work(client)
        ledger = {o.message_id: o async for o in rescue.outcomes()}
    assert sorted(ledger) == sorted(ids)
    assert all(o.ok for o in ledger.values())
    assert progress.cancelled == 6
    assert sorted(str(r.message_id) for r in fake.requests) == sorted(ids)


@pytest.mark.anyio
async def test_the_plan_counts_every_id_left_once_while_workers_pop_the_queue(
    redis_server: RedisServer, campaign: str
) -> None:
    count = 12_000  # more than two pages of the queue
    keys = _keys(campaign)
    stop = threading.Event()

    def pop() -> None:  # a fleet leasing meanwhile (atomically, as LEASE does)
        lease = redis.Redis.from_url(redis_server.url).register_script(
            "local head = redis.call('ZPOPMIN', KEYS[1], 200) "
            "for i = 1, #head, 2 do redis.call('ZADD', KEYS[2], 2^50, head[i]) end "
            "return #head / 2"
        )
        moved = 0
        while not stop.is_set() and moved < count // 2:
            moved += int(lease(keys=[keys[0], keys[2]]))

    async with AsyncRedisRescue(redis_server.url, campaign=campaign) as rescue:
        await rescue.submit(
            ScheduledMessage(str(n), NOW + timedelta(minutes=10 + n / 100)) for n in range(count)
        )
        popper = threading.Thread(target=pop)
        popper.start()
        try:
            plan = await rescue.plan(pools=2)
        finally:
            stop.set()
            popper.join()
    assert plan.total == count


class CountedClock:
    """The fake's clock for ``good`` readings, then raising."""

    def __init__(self, clock: FakeClock, good: int) -> None:
        self._clock, self._left = clock, good

    def __call__(self) -> datetime:
        self._left -= 1
        if self._left < 0:
            raise RuntimeError("clock broke")
        return self._clock()


async def _stopped_by_the_clock(url: str, name: str, good: int) -> tuple[bool, bool]:
    """One id, its first answer a 503, the clock failing after ``good`` readings; then a
    worker with a sound clock. Whether the clock stopped its retry (one request, nothing
    recorded), and whether it ended cancelled."""
    clock = FakeClock(NOW)
    fake = FakeMailPartner(clock=clock)
    send_at = NOW + timedelta(minutes=30)
    message = ScheduledMessage(fake.schedule(send_at), send_at)
    fake.fail_next(1, "http_503")
    failing = CountedClock(clock, good)
    async with AsyncRedisRescue(url, campaign=name, clock=failing, lease=1.0) as rescue:
        await rescue.submit([message])
        failure: BatchError | None = None
        async with fake.async_client() as client:
            try:
                with anyio.fail_after(30):
                    await rescue.work(client)
            except BatchError as exc:  # unless the clock had readings enough
                failure = exc
        assert failure is None or "RuntimeError: clock broke" in str(failure)
        ledger = [o async for o in rescue.outcomes()]
    # Never final as "not retried: the clock failed": a request whose retry the clock
    # stopped leaves the id for a worker to lease again.
    assert all("clock failed" not in str(o.error) for o in ledger)
    stopped = len(fake.requests) == 1 and not ledger
    async with AsyncRedisRescue(url, campaign=name, clock=clock, lease=1.0) as rescue:
        async with fake.async_client() as client:
            with anyio.fail_after(30):
                await rescue.work(client)
        status = await rescue.status()
    assert (status.left, status.final.done) == (0, 1)
    return stopped, fake.status(message.message_id) == "cancelled"


@pytest.mark.anyio
async def test_an_id_whose_retry_the_clock_stopped_is_not_final_and_is_cancelled_later(
    redis_server: RedisServer,
) -> None:
    stopped_retries = 0
    for good in range(2, 9):  # the clock failing at each of its readings in turn
        name = f"test-{uuid.uuid4().hex[:12]}"
        try:
            stopped, cancelled = await _stopped_by_the_clock(redis_server.url, name, good)
        finally:
            with RedisRescue(redis_server.url, campaign=name) as rescue:
                rescue.delete()
        assert cancelled
        stopped_retries += stopped
    assert stopped_retries >= 1  # the case under test came up
