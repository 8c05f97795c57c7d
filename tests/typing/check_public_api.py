"""Type-checks the public API as users write it (run by pyright and mypy, never executed)."""

from __future__ import annotations

from typing import assert_type

import httpx

import mailpartner_async
from mailpartner_async import (
    APIError,
    AsyncMailPartner,
    CancelCode,
    CancelOutcome,
    CancelResult,
    MailPartner,
    MailPartnerError,
    RateLimitError,
    UnexpectedResponseError,
)


async def cancel_one() -> None:
    async with AsyncMailPartner(
        "key",
        base_url="https://api.mailpartner.fr/v1",
        timeout=httpx.Timeout(5.0, connect=2.0),
        max_retries=3,
        response_format="xml",
        max_concurrency=10,
        rate_limit=None,
        local_address="192.0.2.10",
    ) as client:
        assert_type(client.local_address, str | None)
        result = await client.cancel(300)
        assert_type(result, CancelResult)
        assert_type(result.code, CancelCode)
        assert_type(result.attempts, int)
        assert_type(result.message_id, str)

        quick = client.with_options(timeout=1.0, max_retries=0)
        assert_type(quick, AsyncMailPartner)
        try:
            await quick.cancel("301", timeout=0.5)
        except RateLimitError as exc:
            assert_type(exc.retry_after, float | None)
        except APIError as exc:
            assert_type(exc.code, int)
            assert_type(exc.http_status, int | None)
            assert_type(exc.message_id, str | None)
        except UnexpectedResponseError as exc:
            assert_type(exc.http_status, int | None)
        except MailPartnerError as exc:
            assert_type(exc.message, str)


async def bring_your_own_client() -> None:
    async with httpx.AsyncClient() as http:
        client = AsyncMailPartner("key", http_client=http)
        await client.aclose()


def leave_from_an_address() -> None:
    with MailPartner("key", local_address="2001:db8::10", transport="httpx2") as client:
        assert_type(client.local_address, str | None)


def read_outcome(outcome: CancelOutcome) -> str:
    assert_type(outcome.ok, bool)
    assert_type(outcome.result, CancelResult | None)
    assert_type(outcome.error, MailPartnerError | None)
    return outcome.message_id


assert_type(mailpartner_async.__version__, str)
