"""A sync attempt's blocking waits end by its deadline, against a server that drips
its answer a byte at a time.

A thread blocked in a read cannot be cancelled: the streams of the sync client's own
httpx transport clip each wait to what is left of the attempt's deadline. The async
twin of that transport is checked too, as the sync one is generated from it.
"""

from __future__ import annotations

import time

import httpx
import pytest

from mailpartner_async import APITimeoutError, MailPartner
from mailpartner_async._async.transports.httpx_pool import (
    ATTEMPT,
    AsyncAttempt,
    AsyncAttemptTransport,
)
from tests.hostile import HostileServer, drip
from tests.transports import TRANSPORTS

KEY = "waits-key-0123456789"
DEADLINE_SLACK = 0.75


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
