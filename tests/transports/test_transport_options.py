"""How each client picks and checks its transport: the library's client kinds, TLS
settings and proxies read once, and a bug that still gives every id its outcome."""

from __future__ import annotations

import ssl
import sys
from typing import Any

import httpx
import httpx2
import pytest

from mailpartner_async import AsyncMailPartner, ConfigurationError, MailPartner, MailPartnerError
from mailpartner_async._async.transports import http_aiohttp
from mailpartner_async._sync.transports import environment, http_httpx, http_httpx2
from tests.support.hostile import CountingServer
from tests.support.server import ScriptedServer

KEY = "transport-key-31337"


@pytest.mark.parametrize(
    "http_client", [httpx.Client(), httpx2.Client()], ids=["httpx.Client", "httpx2.Client"]
)
def test_the_async_client_refuses_a_sync_http_client(http_client: Any) -> None:
    with http_client, pytest.raises(ConfigurationError, match=r"must be an httpx2?\.AsyncClient"):
        AsyncMailPartner(KEY, http_client=http_client)


@pytest.mark.anyio
@pytest.mark.parametrize("library", ["httpx", "httpx2"])
async def test_the_sync_client_refuses_an_async_http_client(library: str) -> None:
    module: Any = httpx if library == "httpx" else httpx2
    async with module.AsyncClient() as http_client:
        with pytest.raises(ConfigurationError, match=r"must be an httpx2?\.Client"):
            MailPartner(KEY, http_client=http_client)


def test_an_http_client_and_another_transport_name_exclude_each_other() -> None:
    with httpx.Client() as http_client, pytest.raises(ConfigurationError, match="not both"):
        MailPartner(KEY, http_client=http_client, transport="httpx2")


@pytest.mark.anyio
async def test_an_http_client_and_the_aiohttp_transport_exclude_each_other() -> None:
    async with httpx2.AsyncClient() as http_client:
        with pytest.raises(ConfigurationError, match="not both"):
            AsyncMailPartner(KEY, http_client=http_client, transport="aiohttp")


