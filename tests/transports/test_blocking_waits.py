"""A sync attempt's blocking waits end: by its deadline, against a server that drips
its answer a byte at a time, and at once when its batch stops, even on a server that
never answers.

A thread blocked in a read cannot be cancelled. The streams of the sync client's own
httpx transport clip each wait to what is left of the attempt's deadline, and the
batch's stop shuts down the socket of each attempt in flight (the transport registers
them with the stop). The async twin of that transport is checked too, as the sync one
is generated from it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator

import anyio
import httpx
import pytest

from mailpartner_async import APIConnectionError, APITimeoutError, MailPartner
from mailpartner_async._async.ids import AsyncStop
from mailpartner_async._async.transports.httpx_pool import (
    ATTEMPT,
    AsyncAttempt,
    AsyncAttemptTransport,
)
from mailpartner_async._core.protocol import build_request
from mailpartner_async._core.settings import Settings
from mailpartner_async._sync.ids import Stop
from mailpartner_async._sync.transports import open_transport
from tests.support.hostile import HostileServer, drip
from tests.support.socks import SocksProxy
from tests.support.transports import TRANSPORTS

KEY = "waits-key-0123456789"
DEADLINE_SLACK = 0.75
IDS = ["1", "2", "3", "4"]
TIMEOUT = 3.0  # what a stop that waited for the reads would cost
PROMPT = 1.0  # 0.5 s promised, plus scheduling noise on a loaded machine


# --- the deadline ----------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_sync_attempt_ends_by_its_deadline_on_a_server_dripping_its_head(
    hostile: HostileServer, transport: str
) -> None:
    # A byte every 0.3 s never lets a 1 s read time-out fire: the deadline ends it.
    hostile.default = drip("head", every=0.3)
    with MailPartner(
        KEY,
        base_url=hostile.base_url,
        transport=transport,  # type: ignore[arg-type]
        timeout=1.0,
        max_retries=0,
        rate_limit=None,
    ) as client:
        started = time.monotonic()
        with pytest.raises(APITimeoutError) as caught:
            client.cancel("1")
        elapsed = time.monotonic() - started

    assert caught.value.request_sent is True
    assert elapsed < 1.0 + DEADLINE_SLACK


@pytest.mark.anyio
async def test_the_async_attempt_transport_clips_its_waits_as_the_sync_one(
    hostile: HostileServer,
) -> None:
    hostile.default = drip("head", every=0.3)
    limits = httpx.Limits(max_connections=2)
    async with httpx.AsyncClient(transport=AsyncAttemptTransport(None, limits, None)) as http:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await http.get(hostile.base_url, extensions={ATTEMPT: AsyncAttempt(deadline=1.0)})
        assert time.monotonic() - started < 1.0 + DEADLINE_SLACK


# --- the stop ----------------------------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose server accepts every connection and never sends a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # the listener closed: the test is over
                return
            accepted.append(connection)

    thread = threading.Thread(target=accept, name="silent-server", daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (closing would not)
        listener.close()
        thread.join(timeout=5)
        for connection in accepted:
            connection.close()


def silent_client(port: int, transport: str) -> MailPartner:
    return MailPartner(
        KEY,
        base_url=f"http://127.0.0.1:{port}/v1",
        transport=transport,  # type: ignore[arg-type]
        timeout=TIMEOUT,
        max_retries=3,
        rate_limit=None,
    )


def sdk_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("mailpartner-")]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_closing_a_sync_batch_stuck_on_a_silent_server_returns_at_once(
    silent_port: int, transport: str
) -> None:
    closed_at: list[float] = []
    with silent_client(silent_port, transport) as client:
        with client.cancel_iter(IDS, concurrency=len(IDS)) as outcomes:

            def close_soon() -> None:
                time.sleep(0.3)  # every id's request is on the wire by now
                closed_at.append(time.monotonic())
                outcomes.close()

            closer = threading.Thread(target=close_soon)
            closer.start()
            assert list(outcomes) == []  # the outcomes in flight are dropped
        returned_at = time.monotonic()
        closer.join()
        assert sdk_threads() == []

    assert returned_at - closed_at[0] < PROMPT


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_closing_a_sync_batch_stuck_on_a_silent_socks_proxy_returns_at_once(
    transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The proxy takes each connection and never answers the greeting: the batch's stop
    # shuts the connections still being opened, as those already open.
    pytest.importorskip("socksio", reason="httpx speaks SOCKS through socksio")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    closed_at: list[float] = []
    with SocksProxy(mode="silent") as proxy:
        monkeypatch.setenv("ALL_PROXY", proxy.url)
        client = MailPartner(
            KEY,
            base_url="http://api.mailpartner.test/v1",
            allow_insecure_http=True,
            transport=transport,  # type: ignore[arg-type]
            timeout=TIMEOUT,
            max_retries=3,
            rate_limit=None,
        )
        with client, client.cancel_iter(IDS, concurrency=len(IDS)) as outcomes:

            def close_soon() -> None:
                time.sleep(0.3)  # every id's connection is at the proxy by now
                closed_at.append(time.monotonic())
                outcomes.close()

            closer = threading.Thread(target=close_soon)
            closer.start()
            assert list(outcomes) == []
            returned_at = time.monotonic()
            closer.join()
        assert len(proxy.peers) == len(IDS)

    assert returned_at - closed_at[0] < PROMPT


def consume(client: MailPartner) -> None:
    with client.cancel_iter(IDS, concurrency=len(IDS)) as outcomes:
        for _ in outcomes:
            pytest.fail("a silent server gave an outcome")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_ctrl_c_in_a_sync_batch_on_a_silent_server_returns_at_once(
    silent_port: int, transport: str
) -> None:
    # A shell may start us with SIGINT ignored (a background job): make it raise
    # KeyboardInterrupt, as at a terminal.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    sent_at: list[float] = []

    def interrupt() -> None:
        sent_at.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    try:
        with silent_client(silent_port, transport) as client:
            timer = threading.Timer(0.3, interrupt)
            timer.start()
            with pytest.raises(KeyboardInterrupt):
                consume(client)
            returned_at = time.monotonic()
            timer.join()
            assert sdk_threads() == []
    finally:
        signal.signal(signal.SIGINT, previous)

    assert returned_at - sent_at[0] < PROMPT


def test_a_stop_calls_each_abort_once_and_one_added_after_it_at_once() -> None:
    calls: list[str] = []
    stop = Stop()
    stop.add(lambda: calls.append("kept"))
    gone = lambda: calls.append("discarded")  # noqa: E731
    stop.add(gone)
    stop.discard(gone)

    stop.set()
    stop.set()
    assert calls == ["kept"]
    stop.add(lambda: calls.append("late"))
    assert calls == ["kept", "late"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_aborted_attempt_fails_saying_the_batch_stopped(
    silent_port: int, transport: str
) -> None:
    base_url = f"http://127.0.0.1:{silent_port}/v1"
    settings = Settings.create(
        api_key=KEY,
        base_url=base_url,
        timeout=TIMEOUT,
        max_retries=0,
        response_format="json",
        max_concurrency=None,
        rate_limit=None,
        allow_insecure_http=False,
        transport=transport,
        retry_policy=None,
    )
    sender = open_transport(settings, None)
    request = build_request(base_url, settings.api_key, "7", "json")
    stop = Stop()
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    try:
        with pytest.raises(APIConnectionError) as caught:
            sender.send(request, settings.timeout, stop)
    finally:
        sender.close()

    assert time.monotonic() - started < PROMPT
    assert caught.value.message == "the batch stopped while this attempt was in flight"
    assert caught.value.request_sent is True


@pytest.mark.anyio
async def test_the_async_attempt_transport_aborts_as_the_sync_one(silent_port: int) -> None:
    limits = httpx.Limits(max_connections=2)
    async with httpx.AsyncClient(transport=AsyncAttemptTransport(None, limits, None)) as http:
        stuck = AsyncAttempt(deadline=None)
        stop = AsyncStop()
        stop.add(stuck.abort)
        with anyio.fail_after(PROMPT):
            async with anyio.create_task_group() as group:
                group.start_soon(_stop_after, stop, 0.2)
                with pytest.raises(httpx.RemoteProtocolError):
                    await http.get(f"http://127.0.0.1:{silent_port}/", extensions={ATTEMPT: stuck})
    assert stuck.aborted


async def _stop_after(stop: AsyncStop, seconds: float) -> None:
    await anyio.sleep(seconds)
    stop.set()
