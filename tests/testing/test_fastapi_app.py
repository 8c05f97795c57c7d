"""A FastAPI app with a lifespan-managed client, tested against the fake as users would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException, Request

from mailpartner_async import (
    AsyncMailPartner,
    CancellationTooLateError,
    MailPartnerError,
    MessageNotFoundError,
)
from mailpartner_async.testing import FakeMailPartner


def get_client(request: Request) -> AsyncMailPartner:
    """The dependency: the app's one client (module level, so FastAPI resolves it)."""
    client: AsyncMailPartner = request.app.state.mailpartner
    return client


def create_app(make_client: type[AsyncMailPartner] | object) -> FastAPI:
    """The user's app: one client for the app's life, injected into each request."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with make_client() as client:  # type: ignore[operator]
            app.state.mailpartner = client
            yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/emails/{message_id}/cancel")
    async def cancel_email(
        message_id: str, client: Annotated[AsyncMailPartner, Depends(get_client)]
    ) -> dict[str, object]:
        try:
            result = await client.cancel(message_id)
        except MessageNotFoundError:
            raise HTTPException(404, "no such scheduled email") from None
        except CancellationTooLateError:
            raise HTTPException(409, "too late: it goes out in less than 5 minutes") from None
        except MailPartnerError:
            raise HTTPException(502, "the mail provider did not cancel it") from None
        return {"message_id": result.message_id, "code": int(result.code)}

    return app


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # Starlette's TestClient wants the httpx2 fork; drive the app with httpx's own
    # ASGI transport and run the lifespan explicitly instead.
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://app.test"
        ) as http,
    ):
        yield http


@pytest.mark.anyio
async def test_route_cancels_through_the_lifespan_client_and_maps_errors() -> None:
    fake = FakeMailPartner()
    scheduled = fake.schedule(timedelta(hours=2))
    imminent = fake.schedule(timedelta(minutes=2))
    app = create_app(fake.async_client)

    async with running(app) as http:
        ok = await http.post(f"/emails/{scheduled}/cancel")
        again = await http.post(f"/emails/{scheduled}/cancel")
        late = await http.post(f"/emails/{imminent}/cancel")
        unknown = await http.post("/emails/nope/cancel")
        client = app.state.mailpartner

    assert ok.status_code == 200
    assert ok.json() == {"message_id": scheduled, "code": 200}
    assert again.status_code == 502  # code 5: someone else cancelled it
    assert late.status_code == 409
    assert unknown.status_code == 404
    assert fake.status(scheduled) == "cancelled"
    assert fake.status(imminent) == "scheduled"
    assert [r.message_id for r in fake.requests] == [scheduled, scheduled, imminent, "nope"]
    assert client.is_closed  # the lifespan closed it on shutdown


@pytest.mark.anyio
async def test_route_survives_provider_outage_with_retries() -> None:
    fake = FakeMailPartner()
    scheduled = fake.schedule(timedelta(hours=1))
    fake.fail_next(2, "http_503")
    app = create_app(fake.async_client)

    async with running(app) as http:
        response = await http.post(f"/emails/{scheduled}/cancel")

    assert response.status_code == 200
    assert len(fake.requests) == 3
    assert fake.status(scheduled) == "cancelled"


def test_starlette_testclient_with_httpx2_runs_the_app_warning_free() -> None:
    # Warnings are errors in this suite: Starlette's TestClient warns when it finds
    # only httpx, and the SDK's client on httpx2 must add none of its own.
    from starlette.testclient import TestClient

    fake = FakeMailPartner()
    scheduled = fake.schedule(timedelta(hours=2))
    app = create_app(lambda: fake.async_client(transport="httpx2"))

    with TestClient(app) as http:
        ok = http.post(f"/emails/{scheduled}/cancel")
        unknown = http.post("/emails/nope/cancel")
        transport = app.state.mailpartner._pool.transport

    assert (ok.status_code, ok.json()) == (200, {"message_id": scheduled, "code": 200})
    assert unknown.status_code == 404
    assert type(transport).__name__ == "AsyncHttpx2Transport"
    assert fake.status(scheduled) == "cancelled"
