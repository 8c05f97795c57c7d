"""Observability: the OpenTelemetry span and metrics, the on_attempt hook, response
metadata and the log records' fields, read through the SDK's in-memory exporters
and real clients (the in-process fake, or tests/support/server.py over sockets)."""

from __future__ import annotations

import importlib
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from mailpartner_async import (
    APIConnectionError,
    AsyncMailPartner,
    AttemptInfo,
    ConfigurationError,
    MailPartner,
    MailPartnerError,
    MessageNotFoundError,
)
from mailpartner_async._core.secrets import Secret
from mailpartner_async._telemetry import log_fields
from mailpartner_async.telemetry import RedactAPIKeySpanProcessor
from mailpartner_async.testing import FakeMailPartner
from tests.support.server import ScriptedServer, drop, reply

KEY = "s3cr3t-key-0042"
HOUR = timedelta(hours=1)


class Telemetry:
    """An SDK tracer provider and meter provider that keep everything in memory."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def cancel_spans(self) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.name == "mailpartner.cancel"]

    def points(self, name: str) -> list[tuple[dict[str, object], object]]:
        data = self.reader.get_metrics_data()
        found: list[tuple[dict[str, object], object]] = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found += [(dict(p.attributes or {}), p) for p in metric.data.data_points]
        return found

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    telemetry = Telemetry()
    yield telemetry
    telemetry.shutdown()


@pytest.fixture
def fake() -> FakeMailPartner:
    return FakeMailPartner(KEY)


def _client(fake: FakeMailPartner, otel: Telemetry, **options: Any) -> AsyncMailPartner:
    return fake.async_client(
        tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, **options
    )


# --- the span -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_cancel_makes_one_span_with_its_code_and_no_resend(
    fake: FakeMailPartner, otel: Telemetry
) -> None:
    message_id = fake.schedule(HOUR)
    async with _client(fake, otel) as client:
        await client.cancel(message_id)
    (span,) = otel.cancel_spans()
    assert span.kind == SpanKind.CLIENT
    assert span.status.status_code == StatusCode.UNSET
    attributes = dict(span.attributes or {})
    assert attributes["mailpartner.message_id"] == message_id
    assert attributes["mailpartner.code"] == 200
    assert attributes["http.request.resend_count"] == 0
    assert isinstance(attributes["mailpartner.limits.wait"], float)
    (event,) = span.events
    assert event.name == "mailpartner.attempt"
    assert dict(event.attributes or {}) | {"mailpartner.attempt.elapsed": 0} == {
        "mailpartner.attempt": 1,
        "mailpartner.attempt.elapsed": 0,
        "mailpartner.limits.wait": attributes["mailpartner.limits.wait"],
        "mailpartner.retry": False,
        "http.response.status_code": 200,
        "mailpartner.code": 200,
    }


@pytest.mark.anyio
async def test_retries_count_as_resends_and_each_attempt_is_an_event_with_its_reason(
    fake: FakeMailPartner, otel: Telemetry
) -> None:
    message_id = fake.schedule(HOUR)
    fake.fail_next(1, "http_503")
    async with _client(fake, otel) as client:
        result = await client.cancel(message_id)
    assert result.attempts == 2
    (span,) = otel.cancel_spans()
    assert (span.attributes or {})["http.request.resend_count"] == 1
    first, second = (dict(event.attributes or {}) for event in span.events)
    assert first["http.response.status_code"] == 503
    assert first["mailpartner.retry"] is True
    assert first["error.type"] == "UnexpectedResponseError"
    assert first["mailpartner.retry.reason"] == "HTTP 503 without a control code"
    assert isinstance(first["mailpartner.retry.delay"], float)
    assert second["mailpartner.retry"] is False
    assert second["mailpartner.code"] == 200


@pytest.mark.anyio
async def test_a_failed_cancel_sets_error_status_type_and_code(
    fake: FakeMailPartner, otel: Telemetry
) -> None:
    async with _client(fake, otel) as client:
        with pytest.raises(MessageNotFoundError):
            await client.cancel("404404")
    (span,) = otel.cancel_spans()
    assert span.status.status_code == StatusCode.ERROR
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "MessageNotFoundError"
    assert attributes["mailpartner.code"] == 4
    assert [event.name for event in span.events] == ["mailpartner.attempt", "exception"]


@pytest.mark.anyio
async def test_a_call_refused_before_any_request_still_makes_its_span(
    fake: FakeMailPartner, otel: Telemetry
) -> None:
    async with _client(fake, otel) as client:
        with pytest.raises(MailPartnerError):
            await client.cancel("   ")
    (span,) = otel.cancel_spans()
    assert (span.attributes or {})["error.type"] == "InvalidRequestError"
    assert (span.attributes or {})["http.request.resend_count"] == 0


# --- metrics -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_metrics_count_outcomes_by_code_or_error_type_and_time_calls_and_waits(
    fake: FakeMailPartner, otel: Telemetry
) -> None:
    message_id = fake.schedule(HOUR)
    async with _client(fake, otel, max_retries=0) as client:
        await client.cancel(message_id)
        with pytest.raises(MessageNotFoundError):
            await client.cancel("404404")
        fake.fail_next(1, "connect_error")
        with pytest.raises(APIConnectionError):
            await client.cancel(message_id)
    outcomes = {
        tuple(sorted(attributes.items())): point.value  # type: ignore[attr-defined]
        for attributes, point in otel.points("mailpartner.cancel.outcomes")
    }
    assert outcomes == {
        (("mailpartner.code", 200),): 1,
        (("mailpartner.code", 4),): 1,
        (("error.type", "APIConnectionError"),): 1,
    }
    durations = otel.points("mailpartner.cancel.duration")
    assert sum(point.count for _, point in durations) == 3  # type: ignore[attr-defined]
    (waits,) = otel.points("mailpartner.limits.wait")
    assert waits[1].count == 3  # type: ignore[attr-defined]


# --- the key -------------------------------------------------------------------------


def test_the_key_is_in_no_span_event_or_metric(otel: Telemetry) -> None:
    with ScriptedServer() as server:
        # A server that echoes the key back in a header and the message.
        server.script("300", reply(503, f"bad apiKey={KEY}", headers={"x-request-id": KEY}))
        with (
            pytest.raises(MailPartnerError, match="code 503"),
            MailPartner(
                KEY,
                base_url=server.base_url,
                max_retries=0,
                tracer_provider=otel.tracer_provider,
                meter_provider=otel.meter_provider,
            ) as client,
        ):
            client.cancel("300")
    exported = [span.to_json() for span in otel.spans.get_finished_spans()]
    data = otel.reader.get_metrics_data()
    assert data is not None
    exported.append(data.to_json())
    assert exported
    assert all(KEY not in text for text in exported)


# --- HTTP spans nest under ours ---------------------------------------------------------


async def _instrumented_cancel(
    otel: Telemetry, library: str, *, own_transport: bool = True
) -> list[ReadableSpan]:
    """One cancel (a dropped attempt, then a 200) with the library instrumented: on a
    transport of the library's own that the caller gives (what the instrumentation
    patches), or, ``own_transport=False``, on the transport the SDK makes itself."""
    from opentelemetry.instrumentation.httpx import (
        HTTPX2ClientInstrumentor,
        HTTPXClientInstrumentor,
    )

    module = importlib.import_module(library)
    instrumentor = HTTPXClientInstrumentor() if library == "httpx" else HTTPX2ClientInstrumentor()
    instrumentor.instrument(tracer_provider=otel.tracer_provider)
    try:
        with ScriptedServer() as server:
            server.script("300", drop(), reply(200))
            async with AsyncMailPartner(
                KEY,
                base_url=server.base_url,
                transport=module.AsyncHTTPTransport() if own_transport else library,  # type: ignore[arg-type]
                tracer_provider=otel.tracer_provider,
                meter_provider=otel.meter_provider,
            ) as client:
                await client.cancel("300")
    finally:
        instrumentor.uninstrument()
    return list(otel.spans.get_finished_spans())


def _url_of(span: ReadableSpan) -> str:
    attributes = dict(span.attributes or {})
    return str(attributes.get("url.full") or attributes.get("http.url"))


@pytest.mark.anyio
@pytest.mark.parametrize("library", ["httpx", "httpx2"])
async def test_http_client_spans_are_children_of_the_cancel_span_and_the_processor_masks_the_key(
    otel: Telemetry, library: str
) -> None:
    otel.tracer_provider.add_span_processor(RedactAPIKeySpanProcessor())

    spans = await _instrumented_cancel(otel, library)

    (ours,) = [span for span in spans if span.name == "mailpartner.cancel"]
    http_spans = [span for span in spans if span.name == "GET"]
    assert len(http_spans) == 2  # the dropped attempt and the retry
    assert ours.context is not None
    for span in http_spans:
        assert span.parent is not None
        assert span.parent.span_id == ours.context.span_id
        assert KEY not in json.dumps(dict(span.attributes or {}))
        assert _url_of(span).endswith("/message-cancel?apiKey=[REDACTED]&messageId=300")


@pytest.mark.anyio
@pytest.mark.parametrize("library", ["httpx", "httpx2"])
async def test_the_instrumentation_does_not_see_the_transport_the_sdk_makes_itself(
    otel: Telemetry, library: str
) -> None:
    """What docs/observability.md says: ``instrument()`` patches the library's own
    transport classes, and the SDK's own clients run on a pool of the SDK's (the one
    that refuses a stray answer), so only our span is recorded. If the
    instrumentation starts seeing it, this fails: the docs can then say so."""
    spans = await _instrumented_cancel(otel, library, own_transport=False)

    assert [span.name for span in spans] == ["mailpartner.cancel"]
    (ours,) = spans
    assert dict(ours.attributes or {})["http.request.resend_count"] == 1


@pytest.mark.anyio
async def test_without_the_processor_the_instrumentation_records_the_key_and_no_global_changes(
    otel: Telemetry,
) -> None:
    """Why the processor is opt-in: OpenTelemetry masks only the parameters of its own
    global list, and the SDK leaves that list alone. If a release of OpenTelemetry
    masks ``apiKey`` by itself, this fails: the docs can then say so."""
    from opentelemetry.util import http as otel_http

    before = list(otel_http.PARAMS_TO_REDACT)

    spans = await _instrumented_cancel(otel, "httpx")

    assert before == otel_http.PARAMS_TO_REDACT
    assert "apiKey" not in before
    http_spans = [span for span in spans if span.name == "GET"]
    assert [f"apiKey={KEY}&" in _url_of(span) for span in http_spans] == [True, True]


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        (
            {"url.full": "https://h/v1/x?apiKey=k3y&messageId=1"},
            "https://h/v1/x?apiKey=[REDACTED]&messageId=1",
        ),
        ({"url.full": "https://h/v1/x?messageId=1"}, "https://h/v1/x?messageId=1"),
        ({"url.full": 42}, 42),
    ],
    ids=["key", "no-key", "not-text"],
)
def test_the_processor_masks_the_key_in_the_attributes_a_span_starts_with(
    otel: Telemetry, attributes: dict[str, Any], expected: object
) -> None:
    otel.tracer_provider.add_span_processor(RedactAPIKeySpanProcessor())
    tracer = otel.tracer_provider.get_tracer("test")

    tracer.start_span("GET", attributes={**attributes, "other": "apiKey=also"}).end()

    (span,) = otel.spans.get_finished_spans()
    assert dict(span.attributes or {}) == {"url.full": expected, "other": "apiKey=[REDACTED]"}


# --- the hook ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_on_attempt_sees_each_attempt_without_opentelemetry_providers(
    fake: FakeMailPartner,
) -> None:
    seen: list[AttemptInfo] = []
    message_id = fake.schedule(HOUR)
    fake.fail_next(1, "connect_error")
    async with fake.async_client(on_attempt=seen.append) as client:
        await client.cancel(message_id)
    first, second = seen
    assert (first.message_id, first.attempt, first.status, first.code) == (
        message_id,
        1,
        None,
        None,
    )
    assert first.error == "APIConnectionError"
    assert first.will_retry
    assert first.delay is not None
    assert first.delay > 0
    assert (second.attempt, second.status, second.code, second.error) == (2, 200, 200, None)
    assert not second.will_retry
    assert second.delay is None
    assert second.elapsed >= 0
    assert second.waited >= 0


def test_a_raising_hook_is_logged_once_per_client_and_the_calls_succeed(
    fake: FakeMailPartner, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(info: AttemptInfo) -> None:
        raise RuntimeError(f"hook broke on {info.message_id}")

    ids = [fake.schedule(HOUR) for _ in range(3)]
    with caplog.at_level(logging.WARNING, "mailpartner_async"), fake.client(on_attempt=hook) as c:
        results = [c.cancel(message_id) for message_id in ids]
    assert [result.code for result in results] == [200, 200, 200]
    (record,) = caplog.records
    assert "on_attempt hook raised" in record.getMessage()
    assert record.message_id == ids[0]  # type: ignore[attr-defined]
    assert record.reason == f"RuntimeError: hook broke on {ids[0]}"  # type: ignore[attr-defined]


def test_a_hook_raising_with_the_key_is_logged_without_it(
    fake: FakeMailPartner, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(info: AttemptInfo) -> None:
        raise RuntimeError(f"hook broke with {KEY}")

    with caplog.at_level(logging.WARNING, "mailpartner_async"), fake.client(on_attempt=hook) as c:
        c.cancel(fake.schedule(HOUR))
    (record,) = caplog.records
    assert record.getMessage().endswith("RuntimeError: hook broke with [REDACTED]")
    assert record.reason == "RuntimeError: hook broke with [REDACTED]"  # type: ignore[attr-defined]


def test_log_fields_mask_the_clients_key_in_the_message_id() -> None:
    fields = log_fields(f"id-{KEY}", 1, 4, None, "code 4", secret=Secret(KEY))
    assert fields == {
        "message_id": "id-[REDACTED]",
        "attempt": 1,
        "code": 4,
        "delay": None,
        "reason": "code 4",
    }


def test_on_attempt_must_be_callable() -> None:
    with pytest.raises(ConfigurationError, match="on_attempt must be callable"):
        MailPartner(KEY, on_attempt="print")  # type: ignore[arg-type]


def test_a_provider_must_be_one() -> None:
    with pytest.raises(ConfigurationError, match=r"tracer_provider must have a get_tracer\(\)"):
        MailPartner(KEY, tracer_provider=object())  # type: ignore[arg-type]


# --- response metadata ----------------------------------------------------------------


def test_result_and_error_carry_status_headers_and_request_id_redacted() -> None:
    with ScriptedServer() as server:
        server.script("300", reply(200, headers={"X-Request-Id": "req-1", "X-Echo": KEY}))
        server.script("301", reply(4, status=404, headers={"x-request-id": "req-2"}))
        with MailPartner(KEY, base_url=server.base_url) as client:
            result = client.cancel("300")
            with pytest.raises(MessageNotFoundError) as caught:
                client.cancel("301")
    assert result.response is not None
    assert result.response.status == 200
    assert result.response.request_id == "req-1"
    assert result.response.headers["x-echo"] == "[REDACTED]"
    assert "response" not in result.model_dump()
    assert result == result.model_copy()
    error = caught.value
    assert error.response is not None
    assert (error.response.status, error.response.request_id) == (404, "req-2")


def test_an_error_without_an_answer_has_no_response() -> None:
    with ScriptedServer() as server:
        server.script("300", drop())
        with (
            MailPartner(KEY, base_url=server.base_url, max_retries=0) as client,
            pytest.raises(APIConnectionError) as caught,
        ):
            client.cancel("300")
    assert caught.value.response is None


# --- logs ------------------------------------------------------------------------------


def test_every_log_record_carries_the_structured_fields(
    fake: FakeMailPartner, caplog: pytest.LogCaptureFixture
) -> None:
    message_id = fake.schedule(HOUR)
    fake.fail_next(1, "rate_limit")
    with caplog.at_level(logging.DEBUG, "mailpartner_async"), fake.client() as client:
        client.cancel(message_id)
    records = [r for r in caplog.records if r.name == "mailpartner_async"]
    fields = [
        (r.levelname, r.message_id, r.attempt, r.code, r.delay is not None, r.reason)  # type: ignore[attr-defined]
        for r in records
    ]
    assert fields == [
        ("DEBUG", message_id, 1, 429, False, "code 429"),
        ("WARNING", message_id, 1, 429, True, "code 429"),
        ("DEBUG", message_id, 2, 200, False, None),
    ]
    assert all(KEY not in r.getMessage() and KEY not in str(r.__dict__) for r in records)


# --- without OpenTelemetry --------------------------------------------------------------

_WITHOUT_OTEL = """
import sys
from datetime import timedelta
sys.modules["opentelemetry"] = None  # as if it were not installed
import mailpartner_async
from mailpartner_async.testing import FakeMailPartner
fake = FakeMailPartner()
with fake.client() as client:
    assert client.cancel(fake.schedule(timedelta(hours=1))).code == 200
class Provider:
    def get_tracer(self, *args, **kwargs): ...
try:
    mailpartner_async.MailPartner("k" * 8, tracer_provider=Provider())
except mailpartner_async.ConfigurationError as exc:
    print(exc)
"""


def test_without_opentelemetry_calls_work_and_providers_are_refused() -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-W", "error", "-c", _WITHOUT_OTEL],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "OpenTelemetry (tracer_provider, meter_provider) needs the otel extra" in done.stdout


def test_importing_the_sdk_does_not_import_opentelemetry() -> None:
    code = "import sys, mailpartner_async; print('opentelemetry' in sys.modules)"
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"
