"""How a batch ends: one table of endings, run against the async and the sync client.

The table is the one in ``mailpartner_async/_async/batch.py``: whatever ends a
batch (close, break, an error in the consumer, an outside cancel or Ctrl+C), no id
starts afterwards and no retry follows; when the ids iterable fails, every id taken
still gets its outcome before ``IdsSourceError`` comes out.

The server answers ids ``fast-*`` at once and stalls on every other id, so when the
consumer ends the batch there are always calls in flight.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

from mailpartner_async import (
    AsyncMailPartner,
    CancelOutcome,
    IdsSourceError,
    MailPartner,
    RetryPolicy,
)
from tests.support.server import ScriptedServer, reply, stall

KEY = "endings-key-5150"
FAST = RetryPolicy(initial_delay=0.01, max_delay=0.02)
CONCURRENCY = 4
ATTEMPT_TIMEOUT = 0.4
ENDINGS = ["close", "break", "consumer_error", "interrupt"]


class ConsumerError(Exception):
    pass


def ids() -> Iterator[str]:
    """Three ids answered at once, then an endless supply of stalled ones."""
    yield from ("fast-0", "fast-1", "fast-2")
    number = 0
    while True:
        yield f"slow-{number}"
        number += 1


def failing_ids() -> Iterator[str]:
    yield from ("fast-0", "fast-1", "fast-2")
    raise ValueError("the id source broke")


def options(server: ScriptedServer) -> dict[str, Any]:
    return {
        "base_url": server.base_url,
        "rate_limit": None,
        "timeout": ATTEMPT_TIMEOUT,
        "max_retries": 3,
        "retry_policy": FAST,
    }


@pytest.fixture
def stalling_server(server: ScriptedServer) -> ScriptedServer:
    server.default = stall()
    for name in ("fast-0", "fast-1", "fast-2"):
        server.script(name, reply(200))
    return server


# --- each ending, written for each client ----------------------------------------------


async def end_async(client: AsyncMailPartner, ending: str) -> list[CancelOutcome]:
    got: list[CancelOutcome] = []
    if ending == "break":
        async for outcome in client.cancel_iter(ids(), concurrency=CONCURRENCY):
            got.append(outcome)
            if len(got) == 3:
                break
        return got
    if ending == "interrupt":
        with anyio.CancelScope() as scope:
            async with client.cancel_iter(ids(), concurrency=CONCURRENCY) as batch:
                async for outcome in batch:
                    got.append(outcome)
                    if len(got) == 3:
                        scope.cancel()  # lands while the consumer waits for the next one
        assert scope.cancelled_caught
        return got
    async with client.cancel_iter(ids(), concurrency=CONCURRENCY) as batch:
        async for outcome in batch:
            got.append(outcome)
            if len(got) == 3:
                if ending == "consumer_error":
                    raise ConsumerError
                await batch.aclose()
        assert [item async for item in batch] == []  # closed: nothing more comes
    return got


def end_sync(client: MailPartner, ending: str) -> list[CancelOutcome]:
    got: list[CancelOutcome] = []
    if ending == "break":
        for outcome in client.cancel_iter(ids(), concurrency=CONCURRENCY):
            got.append(outcome)
            if len(got) == 3:
                break
        return got
    if ending == "interrupt":
        # A shell may start us with SIGINT ignored (a background job): make it
        # raise KeyboardInterrupt, as at a terminal, for this test.
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            with pytest.raises(KeyboardInterrupt):
                consume_until_sigint(client, got)
        finally:
            signal.signal(signal.SIGINT, previous)
        return got
    with client.cancel_iter(ids(), concurrency=CONCURRENCY) as batch:
        for outcome in batch:
            got.append(outcome)
            if len(got) == 3:
                if ending == "consumer_error":
                    raise ConsumerError
                batch.close()
        assert list(batch) == []
    return got


def consume_until_sigint(client: MailPartner, got: list[CancelOutcome]) -> None:
    with client.cancel_iter(ids(), concurrency=CONCURRENCY) as batch:
        for outcome in batch:
            got.append(outcome)
            if len(got) == 3:
                # A real SIGINT, while the consumer waits for the next outcome.
                threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()


def run_ending(kind: str, backend: str, server: ScriptedServer, ending: str) -> list[CancelOutcome]:
    def body() -> list[CancelOutcome]:
        if kind == "sync":
            with MailPartner(KEY, **options(server)) as client:
                return end_sync(client, ending)

        async def main() -> list[CancelOutcome]:
            async with AsyncMailPartner(KEY, **options(server)) as client:
                return await end_async(client, ending)

        return anyio.run(main, backend=backend)

    if ending == "consumer_error":
        with pytest.raises(ConsumerError):
            body()
        return []
    return body()


@pytest.mark.parametrize("ending", ENDINGS)
@pytest.mark.parametrize("kind", ["async", "sync"])
def test_every_ending_stops_new_ids_and_retries_alike(
    kind: str, anyio_backend: str, stalling_server: ScriptedServer, ending: str
) -> None:
    server = stalling_server
    got = run_ending(kind, anyio_backend, server, ending)
    time.sleep(0.2)  # requests already on the wire when the batch ended arrive
    seen_at_end = len(server.requests)

    # Longer than an attempt's time-out plus a retry's backoff: a worker that kept
    # going would have started another id or retried a stalled one by now.
    time.sleep(ATTEMPT_TIMEOUT * 2.5)
    assert len(server.requests) == seen_at_end
    assert seen_at_end <= 3 + CONCURRENCY
    asked = [request.message_id for request in server.requests]
    assert len(asked) == len(set(asked)), "a stalled id was retried after the batch ended"
    if ending != "consumer_error":
        assert sorted(o.message_id for o in got) == ["fast-0", "fast-1", "fast-2"]
    assert not [t for t in threading.enumerate() if t.name.startswith("mailpartner-batch")]


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_a_failing_ids_source_raises_after_every_taken_id_got_its_outcome(
    kind: str, anyio_backend: str, stalling_server: ScriptedServer
) -> None:
    server = stalling_server
    got: list[str] = []

    async def consume_async() -> None:
        async with AsyncMailPartner(KEY, **options(server)) as client:
            async for outcome in client.cancel_iter(failing_ids(), concurrency=CONCURRENCY):
                got.append(outcome.message_id)

    def consume_sync() -> None:
        with MailPartner(KEY, **options(server)) as client:
            got.extend(o.message_id for o in client.cancel_iter(failing_ids()))

    consume = (
        consume_sync if kind == "sync" else lambda: anyio.run(consume_async, backend=anyio_backend)
    )
    with pytest.raises(IdsSourceError, match="raised ValueError after 3 ids") as caught:
        consume()
    assert isinstance(caught.value.__cause__, ValueError)
    assert sorted(got) == ["fast-0", "fast-1", "fast-2"]
    assert len(server.requests) == 3


# --- a batch that never started holds nothing ------------------------------------------


def collect_resource_warnings(body: Callable[[], None]) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        body()
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.mark.parametrize("how", ["dropped", "closed"])
def test_a_batch_dropped_or_closed_before_its_first_step_leaks_nothing(
    anyio_backend: str, how: str
) -> None:
    async def main() -> None:
        async with AsyncMailPartner(KEY, base_url="http://127.0.0.1:9/v1") as client:
            batch = client.cancel_iter(["1", "2"])
            if how == "closed":
                await batch.aclose()
            del batch
            gc.collect()

    assert collect_resource_warnings(lambda: anyio.run(main, backend=anyio_backend)) == []


def test_a_sync_batch_dropped_before_its_first_step_starts_no_thread() -> None:
    with MailPartner(KEY, base_url="http://127.0.0.1:9/v1") as client:
        batch = client.cancel_iter(["1", "2"])
        del batch
    assert not [t for t in threading.enumerate() if t.name.startswith("mailpartner-batch")]
