"""Through a SOCKS5 proxy, over real sockets (tests/support/socks.py), on every
transport that speaks SOCKS: opening the tunnel is opening the connection, bounded
by the attempt's connect time-out and deadline, and the connection to the proxy
leaves from the client's ``local_address``. The sync twin is generated from this file.

The proxy comes from the environment (``ALL_PROXY``), as the SDK reads it, and never
for a loopback base URL: the clients here name a host no resolver knows, which only
the proxy reaches (it relays every CONNECT to the test server).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mailpartner_async import APIConnectionError, APITimeoutError, AsyncMailPartner
from tests.support.server import ScriptedServer
from tests.support.socks import Mode, SocksProxy
from tests.support.transports import CURRENT_TRANSPORT, use_transport

pytest.importorskip("socksio", reason="httpx speaks SOCKS through socksio")

KEY = "socks-key-5f3b9d27c1"
BASE_URL = "http://api.mailpartner.test/v1"
TIMEOUT = 1.0
DEADLINE_SLACK = 0.75  # scheduling noise on a loaded machine


@pytest.fixture
def transport(client_transport: str) -> Iterator[str]:
    """The transport this test's clients use: those that speak SOCKS."""
    if client_transport == "aiohttp":
        pytest.skip("aiohttp speaks no SOCKS: the client refuses such a proxy (test_aiohttp_*)")
    with use_transport(client_transport):
        yield client_transport


def through(proxy: SocksProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment names ``proxy``, and no other, for every URL."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    monkeypatch.setenv("ALL_PROXY", proxy.url)


def make_client(**options: Any) -> AsyncMailPartner:
    return AsyncMailPartner(
        KEY,
        base_url=BASE_URL,
        allow_insecure_http=True,
        transport=CURRENT_TRANSPORT.get(),  # type: ignore[arg-type]
        timeout=TIMEOUT,
        rate_limit=None,
        **options,
    )


def texts(error: BaseException) -> Iterator[str]:
    """What ``error`` and every exception chained to it say."""
    seen: BaseException | None = error
    while seen is not None:
        yield str(seen)
        yield repr(seen)
        seen = seen.__cause__ or seen.__context__


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["silent", "close"])
async def test_a_proxy_that_never_opens_the_tunnel_is_a_connect_failure_within_the_timeout(
    transport: str, monkeypatch: pytest.MonkeyPatch, mode: Mode
) -> None:
    # The proxy takes the TCP connection, then never answers the greeting (or closes):
    # the request never left, as with a server that takes no connection.
    with SocksProxy(mode=mode) as proxy:
        through(proxy, monkeypatch)
        async with make_client(max_retries=0) as client:
            started = time.monotonic()
            with pytest.raises(APIConnectionError) as caught:
                await client.cancel("1")
            elapsed = time.monotonic() - started

    assert proxy.peers == ["127.0.0.1"]
    assert elapsed < TIMEOUT + DEADLINE_SLACK
    assert isinstance(caught.value, APITimeoutError) is (mode == "silent")
    assert (caught.value.request_sent, caught.value.transient) == (False, True)
    assert all(KEY not in text for text in texts(caught.value))


@pytest.mark.anyio
async def test_a_proxy_that_never_answers_is_retried_as_a_connect_time_out(
    transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SocksProxy(mode="silent") as proxy:
        through(proxy, monkeypatch)
        async with make_client(max_retries=1) as client:
            with pytest.raises(APITimeoutError) as caught:
                await client.cancel("1")

    assert len(proxy.peers) == 2
    assert caught.value.request_sent is False


@pytest.mark.anyio
async def test_through_a_proxy_a_request_reaches_the_server(
    transport: str, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SocksProxy(target=("127.0.0.1", server.port)) as proxy:
        through(proxy, monkeypatch)
        async with make_client() as client:
            result = await client.cancel("1")

    assert result.success
    assert proxy.destinations == [("api.mailpartner.test", 80)]
    [request] = server.requests
    assert request.message_id == "1"


@pytest.mark.anyio
@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="only Linux puts all of 127/8 on loopback"
)
@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
async def test_the_connection_to_the_proxy_leaves_from_the_local_address(
    transport: str, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    with SocksProxy(target=("127.0.0.1", server.port), scheme=scheme) as proxy:
        through(proxy, monkeypatch)
        async with make_client(local_address="127.0.0.3") as client:
            result = await client.cancel("1")

    assert proxy.peers == ["127.0.0.3"]
    assert result.success
    assert [request.message_id for request in server.requests] == ["1"]
