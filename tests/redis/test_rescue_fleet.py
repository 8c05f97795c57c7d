"""The fleet rescue on a real redis-server with real processes: worker processes, each
leaving from its own loopback address (127.0.0.2, 127.0.0.3, ...) on its own
RedisRateLimiter key, against one fake served over HTTP whose cap counts each address
on its own. Scaled down (tests/support/rescue_fleet.py): 2 real seconds are one
simulated minute, a lease is 2 s, each test takes seconds."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailpartner_async import MailPartner, ScheduledMessage, plan_rescue
from mailpartner_async.redis import RedisRateLimiter, RedisRescue
from mailpartner_async.testing import FakeMailPartner
from tests.redis.test_redis_limiter import busiest_window
from tests.support.fake_http import Answer, served_fake
from tests.support.redis_server import RedisServer
from tests.support.rescue_fleet import (
    BUDGET,
    CONCURRENCY,
    LEASE,
    LIMITER_PERIOD,
    PERIOD,
    SPEED,
    campaign,
    check_ledger,
    fleet,
    wait_until,
)
from tests.support.rescue_worker import START, SharedClock

pytestmark = pytest.mark.slow

ADDRESSES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")


@pytest.fixture
def clock() -> SharedClock:
    return SharedClock(time.time(), SPEED)  # set again when the fleet starts


@pytest.fixture
def fake(clock: SharedClock) -> FakeMailPartner:
    return FakeMailPartner(clock=clock, rate_limit_per_minute=BUDGET, rate_window=PERIOD)


def _name() -> str:
    return f"fleet-{uuid.uuid4().hex[:12]}"


def _submitted(url: str, messages: list[ScheduledMessage]) -> RedisRescue:
    rescue = RedisRescue(url, campaign=_name(), lease=LEASE)
    assert rescue.submit(messages) == len(messages)
    assert rescue.submit(messages[:10]) == 0  # idempotent by id
    return rescue


def _workers(campaign_name: str, addresses: tuple[str, ...]) -> list[dict[str, object]]:
    # Each address its own budget: its own limiter key, as each host's egress has.
    return [
        {"campaign": campaign_name, "address": address, "pool": f"{campaign_name}-{address}"}
        for address in addresses
    ]


def _per_address(answers: list[Answer]) -> dict[str, list[float]]:
    arrivals: dict[str, list[float]] = {}
    for answer in answers:
        arrivals.setdefault(answer.address, []).append(answer.at)
    return arrivals


def _displacement(answers: list[Answer], messages: list[ScheduledMessage]) -> int:
    """How far the fake's order of cancels strays from the global cut-off order: the
    largest difference between an id's place in one and in the other."""
    send_at = {m.message_id: m.send_at for m in messages}
    seen = [a.message_id for a in answers]
    by_cutoff = {
        message_id: n for n, message_id in enumerate(sorted(seen, key=send_at.__getitem__))
    }
    return max((abs(n - by_cutoff[message_id]) for n, message_id in enumerate(seen)), default=0)


def test_a_fleet_of_addresses_cancels_each_id_once_in_cutoff_order_without_a_429(
    redis_server: RedisServer, fake: FakeMailPartner, clock: SharedClock
) -> None:
    messages = campaign("m", 200)
    for message in messages:
        fake.schedule(message.send_at, message.message_id)
    with (
        served_fake(fake) as (base_url, recorder),
        _submitted(redis_server.url, messages) as rescue,
    ):
        shared = {"redis": redis_server.url, "base_url": base_url}
        workers = _workers(rescue.campaign, ADDRESSES)
        workers[0]["backend"] = "trio"  # one host on trio: the same queue either way
        with fleet(clock, workers, **shared) as running:
            running.go()
            progress, _ = running.results()
        answers = recorder.snapshot()
        outcomes = check_ledger(rescue, fake, messages, answers)
    assert [a for a in answers if a.status == 429] == []
    assert set(_per_address(answers)) == set(ADDRESSES)  # every worker took its share
    for arrivals in _per_address(answers).values():
        assert busiest_window(arrivals, PERIOD) <= BUDGET
    assert sum(p["done"] for p in progress) == len(messages)  # each outcome recorded once
    assert len(answers) == len({a.message_id for a in answers})  # one request per id
    # The fleet's in flight: each worker's started cancels (its concurrency) and the
    # ids of its next lease, taken while those run (status().in_flight counts both).
    in_flight = len(ADDRESSES) * 2 * CONCURRENCY
    assert _displacement(answers, messages) <= in_flight
    optimum = plan_rescue(messages, now=START, rate_limit=BUDGET, pools=len(ADDRESSES))
    assert sum(o.stopped for o in outcomes) >= optimum.reachable // 2  # generous


