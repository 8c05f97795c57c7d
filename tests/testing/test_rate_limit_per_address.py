"""The fake's cap is per client address, as the provider's is: each address has its own
sliding window, in ``handle()`` and through the in-process transports (the client's
``local_address``, else 127.0.0.1), on both clients and both HTTP libraries.

Over real HTTP (``serve-fake``, the peer's address) it is tested in
tests/cli/test_cli_source_address.py.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mailpartner_async import AsyncMailPartner, CancelCode, MailPartner, RateLimitError
from mailpartner_async.testing import FAKE_BASE_URL, FakeMailPartner

ENDPOINT = "/v1/message-cancel"
CANCEL = [("apiKey", "test-key"), ("messageId", "1")]
LIBRARIES = ("httpx", "httpx2")


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def codes(fake: FakeMailPartner, address: str, count: int) -> list[int | None]:
    return [fake.handle("GET", ENDPOINT, CANCEL, client_address=address).code for _ in range(count)]


def test_each_client_address_gets_its_own_cap() -> None:
    fake = FakeMailPartner(rate_limit_per_minute=2, rate_clock=Ticker())

    assert codes(fake, "127.0.0.2", 3) == [4, 4, 429]
    assert codes(fake, "127.0.0.3", 3) == [4, 4, 429]
    assert codes(fake, "2001:db8::10", 3) == [4, 4, 429]
    assert codes(fake, "127.0.0.2", 1) == [429]


def test_without_an_address_a_request_counts_as_from_127_0_0_1() -> None:
    fake = FakeMailPartner(rate_limit_per_minute=2, rate_clock=Ticker())
    fake.handle("GET", ENDPOINT, CANCEL)  # an existing caller: no client_address

    assert codes(fake, "127.0.0.1", 2) == [4, 429]
    assert codes(fake, "127.0.0.2", 1) == [4]
    assert [r.client_address for r in fake.requests] == ["127.0.0.1"] * 3 + ["127.0.0.2"]


def test_each_address_window_slides_and_its_retry_after_is_its_own() -> None:
    ticker = Ticker()
    fake = FakeMailPartner(rate_limit_per_minute=1, rate_clock=ticker)
    codes(fake, "127.0.0.2", 1)  # t=1000
    ticker.now = 1030
    codes(fake, "127.0.0.3", 1)  # t=1030
    ticker.now = 1040

    first = fake.handle("GET", ENDPOINT, CANCEL, client_address="127.0.0.2")
    second = fake.handle("GET", ENDPOINT, CANCEL, client_address="127.0.0.3")

    assert dict(first.headers)["retry-after"] == "20"  # its request of t=1000 leaves at 1060
    assert dict(second.headers)["retry-after"] == "50"  # its request of t=1030, at 1090
    ticker.now = 1060
    assert codes(fake, "127.0.0.2", 1) == [4]
    assert codes(fake, "127.0.0.3", 1) == [429]
    ticker.now = 1090
    assert codes(fake, "127.0.0.3", 1) == [4]


def test_an_address_quiet_for_a_window_starts_again_with_its_whole_cap() -> None:
    ticker = Ticker()
    fake = FakeMailPartner(rate_limit_per_minute=2, rate_clock=ticker)
    assert codes(fake, "127.0.0.2", 3) == [4, 4, 429]
    ticker.now += 60
    assert codes(fake, "127.0.0.3", 1) == [4]  # forgets 127.0.0.2 on the way

    assert codes(fake, "127.0.0.2", 3) == [4, 4, 429]


def test_the_429_answer_keeps_its_form() -> None:
    fake = FakeMailPartner(rate_limit_per_minute=1, rate_clock=Ticker())
    codes(fake, "127.0.0.2", 1)

    refused = fake.handle("GET", ENDPOINT, CANCEL, client_address="127.0.0.2")

    assert (refused.status, refused.code) == (429, 429)
    assert refused.body == b'{"success": false, "code": 429, "message": "Too many requests"}'
    assert dict(refused.headers)["retry-after"] == "60"


def outcome_codes(outcomes: list[Any]) -> list[int]:
    return [o.result.code if o.ok else o.error.code for o in outcomes]


@pytest.mark.anyio
@pytest.mark.parametrize("library", LIBRARIES)
async def test_async_clients_leaving_from_two_addresses_each_get_the_whole_cap(
    library: str,
) -> None:
    fake = FakeMailPartner(schedule_unknown=True, rate_limit_per_minute=2, rate_clock=Ticker())
    options: dict[str, Any] = {"max_retries": 0, "transport": library}
    async with (
        fake.async_client(local_address="127.0.0.2", **options) as first,
        fake.async_client(local_address="127.0.0.3", **options) as second,
    ):
        for client in (first, second):
            outcomes = await client.cancel_many([f"{client.local_address}-{n}" for n in range(3)])
            assert sorted(outcome_codes(outcomes)) == [200, 200, 429]  # in any order
        assert first.local_address == "127.0.0.2"

    by_address = {(r.client_address, r.code) for r in fake.requests}
    assert by_address == {(a, c) for a in ("127.0.0.2", "127.0.0.3") for c in (200, 429)}


@pytest.mark.parametrize("library", LIBRARIES)
def test_sync_clients_leaving_from_two_addresses_each_get_the_whole_cap(library: str) -> None:
    fake = FakeMailPartner(schedule_unknown=True, rate_limit_per_minute=2, rate_clock=Ticker())
    for address in ("127.0.0.2", "127.0.0.3"):
        with fake.client(local_address=address, max_retries=0, transport=library) as client:
            client.cancel(f"{address}-1")
            client.cancel(f"{address}-2")
            with pytest.raises(RateLimitError):
                client.cancel(f"{address}-3")

    assert [r.client_address for r in fake.requests] == ["127.0.0.2"] * 3 + ["127.0.0.3"] * 3


@pytest.mark.anyio
async def test_a_client_built_on_the_fakes_transport_object_counts_as_its_local_address() -> None:
    fake = FakeMailPartner(schedule_unknown=True, rate_limit_per_minute=1, rate_clock=Ticker())
    transport = fake.async_transport()  # one transport, shared by two clients
    options: dict[str, Any] = {"base_url": FAKE_BASE_URL, "rate_limit": None, "max_retries": 0}
    async with (
        AsyncMailPartner(
            "test-key", transport=transport, local_address="127.0.0.2", **options
        ) as a,
        AsyncMailPartner(
            "test-key", transport=transport, local_address="127.0.0.3", **options
        ) as b,
        AsyncMailPartner("test-key", transport=transport, **options) as c,
    ):
        results = [await client.cancel(f"t{n}") for n, client in enumerate((a, b, c))]

    assert [r.code for r in results] == [CancelCode.CANCELLED] * 3
    assert [r.client_address for r in fake.requests] == ["127.0.0.2", "127.0.0.3", "127.0.0.1"]


def test_a_plain_httpx_client_on_the_fakes_transport_counts_as_127_0_0_1() -> None:
    fake = FakeMailPartner(schedule_unknown=True)
    with httpx.Client(transport=fake.transport()) as http:
        http.get(f"{FAKE_BASE_URL}/message-cancel", params={"apiKey": "k", "messageId": "1"})

    [record] = fake.requests
    assert record.client_address == "127.0.0.1"
    assert "client_address='127.0.0.1'" in repr(record)


def test_the_sync_client_on_your_own_fake_transport_takes_local_address_too() -> None:
    fake = FakeMailPartner(schedule_unknown=True)
    with MailPartner(
        "test-key", base_url=FAKE_BASE_URL, transport=fake.transport(), local_address="::1"
    ) as client:
        client.cancel("v6")

    assert [r.client_address for r in fake.requests] == ["::1"]
