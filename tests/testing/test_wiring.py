"""The ways in: SDK clients, raw httpx transports; their defaults and their closing."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import timedelta

import anyio
import httpx
import pytest

from mailpartner_async import (
    APIError,
    AsyncMailPartner,
    AuthenticationError,
    CancelCode,
    MailPartner,
)
from mailpartner_async._async.transports.http_httpx import AsyncHttpxTransport
from mailpartner_async._sync.transports.http_httpx import HttpxTransport
from mailpartner_async.testing import FAKE_BASE_URL, FakeMailPartner

URL = FAKE_BASE_URL + "/message-cancel"


@pytest.mark.anyio
async def test_async_client_is_a_real_client_with_the_fakes_defaults(
    fake: FakeMailPartner,
) -> None:
    async with fake.async_client() as client:
        assert isinstance(client, AsyncMailPartner)
        assert client.base_url == FAKE_BASE_URL
        assert client.rate_limit is None
        await client.cancel(fake.schedule(timedelta(hours=1)))
    assert fake.requests[0].api_key == "test-key"


def test_sync_client_is_a_real_client_with_the_fakes_defaults(fake: FakeMailPartner) -> None:
    with fake.client() as client:
        assert isinstance(client, MailPartner)
        assert (client.base_url, client.rate_limit) == (FAKE_BASE_URL, None)
        client.cancel(fake.schedule(timedelta(hours=1)))
    assert fake.requests[0].api_key == "test-key"


@pytest.mark.anyio
async def test_async_client_options_reach_the_constructor() -> None:
    fake = FakeMailPartner("other-key")
    async with fake.async_client(rate_limit=100, max_retries=0, timeout=2.0) as client:
        assert (client.rate_limit, client.max_retries) == (100, 0)
        assert client.timeout.read == 2.0
        await client.cancel(fake.schedule(timedelta(hours=1)))
    assert fake.requests[0].api_key == "other-key"


def test_sync_client_with_another_key_gets_code_10(fake: FakeMailPartner) -> None:
    with fake.client(api_key="wrong") as client, pytest.raises(AuthenticationError) as caught:
        client.cancel(fake.schedule(timedelta(hours=1)))
    assert caught.value.code == CancelCode.INVALID_API_KEY


def test_clients_refuse_an_http_client(fake: FakeMailPartner) -> None:
    with pytest.raises(TypeError, match="async_transport"):
        fake.async_client(http_client=object())
    with pytest.raises(TypeError, match="transport"):
        fake.client(http_client=object())


@pytest.mark.anyio
async def test_closing_the_client_closes_the_http_client_made_for_it(
    fake: FakeMailPartner,
) -> None:
    client = fake.async_client()
    transport = client._pool.transport
    assert isinstance(transport, AsyncHttpxTransport)
    http = transport.http
    await client.aclose()
    assert client.is_closed
    assert http.is_closed
    with fake.client() as sync_client:
        sync_transport = sync_client._pool.transport
        assert isinstance(sync_transport, HttpxTransport)
        sync_http = sync_transport.http
    assert sync_http.is_closed


@pytest.mark.anyio
async def test_raw_async_transport_answers_without_the_sdk(fake: FakeMailPartner) -> None:
    async with httpx.AsyncClient(transport=fake.async_transport()) as http:
        no_key = await http.get(URL, params={"messageId": "1"})
        wrong_path = await http.get(FAKE_BASE_URL + "/nope")
        wrong_method = await http.post(URL)
    assert (no_key.status_code, no_key.json()["code"]) == (400, 1)
    assert wrong_path.status_code == 404
    assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "GET")


def test_raw_sync_transport_raises_httpx_errors_for_transport_faults(
    fake: FakeMailPartner,
) -> None:
    fake.fail_next(1, "connect_error")
    fake.fail_next(1, "timeout")
    with httpx.Client(transport=fake.transport()) as http:
        with pytest.raises(httpx.ConnectError):
            http.get(URL)
        with pytest.raises(httpx.ReadTimeout):
            http.get(URL)
        assert http.get(URL).json()["code"] == 1


@pytest.mark.anyio
async def test_many_concurrent_cancels_on_one_client_each_cancel_once(
    fake: FakeMailPartner,
) -> None:
    ids = [fake.schedule(timedelta(hours=1)) for _ in range(200)]
    async with fake.async_client(max_concurrency=20) as client:
        outcomes = await client.cancel_many(ids + ids)
    codes: Counter[int] = Counter()
    for outcome in outcomes:
        if outcome.result is not None:
            codes[outcome.result.code] += 1
        else:
            assert isinstance(outcome.error, APIError)
            codes[outcome.error.code] += 1
    assert codes == {CancelCode.CANCELLED: 200, CancelCode.ALREADY_CANCELLED: 200}
    assert {fake.status(i) for i in ids} == {"cancelled"}


@pytest.mark.anyio
async def test_outside_cancellation_leaves_the_fake_client_usable(
    fake: FakeMailPartner,
) -> None:
    message_id = fake.schedule(timedelta(hours=1))
    async with fake.async_client() as client:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await client.cancel(message_id)
        result = await client.cancel(message_id)
    assert result.code == CancelCode.CANCELLED


def test_importing_the_toolkit_does_not_import_pytest() -> None:
    code = "import sys, mailpartner_async.testing; print('pytest' in sys.modules)"
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
    assert done.stdout.strip() == "False"
