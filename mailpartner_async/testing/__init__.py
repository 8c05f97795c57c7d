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

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
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
    from ._logging import RedactAPIKeyFilter, uvicorn_log_config

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
    "RedactAPIKeyFilter",
    "uvicorn_log_config",
]

# Where each name lives, imported on first use (PEP 562): pytest imports this package,
# the plugin's parent, in every run of every project that installs the SDK, so it
# loads nothing until a name is used.
_EXPORTS: dict[str, str] = {
    "CANCEL_CUTOFF": "._fake",
    "FAKE_BASE_URL": "._fake",
    "FAST_RETRY_POLICY": "._fake",
    "FakeASGIApp": "._asgi",
    "FakeAsyncTransport": ".._async.fake_transport",
    "FakeClock": "._clock",
    "FakeMailPartner": "._fake",
    "FakeResponse": "._answers",
    "FakeTransport": ".._sync.fake_transport",
    "FaultKind": "._fake",
    "MessageStatus": "._fake",
    "RecordedRequest": "._fake",
    "RedactAPIKeyFilter": "._logging",
    "uvicorn_log_config": "._logging",
}

if not TYPE_CHECKING:  # type checkers read the imports above
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
