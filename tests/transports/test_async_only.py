"""What only the async client can show: concurrency bounds, shared pacing and
back-pressure, outside cancellation, event-loop binding and collection warnings, and
the batch's async-only forms (asyncio.gather, async iterables, a cancelled consumer)."""

from __future__ import annotations

import asyncio
import gc
import itertools
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

from mailpartner_async import (
    AsyncMailPartner,
    CancelCode,
    CancelResult,
    MailPartnerError,
    RetryPolicy,
)
from tests.support.server import ScriptedServer, body, reply, stall

KEY = "test-key-123"


def make_client(server: ScriptedServer, **options: Any) -> AsyncMailPartner:
    options.setdefault("rate_limit", None)
    options.setdefault("timeout", 5.0)
    options.setdefault("retry_policy", RetryPolicy(initial_delay=0.01, max_delay=0.02))
    return AsyncMailPartner(KEY, base_url=server.base_url, **options)


async def cancel_all(clients: list[AsyncMailPartner], ids: list[str]) -> list[CancelResult]:
    """Cancel every id concurrently, spreading them over ``clients`` in turn."""
    results: list[CancelResult] = []

    async def one(client: AsyncMailPartner, message_id: str) -> None:
        results.append(await client.cancel(message_id))

    async with anyio.create_task_group() as group:
        for index, message_id in enumerate(ids):
            group.start_soon(one, clients[index % len(clients)], message_id)
    return results


@pytest.mark.anyio
async def test_concurrent_cancels_never_exceed_max_concurrency(server: ScriptedServer) -> None:
    server.default = reply(delay=0.005)
    async with make_client(server, max_concurrency=3) as client:
        results = await cancel_all([client], [str(n) for n in range(200)])

    assert len(results) == 200
    assert all(r.code == CancelCode.CANCELLED and r.attempts == 1 for r in results)
    assert len(server.requests) == 200
    assert server.max_in_flight == 3


@pytest.mark.anyio
async def test_max_concurrency_holds_with_a_larger_user_pool(server: ScriptedServer) -> None:
    server.default = reply(delay=0.005)
    big_pool = httpx.AsyncClient(limits=httpx.Limits(max_connections=100))
    async with big_pool, make_client(server, max_concurrency=3, http_client=big_pool) as client:
        results = await cancel_all([client], [str(n) for n in range(200)])

    assert len(results) == 200
    assert server.max_in_flight == 3


@pytest.mark.anyio
async def test_with_options_copies_share_the_concurrency_limit(server: ScriptedServer) -> None:
    server.default = reply(delay=0.005)
    big_pool = httpx.AsyncClient(limits=httpx.Limits(max_connections=100))
    async with big_pool, make_client(server, max_concurrency=2, http_client=big_pool) as client:
        copies = [client, client.with_options(timeout=4.0), client.with_options(max_retries=0)]
        results = await cancel_all(copies, [str(n) for n in range(60)])

    assert len(results) == 60
    assert server.max_in_flight == 2


@pytest.mark.anyio
async def test_rate_limit_paces_concurrent_calls(server: ScriptedServer) -> None:
    async with make_client(server, rate_limit=600) as client:  # one start every 0.1 s
        await cancel_all([client, client.with_options(timeout=4.0)], [str(n) for n in range(12)])

    arrivals = sorted(r.arrived for r in server.requests)
    assert len(arrivals) == 12
    assert arrivals[-1] - arrivals[0] >= 1.0  # eleven gaps of 0.1 s


@pytest.mark.anyio
async def test_retry_after_holds_back_every_caller(server: ScriptedServer) -> None:
    server.script("first", body("slow down", status=429, headers={"Retry-After": "0.5"}))
    results: list[CancelResult] = []

    async def one(client: AsyncMailPartner, message_id: str) -> None:
        results.append(await client.cancel(message_id))

    async with make_client(server) as client, anyio.create_task_group() as group:
        group.start_soon(one, client, "first")
        with anyio.fail_after(5):
            # The server runs in another thread: polling is the simple way to wait for it.
            while not server.requests:  # noqa: ASYNC110
                await anyio.sleep(0.005)
        await anyio.sleep(0.05)  # let the 429 reach the client
        for n in range(5):
            group.start_soon(one, client.with_options(max_retries=0), f"other-{n}")

    assert len(results) == 6
    throttled = server.requests[0]
    later = server.requests[1:]
    assert len(later) == 6
    assert all(r.arrived >= throttled.arrived + 0.5 for r in later)


