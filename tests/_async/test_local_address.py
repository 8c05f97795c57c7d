"""``local_address``: every connection a client makes leaves from the address it names.

Over real sockets on every transport (tests/support/transports.py): the test server
listens on 127.0.0.1 and records the peer of each connection; on Linux every
127.x.y.z address is on the loopback interface, so a client can leave from 127.0.0.2
or 127.0.0.3 and the server sees which. The sync twin is generated from this file.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mailpartner_async import APIConnectionError, AsyncMailPartner, ConfigurationError, RetryPolicy
from tests.support.server import ScriptedServer, reply
from tests.support.transports import CURRENT_TRANSPORT, use_transport

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="only Linux puts all of 127/8 on loopback"
)

KEY = "test-key-local-address"
FAST_RETRIES = RetryPolicy(initial_delay=0.01, max_delay=0.02)
# TEST-NET-1 (RFC 5737): never an address of this host.
NOT_OURS = "192.0.2.10"


@pytest.fixture
def server(server: ScriptedServer, client_transport: str) -> Iterator[ScriptedServer]:
    """The real server; this test's clients use ``client_transport``."""
    with use_transport(client_transport):
        yield server


def make_client(server: ScriptedServer, **options: Any) -> AsyncMailPartner:
    options.setdefault("base_url", server.base_url)
    options.setdefault("timeout", 5.0)
    options.setdefault("rate_limit", None)
    options.setdefault("retry_policy", FAST_RETRIES)
    if "http_client" not in options:
        options.setdefault("transport", CURRENT_TRANSPORT.get())
    return AsyncMailPartner(KEY, **options)


def peers(server: ScriptedServer, *message_ids: str) -> set[str]:
    return {r.peer for r in server.requests if r.message_id in message_ids}


@pytest.mark.anyio
@pytest.mark.parametrize("address", ["127.0.0.2", "127.0.0.3"])
async def test_every_connection_of_the_client_leaves_from_its_local_address(
    server: ScriptedServer, address: str
) -> None:
    # The first answer closes its connection: the next cancel opens another one.
    server.script("1", reply(close=True))
    async with make_client(server, local_address=address) as client:
        for message_id in ("1", "2", "3"):
            await client.cancel(message_id)

    assert len({r.connection for r in server.requests}) >= 2
    assert peers(server, "1", "2", "3") == {address}


@pytest.mark.anyio
async def test_two_clients_leave_each_from_its_own_address(server: ScriptedServer) -> None:
    async with (
        make_client(server, local_address="127.0.0.2") as first,
        make_client(server, local_address="127.0.0.3") as second,
    ):
        for n in range(3):
            await first.cancel(f"a{n}")
            await second.cancel(f"b{n}")

    assert peers(server, "a0", "a1", "a2") == {"127.0.0.2"}
    assert peers(server, "b0", "b1", "b2") == {"127.0.0.3"}


@pytest.mark.anyio
async def test_without_local_address_the_system_picks_the_source(server: ScriptedServer) -> None:
    async with make_client(server) as client:
        await client.cancel("1")
        assert client.local_address is None

    assert peers(server, "1") == {"127.0.0.1"}


@pytest.mark.anyio
async def test_an_address_this_host_lacks_fails_at_once_naming_it_and_is_not_retried(
    server: ScriptedServer,
) -> None:
    attempts: list[object] = []
    async with make_client(
        server, local_address=NOT_OURS, max_retries=3, on_attempt=attempts.append
    ) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.cancel("1")

    assert str(caught.value).startswith(
        "the connection could not leave from local_address: '192.0.2.10' is not an address "
        "of this host; not retried ("
    )
    assert (caught.value.request_sent, caught.value.transient) == (False, False)
    assert len(attempts) == 1
    assert server.requests == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("given", "kept"),
    [("127.0.0.2", "127.0.0.2"), ("0.0.0.0", "0.0.0.0"), ("2001:DB8:0::10", "2001:db8::10")],
)
async def test_the_client_keeps_the_address_in_its_canonical_form(
    server: ScriptedServer, given: str, kept: str
) -> None:
    # A host name: either IP version may reach it (nothing is sent here).
    base_url = "https://api.mailpartner.fr/v1"
    async with make_client(server, local_address=given, base_url=base_url) as client:
        assert client.local_address == kept


@pytest.mark.anyio
@pytest.mark.parametrize(
    "bad",
    [
        "mail.example.com",
        "",
        "1.2.3.4:80",
        "[::1]",
        2130706434,
        "127.0.0.2\n",
        "fe80::1%eth0",
        "::1",  # IPv6, for the server's IPv4 address
    ],
)
async def test_a_bad_local_address_is_refused_by_the_constructor(
    server: ScriptedServer, bad: object
) -> None:
    with pytest.raises(ConfigurationError, match="local_address"):
        make_client(server, local_address=bad)


@pytest.mark.anyio
async def test_local_address_with_your_own_http_client_is_refused_saying_where_to_set_it(
    server: ScriptedServer,
) -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ConfigurationError, match="set it on your client's transport"):
            make_client(server, http_client=http, local_address="127.0.0.2")


@pytest.mark.anyio
async def test_local_address_with_a_transport_object_that_connects_is_refused(
    server: ScriptedServer,
) -> None:
    own = httpx.AsyncHTTPTransport()
    try:
        with pytest.raises(ConfigurationError, match="set it on that transport instead"):
            make_client(server, transport=own, local_address="127.0.0.2")
    finally:
        await own.aclose()
