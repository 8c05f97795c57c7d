"""RedisRescue, the generated sync twin of AsyncRedisRescue, on a real redis-server and
a raw RESP server: the same campaign read back (status, outcomes, plan), the same
too-late rule, the same typed errors for what Redis must not answer, and the same
single BatchError when the run's own clock fails. The async tests in test_rescue*.py
pin the rules; these pin that the generated code keeps them.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from mailpartner_async import BatchError, ScheduledMessage
from mailpartner_async.redis import RedisRescue, RedisUnavailableError, RescueStatus
from mailpartner_async.testing import FakeClock, FakeMailPartner
from tests.redis.test_rescue_outages import BROKEN, OUT_OF_RANGE
from tests.support.redis_server import RedisServer
from tests.support.resp_server import RespServer, resp

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def campaign(redis_server: RedisServer) -> Iterator[str]:
    name = f"sync-{uuid.uuid4().hex[:12]}"
    yield name
    with RedisRescue(redis_server.url, campaign=name) as rescue:
        rescue.delete()


def _scheduled(fake: FakeMailPartner, minutes: list[float]) -> list[ScheduledMessage]:
    sends = [NOW + timedelta(minutes=m) for m in minutes]
    return [ScheduledMessage(fake.schedule(send_at), send_at) for send_at in sends]


def test_the_sync_twin_works_a_campaign_and_reads_it_back(
    redis_server: RedisServer, campaign: str
) -> None:
    clock = FakeClock(NOW)
    fake = FakeMailPartner(clock=clock)
    messages = _scheduled(fake, [10, 11, 12, 4])  # the last one is too late already
    with RedisRescue(redis_server.url, campaign=campaign, clock=clock, worker="w") as rescue:
        assert rescue.submit(messages) == 4
        assert rescue.submit(messages) == 0
        plan = rescue.plan(pools=2, rate_limit=2000)
        with fake.client() as client:
            progress = rescue.work(client)
        status = rescue.status()
        outcomes = {o.message_id: o for o in rescue.outcomes()}
        after = rescue.plan()
    assert (plan.total, plan.reachable, plan.pools) == (4, 3, 2)
    assert (progress.cancelled, progress.done) == (3, 3)
    assert isinstance(status, RescueStatus)
    assert (status.submitted, status.left, status.in_flight) == (4, 0, 0)
    assert (status.final.cancelled, status.final.too_late, status.final.done) == (3, 1, 4)
    assert status.workers == ("w",)
    late = outcomes[str(messages[-1].message_id)]
    assert late.error is not None
    assert "not attempted" in late.error.message
    sent = sorted(str(r.message_id) for r in fake.requests)
    assert sent == sorted(str(m.message_id) for m in messages[:3])
    assert after.total == 0


def test_the_sync_twin_threads_give_one_outcome_per_id(
    redis_server: RedisServer, campaign: str
) -> None:
    clock = FakeClock(NOW)
    fake = FakeMailPartner(clock=clock)
    messages = _scheduled(fake, [10 + n / 10 for n in range(60)])
    with RedisRescue(redis_server.url, campaign=campaign, clock=clock) as rescue:
        rescue.submit(messages)

    def work(n: int) -> None:
        with (
            RedisRescue(redis_server.url, campaign=campaign, clock=clock, worker=f"t{n}") as mine,
            fake.client() as client,
        ):
            mine.work(client)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with RedisRescue(redis_server.url, campaign=campaign) as rescue:
        status = rescue.status()
        outcomes = list(rescue.outcomes())
    assert sorted(o.message_id for o in outcomes) == sorted(str(m.message_id) for m in messages)
    assert (status.final.cancelled, status.left) == (60, 0)
    assert len(fake.requests) == 60  # no id sent twice


@pytest.mark.parametrize("case", list(OUT_OF_RANGE))
def test_a_value_out_of_range_is_a_redis_unavailable_error_on_the_sync_twin(case: str) -> None:
    call, value = OUT_OF_RANGE[case]
    with RespServer(resp(value)) as broken, RedisRescue(broken.url, campaign="c") as rescue:
        calls: dict[str, Callable[[], object]] = {
            "status": rescue.status,
            "plan": rescue.plan,
            "outcomes": lambda: list(rescue.outcomes()),
        }
        with pytest.raises(RedisUnavailableError, match="campaign 'c'"):
            calls[call]()


@pytest.mark.parametrize("case", ["array of text", "resp3 map"])
def test_the_sync_twin_plans_and_reads_nothing_from_a_broken_redis(case: str) -> None:
    with RespServer(BROKEN[case]) as broken, RedisRescue(broken.url, campaign="c") as rescue:
        with pytest.raises(RedisUnavailableError):
            rescue.plan()
        with pytest.raises(RedisUnavailableError):
            list(rescue.outcomes())


def test_a_clock_failing_mid_work_on_the_sync_twin_is_one_batch_error(
    redis_server: RedisServer, campaign: str
) -> None:
    fake = FakeMailPartner(clock=FakeClock(NOW))
    messages = _scheduled(fake, [10, 11, 12, 13, 14, 15])
    readings = 0

    def failing() -> datetime:
        nonlocal readings
        readings += 1
        if readings > 4:
            raise RuntimeError("clock broke")
        return NOW

    with RedisRescue(redis_server.url, campaign=campaign, clock=failing, lease=1.0) as rescue:
        rescue.submit(messages)
        with fake.client() as client, pytest.raises(BatchError) as caught:
            rescue.work(client)
    assert "clock broke" in str(caught.value)
    assert not isinstance(caught.value, BaseExceptionGroup)