def test_a_worker_killed_mid_run_loses_no_id_its_leases_go_to_the_others(
    redis_server: RedisServer, fake: FakeMailPartner, clock: SharedClock
) -> None:
    messages = campaign("k", 200)
    for message in messages:
        fake.schedule(message.send_at, message.message_id)
    with (
        served_fake(fake) as (base_url, recorder),
        _submitted(redis_server.url, messages) as rescue,
    ):
        shared = {"redis": redis_server.url, "base_url": base_url}
        with fleet(clock, _workers(rescue.campaign, ADDRESSES), **shared) as running:
            running.go()
            wait_until(lambda: rescue.status().final.done >= len(messages) // 3)
            running.kill(0)
            killed_at = time.monotonic()
            progress, _ = running.results(skip=[0])
        answers = recorder.snapshot()
        # Complete although the dead worker held leases it never finished: the others
        # took them back after the lease, and a cancel it had made counts as one.
        check_ledger(rescue, fake, messages, answers)
    assert [a for a in answers if a.status == 429] == []
    assert [a for a in answers if a.address == ADDRESSES[0] and a.at > killed_at + 0.2] == []
    assert len(progress) == 2
    assert sum(p["done"] for p in progress) < len(messages)  # the dead one had recorded some


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(_redis_executable(), persist_in=str(tmp_path))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _redis_executable() -> str:
    executable = shutil.which("redis-server")
    assert executable is not None  # the session fixture has skipped or failed already
    return executable


def test_redis_restarted_mid_run_loses_no_id_and_answers_no_id_200_twice(
    redis_server: RedisServer,
    persistent_redis: RedisServer,
    fake: FakeMailPartner,
    clock: SharedClock,
) -> None:
    messages = campaign("r", 200)
    for message in messages:
        fake.schedule(message.send_at, message.message_id)
    url = persistent_redis.url
    with served_fake(fake) as (base_url, recorder), _submitted(url, messages) as rescue:
        with fleet(
            clock, _workers(rescue.campaign, ADDRESSES), redis=url, base_url=base_url
        ) as running:
            running.go()
            wait_until(lambda: rescue.status().final.done >= len(messages) // 3)
            persistent_redis.stop()
            time.sleep(LEASE + 0.5)  # leases run out meanwhile: nobody can take them back
            persistent_redis.start()
            _, logs = running.results()
        check_ledger(rescue, fake, messages, recorder.snapshot())
    assert all("WARNING" in log for log in logs)  # each worker said Redis was away


def test_two_campaigns_at_once_on_the_same_addresses_keep_apart_and_within_each_budget(
    redis_server: RedisServer, fake: FakeMailPartner, clock: SharedClock
) -> None:
    first, second = campaign("a", 120, seed=1), campaign("b", 120, seed=2)
    for message in first + second:
        fake.schedule(message.send_at, message.message_id)
    addresses = ADDRESSES[:2]
    with (
        served_fake(fake) as (base_url, recorder),
        _submitted(redis_server.url, first) as one,
        _submitted(redis_server.url, second) as two,
    ):
        # Both campaigns leave through the same two addresses: one budget per address.
        workers: list[dict[str, object]] = [
            {"campaign": rescue.campaign, "address": address, "pool": f"{one.campaign}-{address}"}
            for rescue in (one, two)
            for address in addresses
        ]
        with fleet(clock, workers, redis=redis_server.url, base_url=base_url) as running:
            running.go()
            running.results()
        answers = recorder.snapshot()
        check_ledger(one, fake, first, answers)
        check_ledger(two, fake, second, answers)
    assert [a for a in answers if a.status == 429] == []
    for arrivals in _per_address(answers).values():
        assert busiest_window(arrivals, PERIOD) <= BUDGET


def test_the_sync_twin_with_threads_cancels_each_id_once_without_a_429(
    redis_server: RedisServer, fake: FakeMailPartner, clock: SharedClock
) -> None:
    messages = campaign("s", 150)
    for message in messages:
        fake.schedule(message.send_at, message.message_id)
    errors: list[BaseException] = []

    def work(address: str, campaign_name: str, base_url: str) -> None:
        limiter = RedisRateLimiter(
            redis_server.url,
            rate_limit=BUDGET,
            key=f"{campaign_name}-{address}",
            period=LIMITER_PERIOD,
        )
        try:
            with (
                RedisRescue(
                    redis_server.url, campaign=campaign_name, lease=LEASE, clock=clock
                ) as rescue,
                MailPartner(
                    "test-key",
                    base_url=base_url,
                    rate_limiter=limiter,
                    local_address=address,
                    max_concurrency=CONCURRENCY,
                ) as client,
            ):
                rescue.work(client)
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    with (
        served_fake(fake) as (base_url, recorder),
        _submitted(redis_server.url, messages) as rescue,
    ):
        threads = [
            threading.Thread(target=work, args=(address, rescue.campaign, base_url))
            for address in ADDRESSES
        ]
        clock.origin = time.time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=90)
        assert errors == []
        answers = recorder.snapshot()
        check_ledger(rescue, fake, messages, answers)
    assert [a for a in answers if a.status == 429] == []
    assert set(_per_address(answers)) == set(ADDRESSES)
