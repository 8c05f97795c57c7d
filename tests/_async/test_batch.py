"""Batch cancellation over real sockets: gather, cancel_many, cancel_iter, back-pressure."""

from __future__ import annotations

import asyncio
import gc
import itertools
import time
from collections.abc import AsyncIterator, Iterator

import anyio
import anyio.lowlevel
import pytest

from mailpartner_async import (
    AlreadySentError,
    APIConnectionError,
    AsyncMailPartner,
    BatchProgress,
    CancelCode,
    CancellationTooLateError,
    ConfigurationError,
    InvalidRequestError,
    MailPartner,
    MessageNotFoundError,
    RetryPolicy,
    UnexpectedResponseError,
)
from tests.support.server import ScriptedServer, body, drop, reply, stall, unused_port

KEY = "batch-key-4242"
FAST = RetryPolicy(initial_delay=0.01, max_delay=0.02)


def _client(server: ScriptedServer, **options: object) -> AsyncMailPartner:
    options.setdefault("rate_limit", None)
    options.setdefault("retry_policy", FAST)
    return AsyncMailPartner(KEY, base_url=server.base_url, **options)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_gather_of_5000_cancels_answers_every_call_within_max_concurrency(
    server: ScriptedServer,
) -> None:
    async with _client(server, max_concurrency=4) as client:
        results = await asyncio.gather(*(client.cancel(i) for i in range(5000)))
    assert sorted(int(r.message_id) for r in results) == list(range(5000))
    assert all(r.code is CancelCode.CANCELLED for r in results)
    assert server.max_in_flight <= 4
    assert len(server.requests) == 5000


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
async def test_cancel_many_accepts_an_async_iterable(server: ScriptedServer) -> None:
    async def ids() -> AsyncIterator[int]:
        for i in range(25):
            await anyio.lowlevel.checkpoint()
            yield i

    async with _client(server) as client:
        outcomes = await client.cancel_many(ids(), concurrency=4)
    assert [o.message_id for o in outcomes] == [str(i) for i in range(25)]
    assert all(o.ok for o in outcomes)


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
        await anyio.sleep(0.2)
        requests_after_break = len(server.requests)
        await anyio.sleep(0.2)
        # Bounded look-ahead: consumed + buffer (concurrency) + in progress (concurrency).
        assert pulled <= 20 + 5 + 5 + 1
        assert len(server.requests) == requests_after_break  # the workers are gone
        # The client is still usable.
        assert (await client.cancel("after")).message_id == "after"


@pytest.mark.anyio
async def test_cancelling_the_consumer_stops_the_workers(server: ScriptedServer) -> None:
    for i in range(3, 50):
        server.script(str(i), stall(30))
    async with _client(server, max_concurrency=10) as client:
        seen: list[str] = []
        with anyio.move_on_after(0.5):
            async with client.cancel_iter(range(50), concurrency=10) as outcomes:
                async for outcome in outcomes:
                    seen.append(outcome.message_id)
        assert sorted(seen) == ["0", "1", "2"]
        sent = len(server.requests)
        assert sent <= 3 + 10  # the three answered, and the ten stalled in flight
        await anyio.sleep(0.3)
        assert len(server.requests) == sent  # no worker went on after the cancel
        result = await client.cancel("again")
        assert result.message_id == "again"


@pytest.mark.asyncio
async def test_break_out_of_cancel_iter_leaves_no_asyncio_task(server: ScriptedServer) -> None:
    async with _client(server) as client:
        async for _outcome in client.cancel_iter(range(1000), concurrency=8):
            break
        gc.collect()
        await asyncio.sleep(0.1)
        assert asyncio.all_tasks() == {asyncio.current_task()}


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
async def test_rate_limit_is_shared_by_with_options_copies(server: ScriptedServer) -> None:
    async with _client(server, rate_limit=600) as client:  # one start every 0.1 s
        other = client.with_options(max_retries=0)
        async with anyio.create_task_group() as group:
            for i in range(3):
                group.start_soon(client.cancel, f"a{i}")
                group.start_soon(other.cancel, f"b{i}")
    starts = sorted(r.arrived for r in server.requests)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) == 6
    assert min(gaps) >= 0.1 - 0.02


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


def test_sync_cancel_iter_pulls_lazily_and_stops_on_break(server: ScriptedServer) -> None:
    pulled = 0

    def ids() -> Iterator[int]:
        nonlocal pulled
        for i in range(100_000):
            pulled += 1
            yield i

    with MailPartner(KEY, base_url=server.base_url, rate_limit=None) as client:
        for taken, outcome in enumerate(client.cancel_iter(ids(), concurrency=4), start=1):
            assert outcome.ok
            if taken == 20:
                break
        time.sleep(0.1)
        count = len(server.requests)
        time.sleep(0.1)
        assert len(server.requests) == count
    # As in the async batch: one id in each call in flight, one in each outcome
    # waiting for the consumer, and the one pull that found the batch stopped.
    assert pulled <= 20 + 4 + 4 + 1
