"""A Redis that answers nonsense, too slowly, or "not yet" for ever: each cancel still
goes out, on local pacing, with one WARNING, and never a raw error (asyncio, trio and
the sync client), against a raw RESP server (tests/resp_server.py)."""

from __future__ import annotations

import logging
import uuid

import anyio
import pytest

from mailpartner_async import AsyncMailPartner, MailPartner
from mailpartner_async._core.redis_plan import MAX_CHECKS_PER_START
from mailpartner_async.redis import RedisRateLimiter
from tests.support.hostile import HostileServer, echo_key_in_header
from tests.support.leaks import Recorded, assert_key_absent, outcome_texts, texts_of
from tests.support.resp_server import RespServer, resp
from tests.support.server import ScriptedServer

# (reply, protocol): what the reserving script got back instead of its four integers.
BROKEN = {
    "bulk string": (resp(b"1.5"), 2),
    "simple string": (b"+1.5\r\n", 2),
    "array of text": (resp([b"0", b"17", b"0", b"1"]), 2),
    "integer": (resp(7), 2),
    "two items": (resp([0, 17]), 2),
    "three items": (resp([0, 17, 0]), 2),
    "five items": (resp([0, 17, 0, 1, 1]), 2),
    "nested array": (resp([[0], 17, 0, 1]), 2),
    "resp3 map": (resp({b"delay": 0, b"start": 17}), 3),
    "resp3 null": (resp(None), 3),
    "resp3 double": (resp([0.5, 17, 0, 1]), 3),
    "resp3 boolean": (resp([True, 17, 0, 1]), 3),
    "negative wait": (resp([-5, 17, 0, 1]), 2),
    "next 600 s ahead": (resp([600_000_000, 17, 0, 1]), 2),
}


