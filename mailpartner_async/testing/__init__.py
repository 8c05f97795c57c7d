"""Test your own code against a faithful fake of the Mail Partner API, not hand-written mocks.

:class:`FakeMailPartner` keeps scheduled messages in memory and answers
``message-cancel`` as the provider does (every control code, the 5-minute rule
against a clock you control, JSON and positional XML, a per-minute cap, injected
faults). Reach it through real SDK clients wired in process (``fake.async_client()``,
``fake.client()``), raw httpx transports, or over real HTTP as an ASGI app. With the
``testing`` extra installed, pytest gets the ``mailpartner_fake`` fixture.

Example::

    from datetime import timedelta

    async def test_cancel_campaign(mailpartner_fake):
        message_id = mailpartner_fake.schedule(timedelta(hours=1))
        async with mailpartner_fake.async_client() as client:
            await cancel_campaign(client, [message_id])  # your code
        assert mailpartner_fake.status(message_id) == "cancelled"
"""

from .._async.fake_transport import FakeAsyncTransport
from .._sync.fake_transport import FakeTransport
from ._answers import FakeResponse
from ._asgi import FakeASGIApp
from ._clock import FakeClock
from ._fake import (
    CANCEL_CUTOFF,
    FAKE_BASE_URL,
    FAST_RETRY_POLICY,
    FakeMailPartner,
    FaultKind,
    MessageStatus,
    RecordedRequest,
)

__all__ = [
    "CANCEL_CUTOFF",
    "FAKE_BASE_URL",
    "FAST_RETRY_POLICY",
    "FakeASGIApp",
    "FakeAsyncTransport",
    "FakeClock",
    "FakeMailPartner",
    "FakeResponse",
    "FakeTransport",
    "FaultKind",
    "MessageStatus",
    "RecordedRequest",
]
