"""``--sandbox``: the in-process fake a rehearsal runs against, as strict as the provider.

The fake caps requests at the provider's 2,000 a minute (per client address: one
process is one address here) and answers code 429 past it; the client paces itself
at ``--rate-limit`` and waits out a ``Retry-After`` with the SDK's real backoff. So a
rehearsal takes as long as the real run, its plan says so, and ``--rate-limit none``
meets the 429s the provider would send.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .._core.settings import DEFAULT_RATE_LIMIT

if TYPE_CHECKING:
    from .. import AsyncMailPartner
    from .._core.settings import ResponseFormat
    from ..testing import FakeMailPartner

__all__ = ["PROVIDER_RATE_CAP", "sandbox_client", "sandbox_fake"]

PROVIDER_RATE_CAP: Final = DEFAULT_RATE_LIMIT
"""Requests a minute the provider serves per client address before code 429."""


def sandbox_fake() -> FakeMailPartner:
    """The sandbox's fake: every id unknown to it is scheduled an hour ahead."""
    from ..testing import FakeMailPartner

    return FakeMailPartner(schedule_unknown=True, rate_limit_per_minute=PROVIDER_RATE_CAP)


def sandbox_client(
    fake: FakeMailPartner,
    *,
    rate_limit: int | None,
    response_format: ResponseFormat,
    local_address: str | None = None,
) -> AsyncMailPartner:
    """A client of ``fake`` paced at ``rate_limit`` a minute, with the real backoff;
    the fake counts its requests as coming from ``local_address``."""
    return fake.async_client(
        response_format=response_format,
        rate_limit=rate_limit,
        fast_retries=False,
        local_address=local_address,
    )
