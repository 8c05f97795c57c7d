"""The rescue when Redis is away or broken: a reply the scripts never give is an outage
(a RedisUnavailableError, never a raw error), a worker leases nothing from a broken
Redis, and a Redis restarted mid-work loses no outcome the worker got, with one
WARNING each way (a raw RESP server, tests/support/resp_server.py, and a real
redis-server)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator

import anyio
import pytest
import redis

from mailpartner_async import AsyncMailPartner, BatchError
from mailpartner_async._core.redis_rescue import rescue_keys
from mailpartner_async.redis import AsyncRedisRescue, RedisRescue, RedisUnavailableError
from mailpartner_async.testing import FakeMailPartner
from tests.support.redis_server import RedisServer
from tests.support.resp_server import RespServer, resp
from tests.support.server import ScriptedServer, reply

# What every script call got back instead of what the script returns.
BROKEN = {
    "bulk string": resp(b"1.5"),
    "simple string": b"+OK\r\n",
    "integer": resp(7),
    "negative integer": resp(-3),
    "empty array": resp([]),
    "array of text": resp([b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8"]),
    "nested arrays": resp([[1], [2], [3], [4], [5], [6], [7], [8]]),
    "error reply": b"-ERR something broke\r\n",
    "resp3 null": resp(None),
    "resp3 map": resp({b"now": 1}),
}


@pytest.fixture
def campaign(redis_server: RedisServer) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    redis_server.restore()
    with RedisRescue(redis_server.url, campaign=name) as rescue:
        rescue.delete()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "Redis rescue" in r.getMessage()
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(BROKEN))
async def test_a_reply_the_scripts_never_give_is_a_redis_unavailable_error(case: str) -> None:
    with RespServer(BROKEN[case]) as broken:
        async with AsyncRedisRescue(broken.url, campaign="c") as rescue:
            for call in (
                rescue.status,
                lambda: rescue.submit(["1"]),
                rescue.plan,
                lambda: _drain(rescue),
            ):
                with (
                    anyio.fail_after(20),
                    pytest.raises(RedisUnavailableError, match="campaign 'c'"),
                ):
                    await call()


async def _drain(rescue: AsyncRedisRescue) -> None:
    async for _ in rescue.outcomes():
        pass


FAR = 10**18  # milliseconds past any datetime
SUPERSCRIPT_TWO = "²".encode()  # str.isdigit() says yes, int() says no
LATE = b'{"late":1e300,"send_at":"2030-01-01T12:00:00+00:00"}'
ATTEMPTS = b'{"attempts":1e400,"code":1,"message":"ok","ok":true,"stopped":true}'
# Replies of the right shape holding a value no datetime or int takes: (call, reply).
OUT_OF_RANGE = {
    "status count in a non-ASCII digit": (
        "status",
        [1, 1, 0, 0, 0, [b"done", "²".encode()], [], []],
    ),
    "status time past datetime": ("status", [FAR, 1, 0, 0, 0, [], [], []]),
    "queue page time past datetime": ("plan", [FAR]),
    "queue page cut-off past datetime": ("plan", [1, b"id", b"1e300"]),
    "queue page cut-off infinite": ("plan", [1, b"id", b"inf"]),
    "ledger time past datetime": ("outcomes", [b"0", [b"id", LATE]]),
    "ledger attempts infinite": ("outcomes", [b"0", [b"id", ATTEMPTS]]),
}


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(OUT_OF_RANGE))
async def test_a_value_out_of_range_in_a_reply_is_a_redis_unavailable_error(case: str) -> None:
    call, value = OUT_OF_RANGE[case]
    with RespServer(resp(value)) as broken:
        async with AsyncRedisRescue(broken.url, campaign="c") as rescue:
            calls: dict[str, Callable[[], Awaitable[object]]] = {
                "status": rescue.status,
                "plan": rescue.plan,
                "outcomes": lambda: _drain(rescue),
            }
            with anyio.fail_after(20), pytest.raises(RedisUnavailableError, match="campaign 'c'"):
                await calls[call]()


@pytest.mark.parametrize("case", ["bulk string", "array of text", "resp3 map"])
def test_a_broken_reply_to_the_sync_twin_is_a_redis_unavailable_error_too(case: str) -> None:
    with RespServer(BROKEN[case]) as broken, RedisRescue(broken.url, campaign="c") as rescue:
        with pytest.raises(RedisUnavailableError):
            rescue.status()
        with pytest.raises(RedisUnavailableError):
            rescue.submit(["1", "2"])


@pytest.mark.anyio
async def test_an_answer_slower_than_the_deadline_is_an_outage_not_a_hang() -> None:
    # Each byte 0.5 s apart: every read is within its time-out, the call is not.
    with RespServer(resp([1, 2, 3, 4, 5, [], [], []]), trickle=0.5) as slow:
        async with AsyncRedisRescue(slow.url, campaign="c") as rescue:
            started = time.monotonic()
            with pytest.raises(RedisUnavailableError, match="TimeoutError"):
                await rescue.status()
    assert time.monotonic() - started < 15


@pytest.mark.anyio
async def test_a_worker_leases_nothing_from_a_broken_redis_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeMailPartner(schedule_unknown=True)
    with RespServer(BROKEN["array of text"]) as broken, caplog.at_level(logging.WARNING):
        async with (
            AsyncRedisRescue(broken.url, campaign="c", lease=1.0) as rescue,
            fake.async_client() as client,
        ):
            with anyio.move_on_after(2.5):
                await rescue.work(client)
        calls = broken.script_calls
    assert fake.requests == []
    assert calls >= 2  # it kept probing
    warnings = _warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "unreachable (RedisReplyError" in warnings[0]
    assert "no new leases" in warnings[0]


@pytest.mark.anyio
@pytest.mark.slow
async def test_a_redis_restarted_empty_mid_work_records_what_was_held_then_names_the_loss(
    redis_server: RedisServer,
    campaign: str,
    server: ScriptedServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.default = reply(delay=0.2)
    ids = [str(n) for n in range(40)]
    down_at: list[float] = []

    def outage() -> None:
        time.sleep(1.0)
        down_at.append(time.monotonic())
        redis_server.stop()
        time.sleep(1.5)
        redis_server.start()  # empty: no persistence

    with caplog.at_level(logging.WARNING):
        async with (
            AsyncRedisRescue(redis_server.url, campaign=campaign, lease=3.0) as rescue,
            AsyncMailPartner("k", base_url=server.base_url, max_concurrency=4) as client,
        ):
            await rescue.submit(ids)
            cutter = threading.Thread(target=outage)
            cutter.start()
            try:
                with anyio.fail_after(60), pytest.raises(BatchError) as caught:
                    await rescue.work(client)
            finally:
                cutter.join()
            after = {o.message_id: o async for o in rescue.outcomes()}
    # Redis came back without the campaign: the run ends, saying what was lost and
    # what to do, instead of taking an empty queue for a finished campaign.
    error = caught.value
    assert "Redis no longer holds the campaign's data: it knew 40 ids, now " in error.message
    assert "submit the campaign again" in error.message
    assert error.outcomes == []
    progress = error.progress
    assert progress is not None
    requested = [str(r.message_id) for r in server.requests]
    assert len(requested) == len(set(requested)) < len(ids)  # none sent twice
    # Every answer the worker got was recorded: before the outage in the old Redis,
    # after it (the ids it held meanwhile) in the new one.
    assert progress.done == len(requested) == progress.cancelled
    # Answered (0.2 s after arriving) once Redis was down: recorded only after it.
    in_hand = {str(r.message_id) for r in server.requests if r.arrived + 0.2 > down_at[0] + 0.05}
    assert in_hand
    assert in_hand <= set(after)
    warnings = _warnings(caplog)
    assert len(warnings) == 2, warnings
    assert "unreachable" in warnings[0]
    assert "is back" in warnings[1]
    assert redis.Redis.from_url(redis_server.url).hlen(rescue_keys(campaign).all[5]) == len(after)