@pytest.mark.parametrize(
    "module", [http_httpx, http_httpx2, http_aiohttp], ids=["httpx", "httpx2", "aiohttp"]
)
def test_https_gets_a_verifying_tls_context_and_plain_http_none(module: Any) -> None:
    context = module.ssl_context("https://api.mailpartner.fr/v1")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert module.ssl_context("http://127.0.0.1:8025/v1") is None


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"HTTPS_PROXY": "http://proxy.test:3128"}, "http://proxy.test:3128"),
        ({"ALL_PROXY": "socks5://proxy.test:1080"}, "socks5://proxy.test:1080"),
        ({"HTTPS_PROXY": "http://proxy.test:3128", "NO_PROXY": "mailpartner.fr"}, None),
        ({"HTTP_PROXY": "http://proxy.test:3128"}, None),  # not for an https URL
        ({}, None),
    ],
)
def test_the_proxy_is_the_environments_for_the_base_urls_scheme(
    variables: dict[str, str], expected: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert environment.proxy_for("https://api.mailpartner.fr/v1") == expected


@pytest.mark.parametrize("transport", ["httpx", "httpx2"])
def test_the_sync_clients_own_transport_goes_through_the_environments_proxy(
    transport: str, counting: CountingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", counting.url)
    client = MailPartner(
        KEY,
        base_url="http://api.mailpartner.test/v1",
        allow_insecure_http=True,
        transport=transport,  # type: ignore[arg-type]
        max_retries=0,
        rate_limit=None,
    )
    with client, pytest.raises(MailPartnerError):
        client.cancel("1")  # the proxy answers 502

    [seen] = counting.requests
    assert seen.request_line.startswith("GET http://api.mailpartner.test/v1/message-cancel?")


@pytest.mark.parametrize("client_class", [AsyncMailPartner, MailPartner])
@pytest.mark.parametrize("transport", ["httpx", "httpx2"])
def test_a_socks_proxy_without_socksio_is_a_configuration_error_on_either_client(
    client_class: Any, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "socksio", None)  # as if it were not installed
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("ALL_PROXY", "socks5://proxy.test:1080")
    with pytest.raises(ConfigurationError) as caught:
        client_class(KEY, transport=transport)
    assert caught.value.message == (
        "the environment names a SOCKS proxy (socks5://...), which needs the socksio "
        "package: pip install socksio"
    )


@pytest.mark.parametrize("transport", ["httpx", "httpx2"])
def test_a_client_for_an_https_api_builds_without_a_network(transport: str) -> None:
    with MailPartner(KEY, transport=transport) as client:  # type: ignore[arg-type]
        assert client.base_url == "https://api.mailpartner.fr/v1"


class UnprintableId(int):
    """An id whose text cannot be made: a bug on the caller's side, not a control code."""

    def __str__(self) -> str:
        raise RuntimeError("no text for this id")


def test_an_id_that_breaks_the_sdk_still_gets_its_own_outcome(server: ScriptedServer) -> None:
    with MailPartner(KEY, base_url=server.base_url, rate_limit=None) as client:
        outcomes = client.cancel_many([UnprintableId(7), "8"])

    broken, fine = outcomes
    assert isinstance(broken.error, MailPartnerError)
    assert str(broken.error).startswith("unexpected RuntimeError while cancelling")
    assert isinstance(broken.error.__cause__, RuntimeError)
    assert broken.message_id == "<unprintable UnprintableId>"
    assert fine.ok
    assert [request.message_id for request in server.requests] == ["8"]


def test_the_sync_client_refuses_the_aiohttp_transport_saying_why() -> None:
    with pytest.raises(ConfigurationError) as caught:
        MailPartner(KEY, transport="aiohttp")
    assert caught.value.message == (
        "transport='aiohttp' is for AsyncMailPartner on asyncio; MailPartner uses httpx"
    )


NAMES = "'httpx', 'httpx2', 'aiohttp'"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("client_class", "make_transport", "message"),
    [
        (
            MailPartner,
            httpx.AsyncHTTPTransport,
            f"transport must be a name ({NAMES}) or an httpx transport of the client's kind "
            "(async or sync), got AsyncHTTPTransport",
        ),
        (
            MailPartner,
            httpx2.AsyncHTTPTransport,
            f"transport must be a name ({NAMES}) or an httpx2 transport of the client's kind "
            "(async or sync), got AsyncHTTPTransport",
        ),
        (
            AsyncMailPartner,
            httpx.HTTPTransport,
            f"transport must be a name ({NAMES}) or an httpx transport of the client's kind "
            "(async or sync), got HTTPTransport",
        ),
        (
            AsyncMailPartner,
            httpx2.HTTPTransport,
            f"transport must be a name ({NAMES}) or an httpx2 transport of the client's kind "
            "(async or sync), got HTTPTransport",
        ),
        (
            MailPartner,
            object,
            f"transport must be a name ({NAMES}) or an httpx transport of the client's kind "
            "(async or sync), got object",
        ),
    ],
)
async def test_a_transport_object_of_the_other_kind_is_refused_naming_its_class(
    client_class: Any, make_transport: Any, message: str
) -> None:
    transport = make_transport()
    with pytest.raises(ConfigurationError) as caught:
        client_class(KEY, transport=transport)
    assert caught.value.message == message
    if hasattr(transport, "aclose"):
        await transport.aclose()
    elif hasattr(transport, "close"):
        transport.close()


class BrokenTransport(httpx.BaseTransport):
    """A transport of the caller's with a bug: it raises what no HTTP library would."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise RuntimeError("bug in the caller's transport")


def test_a_bug_in_a_transport_object_surfaces_as_itself_and_as_that_ids_outcome() -> None:
    with MailPartner(KEY, transport=BrokenTransport(), rate_limit=None) as client:
        with pytest.raises(RuntimeError, match="bug in the caller's transport"):
            client.cancel("1")
        [outcome] = client.cancel_many(["2"])

    assert isinstance(outcome.error, MailPartnerError)
    assert str(outcome.error).startswith("unexpected RuntimeError while cancelling")
    assert isinstance(outcome.error.__cause__, RuntimeError)
