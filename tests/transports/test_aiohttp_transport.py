"""The aiohttp transport (extra ``aiohttp``): same behaviours, asyncio only."""

from __future__ import annotations

import logging

import anyio
import pytest

from mailpartner_async import (
    AlreadyCancelledError,
    APIConnectionError,
    AsyncMailPartner,
    CancelCode,
    ConfigurationError,
    MessageNotFoundError,
    RetryPolicy,
)
from tests.support.server import ScriptedServer, drop, reply, unused_port

KEY = "aiohttp-key-31337"
FAST = RetryPolicy(initial_delay=0.01, max_delay=0.02)


def _client(base_url: str, **options: object) -> AsyncMailPartner:
    return AsyncMailPartner(
        KEY,
        base_url=base_url,
        transport="aiohttp",
        rate_limit=None,
        retry_policy=FAST,
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.asyncio
async def test_aiohttp_transport_cancels_and_maps_codes(server: ScriptedServer) -> None:
    server.script("404", reply(4))
    async with _client(server.base_url) as client:
        result = await client.cancel("300&apiKey=x")
        with pytest.raises(MessageNotFoundError):
            await client.cancel("404")
        outcomes = await client.cancel_many([str(i) for i in range(50)], concurrency=8)
    assert result.code is CancelCode.CANCELLED
    assert server.requests[0].message_id == "300&apiKey=x"
    assert all(o.ok for o in outcomes)
    assert server.requests[0].headers["user-agent"].startswith("mailpartner-async/")


@pytest.mark.asyncio
async def test_aiohttp_dropped_answer_then_code_5_is_our_success(server: ScriptedServer) -> None:
    # The request was sent before the server dropped it, so a code 5 on the retry
    # means our first attempt cancelled it; aiohttp must not re-send it unseen.
    server.script("1", drop(), reply(5))
    async with _client(server.base_url) as client:
        result = await client.cancel("1")
    assert result.code is CancelCode.ALREADY_CANCELLED
    assert result.attempts == 2


@pytest.mark.asyncio
async def test_aiohttp_connect_error_then_code_5_is_not_ours() -> None:
    async with _client(f"http://127.0.0.1:{unused_port()}/v1", max_retries=0) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.cancel("1")
    assert caught.value.request_sent is False


@pytest.mark.asyncio
async def test_aiohttp_code_5_without_earlier_attempt_raises(server: ScriptedServer) -> None:
    server.script("1", reply(5))
    async with _client(server.base_url) as client:
        with pytest.raises(AlreadyCancelledError):
            await client.cancel("1")


@pytest.mark.asyncio
async def test_aiohttp_transport_never_logs_the_key(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script("1", drop(), reply(200))
    async with _client(server.base_url) as client:
        await client.cancel("1")
    assert caplog.records
    assert KEY not in caplog.text


def test_aiohttp_transport_refuses_trio() -> None:
    async def main() -> None:
        async with _client("http://127.0.0.1:9/v1") as client:
            await client.cancel("1")

    with pytest.raises(ConfigurationError, match="asyncio only"):
        anyio.run(main, backend="trio")


def test_transport_and_http_client_exclude_each_other() -> None:
    import httpx

    with pytest.raises(ConfigurationError):
        AsyncMailPartner(KEY, http_client=httpx.AsyncClient(), transport="aiohttp")


@pytest.mark.parametrize("proxy", ["socks5://127.0.0.1:1080", "socks5h://proxy.test:1080"])
def test_aiohttp_refuses_a_socks_proxy_from_the_environment_saying_which_transports_can(
    proxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # aiohttp speaks no SOCKS: it would send the request to the proxy as to an HTTP one.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("ALL_PROXY", proxy)
    with pytest.raises(ConfigurationError) as caught:
        _client("https://api.mailpartner.fr/v1")
    scheme = proxy.partition("://")[0]
    assert caught.value.message == (
        f"the environment names a {scheme}:// proxy, which aiohttp cannot use: "
        "use transport='httpx' or 'httpx2', which speak SOCKS"
    )
