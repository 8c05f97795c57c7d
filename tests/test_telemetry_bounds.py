"""Issue 20, item 8: what our span and metrics record stays bounded and key-free, and
tracing changes no error. Read through the SDK's in-memory exporters, against a real
local server (tests/support/server.py) on every sync transport."""

from __future__ import annotations

import pickle

import httpx
import pytest
from opentelemetry.trace import StatusCode

from mailpartner_async import (
    APIConnectionError,
    AsyncMailPartner,
    InvalidRequestError,
    MailPartner,
    MailPartnerError,
)
from mailpartner_async.testing import FakeMailPartner
from tests.support.server import ScriptedServer, raw, reply
from tests.support.transports import TRANSPORTS
from tests.test_telemetry import KEY, Telemetry


@pytest.fixture
def otel() -> Telemetry:
    return Telemetry()


def _outcomes(otel: Telemetry) -> dict[tuple[tuple[str, object], ...], int]:
    return {
        tuple(sorted(attributes.items())): point.value  # type: ignore[attr-defined]
        for attributes, point in otel.points("mailpartner.cancel.outcomes")
    }


def test_codes_outside_the_providers_table_share_one_outcome_series(otel: Telemetry) -> None:
    with ScriptedServer() as server:
        for n in range(50):
            server.script(str(n), reply(1000 + n, "made up") if n != 4 else reply(4))
        with MailPartner(
            KEY,
            base_url=server.base_url,
            max_retries=0,
            tracer_provider=otel.tracer_provider,
            meter_provider=otel.meter_provider,
        ) as client:
            for n in range(50):
                with pytest.raises(MailPartnerError):
                    client.cancel(str(n))
    outcomes = _outcomes(otel)
    assert outcomes == {(("mailpartner.code", "_OTHER"),): 49, (("mailpartner.code", 4),): 1}
    durations = {
        tuple(sorted(attributes.items()))
        for attributes, _ in otel.points("mailpartner.cancel.duration")
    }
    assert durations == set(outcomes)
    # The span of one call still says which code it got: it is not a metric series.
    codes = {(span.attributes or {}).get("mailpartner.code") for span in otel.cancel_spans()}
    assert 1049 in codes
    otel.shutdown()


@pytest.mark.parametrize("message_id", [10**5000, "   ", 1.5], ids=["huge-int", "blank", "float"])
def test_a_bad_id_raises_the_same_error_with_a_recording_tracer(
    otel: Telemetry, message_id: object
) -> None:
    fake = FakeMailPartner(KEY)
    with fake.client() as plain, pytest.raises(InvalidRequestError) as untraced:
        plain.cancel(message_id)  # type: ignore[arg-type]
    with (
        fake.client(
            tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider
        ) as traced,
        pytest.raises(InvalidRequestError) as traced_error,
    ):
        traced.cancel(message_id)  # type: ignore[arg-type]
    assert str(traced_error.value) == str(untraced.value)
    (span,) = otel.cancel_spans()
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "InvalidRequestError"
    assert span.status.status_code == StatusCode.ERROR
    assert _outcomes(otel) == {(("mailpartner.code", 3),): 1}
    otel.shutdown()


@pytest.mark.anyio
async def test_a_bad_id_raises_the_same_error_with_a_recording_tracer_async(
    otel: Telemetry,
) -> None:
    fake = FakeMailPartner(KEY)
    async with fake.async_client(tracer_provider=otel.tracer_provider) as client:
        with pytest.raises(InvalidRequestError, match="too large"):
            await client.cancel(10**5000)
    (span,) = otel.cancel_spans()
    assert "mailpartner.message_id" not in (span.attributes or {})
    otel.shutdown()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exception_text_recorded_on_our_span_holds_no_key(otel: Telemetry, transport: str) -> None:
    # A broken status line that echoes the key: the HTTP library's error (chained
    # under ours) quotes it, and the span's exception event carries the chain.
    with ScriptedServer() as server:
        server.script("300", raw(b"HTTP/1.1 2x0 " + KEY.encode() + b"\r\n\r\n"))
        with (
            MailPartner(
                KEY,
                base_url=server.base_url,
                max_retries=0,
                transport=transport,  # type: ignore[arg-type]
                tracer_provider=otel.tracer_provider,
            ) as client,
            pytest.raises(APIConnectionError),
        ):
            client.cancel("300")
    (span,) = otel.cancel_spans()
    (event,) = [event for event in span.events if event.name == "exception"]
    attributes = dict(event.attributes or {})
    assert "APIConnectionError" in str(attributes["exception.stacktrace"])
    exported = span.to_json()
    assert KEY not in exported
    otel.shutdown()


def test_a_response_keeps_no_raw_header_and_no_key_from_the_start() -> None:
    with ScriptedServer() as server:
        server.script("300", reply(200, headers={"X-Request-Id": f"req-{KEY}"}))
        with MailPartner(KEY, base_url=server.base_url) as client:
            result = client.cancel("300")
    response = result.response
    assert response is not None
    # Nothing was read yet: what the object holds is already redacted.
    held = [getattr(response, name, None) for name in type(response).__slots__]
    assert all(KEY not in repr(value) for value in held)
    assert KEY not in repr(pickle.dumps(result))
    assert KEY not in repr(pickle.dumps(response))
    assert response.request_id == "req-[REDACTED]"


def _refuse_with_the_url(request: httpx.Request) -> httpx.Response:
    # An http_client whose transport (a proxy layer, say) raises its own error,
    # quoting the URL: it reaches the caller as it is, through our span.
    raise RuntimeError(f"proxy refused {request.url}")


def test_an_exception_quoting_the_key_is_recorded_on_our_span_redacted(otel: Telemetry) -> None:
    http_client = httpx.Client(transport=httpx.MockTransport(_refuse_with_the_url))
    with (
        MailPartner(
            KEY,
            max_retries=0,
            http_client=http_client,
            tracer_provider=otel.tracer_provider,
            meter_provider=otel.meter_provider,
        ) as client,
        pytest.raises(RuntimeError, match="proxy refused"),
    ):
        client.cancel("300")
    http_client.close()
    (span,) = otel.cancel_spans()
    (event,) = [event for event in span.events if event.name == "exception"]
    attributes = dict(event.attributes or {})
    assert attributes["exception.type"] == "RuntimeError"
    assert "apiKey=[REDACTED]" in str(attributes["exception.message"])
    assert "proxy refused" in str(attributes["exception.stacktrace"])
    assert KEY not in span.to_json()
    # The span names the class; the metric, whose series must stay bounded, does not.
    assert _outcomes(otel) == {(("error.type", "_OTHER"),): 1}
    otel.shutdown()


@pytest.mark.anyio
async def test_an_exception_quoting_the_key_is_recorded_on_our_async_span_redacted(
    otel: Telemetry,
) -> None:
    async def refuse(request: httpx.Request) -> httpx.Response:
        return _refuse_with_the_url(request)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http_client,
        AsyncMailPartner(
            KEY, max_retries=0, http_client=http_client, tracer_provider=otel.tracer_provider
        ) as client,
    ):
        with pytest.raises(RuntimeError, match="proxy refused"):
            await client.cancel("300")
    (span,) = otel.cancel_spans()
    assert KEY not in span.to_json()
    otel.shutdown()