def _limiter(redis: RespServer, protocol: int) -> RedisRateLimiter:
    url = redis.url + ("?protocol=3" if protocol == 3 else "")
    return RedisRateLimiter(url, rate_limit=600, key=f"r-{uuid.uuid4().hex}", period=60.0)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "Redis rate limiter" in r.getMessage()]


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(BROKEN))
async def test_an_async_cancel_goes_out_when_redis_answers_what_the_script_never_returns(
    case: str, server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    reply, protocol = BROKEN[case]
    with RespServer(reply) as redis, caplog.at_level(logging.WARNING, "mailpartner_async"):
        limiter = _limiter(redis, protocol)
        async with AsyncMailPartner("k", base_url=server.base_url, rate_limiter=limiter) as c:
            with anyio.fail_after(20):  # a guard against a hang, not a timing
                results = [await c.cancel(str(n), timeout=2) for n in range(3)]
    assert [r.message_id for r in results] == ["0", "1", "2"]
    assert len(server.requests) == 3
    warnings = _warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "unreachable (RedisReplyError" in warnings[0]


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_sync_cancel_goes_out_when_redis_answers_what_the_script_never_returns(
    case: str, server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    reply, protocol = BROKEN[case]
    with RespServer(reply) as redis, caplog.at_level(logging.WARNING, "mailpartner_async"):
        limiter = _limiter(redis, protocol)
        with MailPartner("k", base_url=server.base_url, rate_limiter=limiter) as client:
            results = [client.cancel(str(n), timeout=2) for n in range(3)]
    assert [r.message_id for r in results] == ["0", "1", "2"]
    warnings = _warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "unreachable (RedisReplyError" in warnings[0]


# Each check of the same start answered "1 µs more": without a bound, one cancel makes
# script calls as fast as the loop allows (130,000 in 8 s).
NOT_YET = resp([1, 1_700_000_000_000_000, 0, 1])


@pytest.mark.anyio
async def test_a_start_that_is_never_due_does_not_spin(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    with RespServer(NOT_YET) as redis, caplog.at_level(logging.WARNING, "mailpartner_async"):
        limiter = _limiter(redis, 2)
        async with AsyncMailPartner("k", base_url=server.base_url, rate_limiter=limiter) as c:
            with anyio.fail_after(20):
                await c.cancel("1", timeout=2)
        calls = redis.script_calls
    assert len(server.requests) == 1
    assert calls == MAX_CHECKS_PER_START + 1  # the first answer, then the checks
    assert "still not due" in _warnings(caplog)[0]


def test_a_start_that_is_never_due_does_not_spin_the_sync_client(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    with RespServer(NOT_YET) as redis, caplog.at_level(logging.WARNING, "mailpartner_async"):
        limiter = _limiter(redis, 2)
        with MailPartner("k", base_url=server.base_url, rate_limiter=limiter) as client:
            client.cancel("1", timeout=2)
        calls = redis.script_calls
    assert calls == MAX_CHECKS_PER_START + 1
    assert len(_warnings(caplog)) == 1


# A well-formed reply, one byte every 0.5 s: each read is inside redis-py's 1 s socket
# time-out, the whole call is not (28 bytes, 14 s).
TRICKLE = resp([0, 1_700_000_000_000_000, 0, 1])


@pytest.mark.anyio
async def test_a_reply_trickling_in_is_given_up_at_the_call_deadline(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        RespServer(TRICKLE, trickle=0.5) as redis,
        caplog.at_level(logging.WARNING, "mailpartner_async"),
    ):
        limiter = _limiter(redis, 2)
        async with AsyncMailPartner("k", base_url=server.base_url, rate_limiter=limiter) as c:
            with anyio.fail_after(10):  # without the deadline: 14 s and more
                await c.cancel("1", timeout=2)
    assert len(server.requests) == 1
    warnings = _warnings(caplog)
    assert len(warnings) == 1
    assert "unreachable (TimeoutError)" in warnings[0]


def test_a_reply_trickling_in_is_given_up_at_the_call_deadline_by_the_sync_client(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        RespServer(TRICKLE, trickle=0.5) as redis,
        caplog.at_level(logging.WARNING, "mailpartner_async"),
    ):
        limiter = _limiter(redis, 2)
        with MailPartner("k", base_url=server.base_url, rate_limiter=limiter) as client:
            outcome = client.cancel_many(["1"])[0]
    assert outcome.ok
    assert len(server.requests) == 1
    warnings = _warnings(caplog)
    assert len(warnings) == 1
    assert "unreachable (TimeoutError)" in warnings[0]


# Issue 20, item 10: the same broken Redis, and one whose error replies quote the key
# (a proxy in front of it echoing what it saw), beside a server echoing the key, traced:
# no key in any error, span, metric point or log record.
LEAK_KEY = "hostile-Key-0123456789"
QUOTING = {
    **BROKEN,
    "error quoting apiKey=": (b"-ERR proxy saw apiKey=%s\r\n" % LEAK_KEY.encode(), 2),
    "error quoting the key": (b"-ERR %s\r\n" % LEAK_KEY.encode(), 2),
}


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(QUOTING))
async def test_a_broken_redis_leaves_no_key_in_errors_spans_metrics_or_logs(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    reply, protocol = QUOTING[case]
    recorded = Recorded()
    with (
        HostileServer() as hostile,
        RespServer(reply) as redis,
        caplog.at_level(logging.DEBUG),
    ):
        hostile.default = echo_key_in_header()
        limiter = _limiter(redis, protocol)
        async with AsyncMailPartner(
            LEAK_KEY, base_url=hostile.base_url, rate_limiter=limiter, **recorded.options()
        ) as client:
            with anyio.fail_after(20):  # a guard against a hang, not a timing
                result = await client.cancel("1", timeout=2)
                outcomes = await client.cancel_many(["2", "3"])
    assert [o.ok for o in outcomes] == [True, True]
    logs = [caplog.text, *(record.getMessage() for record in caplog.records)]
    assert any("Redis rate limiter" in text for text in logs)
    assert_key_absent(
        LEAK_KEY, [*texts_of(result), *outcome_texts(outcomes), *logs, *recorded.texts()]
    )
    recorded.shutdown()
