"""A run of work() that fails on its own machinery (a clock that raises mid-run): one
BatchError, never an exception group; every outcome it got recorded first; and the ids
it sent no request for go back to the queue, not into the ledger (a real redis-server
and the in-process fake)."""

from __future__ import annotations

import asyncio
import gc
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from mailpartner_async import AsyncMailPartner, BatchError, MailPartnerError, ScheduledMessage
from mailpartner_async.redis import AsyncRedisRescue, RedisRescue
from mailpartner_async.testing import FakeClock, FakeMailPartner
from tests.support.cut_proxy import CutProxy
from tests.support.redis_server import RedisServer
from tests.support.rescue_fleet import wait_until
from tests.support.server import ScriptedServer, reply

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def campaign(redis_server: RedisServer) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    with RedisRescue(redis_server.url, campaign=name) as rescue:
        rescue.delete()


class FailingClock:
    """The fake's clock, until ``good`` readings were given: then it raises."""

    def __init__(self, clock: FakeClock, good: int) -> None:
        self._clock = clock
        self._left = good

    def __call__(self) -> datetime:
        self._left -= 1
        if self._left < 0:
            raise RuntimeError("clock broke")
        return self._clock()


@pytest.mark.anyio
@pytest.mark.parametrize("good", [2, 3, 5, 8])
async def test_a_clock_failing_mid_work_is_one_batch_error_and_loses_no_outcome(
    redis_server: RedisServer, campaign: str, good: int
) -> None:
    clock = FakeClock(NOW)
    fake = FakeMailPartner(clock=clock)
    sends = [NOW + timedelta(minutes=10 + n) for n in range(6)]
    messages = [ScheduledMessage(fake.schedule(send_at), send_at) for send_at in sends]
    ids = sorted(str(m.message_id) for m in messages)
    broken = FailingClock(clock, good)
    url = redis_server.url
    async with AsyncRedisRescue(url, campaign=campaign, clock=broken, lease=1.0) as rescue:
        await rescue.submit(messages)
        async with fake.async_client(max_concurrency=2) as client:
            with anyio.fail_after(30), pytest.raises(BatchError) as raised:
                await rescue.work(client)
        recorded = {o.message_id: o for o in [o async for o in rescue.outcomes()]}
    sent = [str(r.message_id) for r in fake.requests]
    assert type(raised.value) is BatchError
    assert "RuntimeError: clock broke" in str(raised.value)
    assert raised.value.outcomes == []
    # Every id sent got its outcome recorded; no id without a request is final.
    assert sorted(recorded) == sorted(sent)
    assert all(o.ok for o in recorded.values())
    async with AsyncRedisRescue(url, campaign=campaign, clock=clock, lease=1.0) as rescue:
        async with fake.async_client(max_concurrency=2) as client:
            with anyio.fail_after(30):
                await rescue.work(client)
        status = await rescue.status()
    assert (status.left, status.final.cancelled) == (0, 6)
    # The ids sent no request went back to the queue: each is sent once, by then.
    assert sorted(str(r.message_id) for r in fake.requests) == ids


# The first loop's connection is never closed (the misuse under test): the warnings of
# its socket, collected here, are the expected ones.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_rescue_used_under_a_second_asyncio_run_is_a_mailpartner_error(
    redis_server: RedisServer, campaign: str
) -> None:
    rescue = AsyncRedisRescue(redis_server.url, campaign=campaign)
    assert asyncio.run(rescue.status()).left == 0
    with pytest.raises(MailPartnerError, match="first used in another event loop"):
        asyncio.run(rescue.status())
    asyncio.run(rescue.aclose())  # nothing to close on this loop: no error either
    assert asyncio.run(rescue.status()).left == 0  # closed, it may serve a new loop
    asyncio.run(rescue.aclose())
    gc.collect()


class BreakableClock:
    """``NOW`` until broken, then raising."""

    def __init__(self) -> None:
        self.broken = False

    def __call__(self) -> datetime:
        if self.broken:
            raise RuntimeError("clock broke")
        return NOW


@pytest.mark.anyio
async def test_a_run_failing_while_redis_is_away_gives_the_outcomes_it_could_not_record(
    redis_server: RedisServer, campaign: str, server: ScriptedServer
) -> None:
    send_at = NOW + timedelta(minutes=30)
    server.script("x", reply(delay=1.5))  # answered once the run has failed
    server.script("y", reply(status=503, delay=0.3))  # its retry reads the clock
    clock = BreakableClock()
    with CutProxy(redis_server.port) as proxy:
        async with (
            AsyncRedisRescue(proxy.url, campaign=campaign, clock=clock, lease=5.0) as rescue,
            AsyncMailPartner("k", base_url=server.base_url, max_concurrency=2) as client,
        ):
            await rescue.submit([ScheduledMessage("x", send_at), ScheduledMessage("y", send_at)])

            def outage() -> None:
                wait_until(lambda: len(server.requests) == 2, timeout=10)
                proxy.cut()
                clock.broken = True

            cutter = threading.Thread(target=outage)
            cutter.start()
            try:
                with anyio.fail_after(20), pytest.raises(BatchError) as raised:
                    await rescue.work(client)
            finally:
                cutter.join()
    kept = {outcome.message_id: outcome for outcome in raised.value.outcomes}
    assert kept["x"].ok
    assert f"{len(kept)} outcomes it could not record are in outcomes" in str(raised.value)
