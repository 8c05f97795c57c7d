"""Batch cancellation over real sockets: cancel_many's outcomes, cancel_iter's lazy pull,
a 429 storm, ids that cannot connect.

The sync twin is generated from this file; what only the async batch can show
(asyncio.gather, async iterables, outside cancellation) is in
tests/transports/test_async_only.py.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import pytest

from mailpartner_async import (
    AlreadySentError,
    APIConnectionError,
    AsyncMailPartner,
    BatchProgress,
    CancellationTooLateError,
    ConfigurationError,
    InvalidRequestError,
    MessageNotFoundError,
    RetryPolicy,
    UnexpectedResponseError,
)
from tests.support.concurrently import async_sleep
from tests.support.server import ScriptedServer, body, drop, reply, unused_port

KEY = "batch-key-4242"
FAST = RetryPolicy(initial_delay=0.01, max_delay=0.02)


def _client(server: ScriptedServer, **options: object) -> AsyncMailPartner:
    options.setdefault("rate_limit", None)
    options.setdefault("retry_policy", FAST)
    return AsyncMailPartner(KEY, base_url=server.base_url, **options)  # type: ignore[arg-type]


def _mixed_scripts(server: ScriptedServer) -> list[str]:
    server.script("missing", reply(4))
    server.script("sent", reply(7))
    server.script("late", reply(6))
    server.script("flaky", drop(), reply(200))
    server.script("down", *[body("upstream down", status=503)] * 3)
    return ["ok-1", "missing", "sent", "late", "flaky", "down", "ok-2", "ok-1"]


@pytest.mark.anyio
async def test_cancel_many_gives_each_id_one_outcome_in_input_order(
    server: ScriptedServer,
) -> None:
    ids = _mixed_scripts(server)
    seen: list[BatchProgress] = []
    async with _client(server) as client:
        outcomes = await client.cancel_many(ids, concurrency=3, on_progress=seen.append)

    assert [o.message_id for o in outcomes] == ids
    by_id = {o.message_id: o for o in outcomes}
    assert by_id["ok-1"].ok
    assert by_id["ok-2"].ok
    assert isinstance(by_id["missing"].error, MessageNotFoundError)
    assert isinstance(by_id["sent"].error, AlreadySentError)
    assert isinstance(by_id["late"].error, CancellationTooLateError)
    flaky = by_id["flaky"].result
    assert flaky is not None
    assert flaky.attempts == 2
    down = by_id["down"].error
    assert isinstance(down, UnexpectedResponseError)
    assert down.http_status == 503
    assert len(server.requests_for("down")) == 3  # max_retries=2: three attempts
    assert len(server.requests_for("ok-1")) == 2  # duplicated ids are each answered
    assert seen[-1] == BatchProgress(
        done=8, cancelled=4, too_late=1, already_sent=1, not_found=1, failed=1
    )
    assert [p.done for p in seen] == list(range(1, 9))


@pytest.mark.anyio
async def test_cancel_many_reports_bad_ids_on_their_outcome_without_a_request(
    server: ScriptedServer,
) -> None:
    async with _client(server) as client:
        outcomes = await client.cancel_many(["1", "  ", 2])
    assert [o.message_id for o in outcomes] == ["1", "  ", "2"]
    assert isinstance(outcomes[1].error, InvalidRequestError)
    assert sorted(r.message_id or "" for r in server.requests) == ["1", "2"]


@pytest.mark.anyio
@pytest.mark.parametrize("bad", ["300", b"300", 300, None])
async def test_cancel_many_refuses_a_single_id_or_a_non_iterable(
    server: ScriptedServer, bad: object
) -> None:
    async with _client(server) as client:
        with pytest.raises(ConfigurationError):
            await client.cancel_many(bad)  # type: ignore[arg-type]
    assert server.requests == []


@pytest.mark.anyio
async def test_cancel_iter_pulls_ids_lazily_and_stops_on_break(server: ScriptedServer) -> None:
    pulled = 0

    def ids() -> Iterator[int]:
        nonlocal pulled
        for i in range(100_000):
            pulled += 1
            yield i

    async with _client(server, max_concurrency=5) as client:
        taken = 0
        async for outcome in client.cancel_iter(ids(), concurrency=5):
            assert outcome.ok
            taken += 1
            if taken == 20:
                break
        gc.collect()
        await async_sleep(0.2)
        requests_after_break = len(server.requests)
        await async_sleep(0.2)
        # Bounded look-ahead: consumed + buffer (concurrency) + in progress (concurrency).
        assert pulled <= 20 + 5 + 5 + 1
        assert len(server.requests) == requests_after_break  # the workers are gone
        # The client is still usable.
        assert (await client.cancel("after")).message_id == "after"


@pytest.mark.anyio
async def test_a_429_storm_pauses_every_worker_and_the_batch_completes(
    server: ScriptedServer,
) -> None:
    server.script("0", reply(429, status=429, headers={"Retry-After": "0.5"}))
    ids = [str(i) for i in range(40)]
    async with _client(server, max_concurrency=8, max_retries=3) as client:
        started = time.monotonic()
        outcomes = await client.cancel_many(ids, concurrency=8)
    assert [o.message_id for o in outcomes] == ids
    assert all(o.ok for o in outcomes)
    storm = next(r for r in server.requests if r.message_id == "0").arrived
    # Until the client has read the 429, the other workers go on (each of their calls
    # answered at once, then the next one started): allow it 0.1 s for that. After
    # it, nobody starts a request until Retry-After has passed.
    quiet = [r for r in server.requests if storm + 0.1 < r.arrived < storm + 0.5 - 0.02]
    assert quiet == []
    assert max(r.arrived for r in server.requests) >= storm + 0.5 - 0.02
    assert time.monotonic() - started >= 0.5


@pytest.mark.anyio
async def test_an_id_that_cannot_connect_still_gets_its_outcome() -> None:
    client = AsyncMailPartner(
        KEY,
        base_url=f"http://127.0.0.1:{unused_port()}/v1",
        rate_limit=None,
        max_retries=1,
        retry_policy=FAST,
    )
    async with client:
        outcomes = await client.cancel_many(["x", "y"])
    assert [o.message_id for o in outcomes] == ["x", "y"]
    assert all(isinstance(o.error, APIConnectionError) for o in outcomes)