@pytest.mark.anyio
async def test_outside_cancellation_is_prompt_and_leaves_the_client_usable(
    server: ScriptedServer,
) -> None:
    server.script("stuck", stall())
    async with make_client(server, timeout=10.0, max_concurrency=1) as client:
        started = time.monotonic()
        with anyio.move_on_after(0.2) as scope:
            await client.cancel("stuck")
        elapsed = time.monotonic() - started

        assert scope.cancelled_caught
        assert elapsed < 5.0  # far below the 10 s timeout: the call did not run it out
        with anyio.fail_after(5):  # the only concurrency slot was given back
            result = await client.cancel("next")

    assert result.code == CancelCode.CANCELLED
    assert [r.message_id for r in server.requests] == ["stuck", "next"]


def test_client_used_in_a_second_event_loop_fails_clearly(server: ScriptedServer) -> None:
    server.default = reply(close=True)  # no kept-alive socket tied to the first loop
    client = make_client(server)

    async def first() -> CancelResult:
        return await client.cancel("1")

    async def second() -> None:
        with pytest.raises(MailPartnerError, match="another event loop"):
            await asyncio.wait_for(client.cancel("2"), 5)
        with pytest.raises(MailPartnerError, match="belong to the event loop that used it"):
            await client.aclose()

    assert asyncio.run(first()).code == CancelCode.CANCELLED
    asyncio.run(second())
    assert client.is_closed
    assert [r.message_id for r in server.requests] == ["1"]


def drop_and_collect(objects: list[Any]) -> None:
    objects.clear()
    gc.collect()


def test_unclosed_owned_client_warns_when_collected(server: ScriptedServer) -> None:
    clients = [make_client(server)]
    with pytest.warns(ResourceWarning, match="never closed"):
        drop_and_collect(clients)


@pytest.mark.anyio
async def test_client_with_user_http_client_does_not_warn_when_collected(
    server: ScriptedServer,
) -> None:
    async with httpx.AsyncClient() as http:
        client = make_client(server, http_client=http)
        await client.cancel("1")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del client
            gc.collect()

    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_closed_client_does_not_warn_when_collected(server: ScriptedServer) -> None:
    client = make_client(server)
    asyncio.run(client.aclose())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del client
        gc.collect()

    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


# --- batches -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_gather_of_5000_cancels_answers_every_call_within_max_concurrency(
    server: ScriptedServer,
) -> None:
    async with make_client(server, max_concurrency=4) as client:
        results = await asyncio.gather(*(client.cancel(i) for i in range(5000)))
    assert sorted(int(r.message_id) for r in results) == list(range(5000))
    assert all(r.code is CancelCode.CANCELLED for r in results)
    assert server.max_in_flight <= 4
    assert len(server.requests) == 5000


@pytest.mark.anyio
async def test_cancel_many_accepts_an_async_iterable(server: ScriptedServer) -> None:
    async def ids() -> AsyncIterator[int]:
        for i in range(25):
            await anyio.lowlevel.checkpoint()
            yield i

    async with make_client(server) as client:
        outcomes = await client.cancel_many(ids(), concurrency=4)
    assert [o.message_id for o in outcomes] == [str(i) for i in range(25)]
    assert all(o.ok for o in outcomes)


@pytest.mark.anyio
async def test_cancelling_the_consumer_stops_the_workers(server: ScriptedServer) -> None:
    for i in range(3, 50):
        server.script(str(i), stall(30))
    async with make_client(server, max_concurrency=10) as client:
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
    async with make_client(server) as client:
        async for _outcome in client.cancel_iter(range(1000), concurrency=8):
            break
        gc.collect()
        await asyncio.sleep(0.1)
        assert asyncio.all_tasks() == {asyncio.current_task()}


@pytest.mark.anyio
async def test_rate_limit_is_shared_by_with_options_copies(server: ScriptedServer) -> None:
    async with make_client(server, rate_limit=600) as client:  # one start every 0.1 s
        other = client.with_options(max_retries=0)
        async with anyio.create_task_group() as group:
            for i in range(3):
                group.start_soon(client.cancel, f"a{i}")
                group.start_soon(other.cancel, f"b{i}")
    starts = sorted(r.arrived for r in server.requests)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) == 6
    assert min(gaps) >= 0.1 - 0.02
