"""A batch's ``mailpartner.batch`` span: the parent of its cancels' spans, with its counts.

Read with the OpenTelemetry SDK's in-memory exporter, on the fake, for the async
client (asyncio and trio) and the sync one (worker threads).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from mailpartner_async import IdsSourceError, ScheduledMessage
from mailpartner_async.testing import FakeMailPartner
from tests.test_telemetry import Telemetry

KEY = "s3cr3t-key-0042"
HOUR = timedelta(hours=1)


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    telemetry = Telemetry()
    yield telemetry
    telemetry.shutdown()


def _campaign(fake: FakeMailPartner) -> list[str | ScheduledMessage]:
    """Two to cancel, one unknown (code 4), one too late (no request)."""
    now = datetime.now(UTC)
    return [
        fake.schedule(HOUR),
        fake.schedule(HOUR),
        "unknown-7",
        ScheduledMessage(fake.schedule(timedelta(minutes=2)), now + timedelta(minutes=2)),
    ]


def _spans(otel: Telemetry, name: str) -> list[ReadableSpan]:
    return [s for s in otel.spans.get_finished_spans() if s.name == name]


def _assert_nested(otel: Telemetry, cancels: int) -> ReadableSpan:
    (batch,) = _spans(otel, "mailpartner.batch")
    calls = _spans(otel, "mailpartner.cancel")
    assert len(calls) == cancels
    assert batch.context is not None
    for call in calls:
        assert call.parent is not None
        assert call.parent.span_id == batch.context.span_id
        assert call.context is not None
        assert call.context.trace_id == batch.context.trace_id
    return batch


EXPECTED_COUNTS = {
    "mailpartner.batch.concurrency": 3,
    "mailpartner.batch.outcomes": 4,
    "mailpartner.batch.cancelled": 2,
    "mailpartner.batch.already_cancelled": 0,
    "mailpartner.batch.too_late": 1,
    "mailpartner.batch.already_sent": 0,
    "mailpartner.batch.not_found": 1,
    "mailpartner.batch.failed": 0,
}


@pytest.mark.anyio
async def test_a_batch_span_holds_every_cancel_span_of_the_batch_and_its_counts(
    otel: Telemetry,
) -> None:
    fake = FakeMailPartner(KEY)
    async with fake.async_client(tracer_provider=otel.tracer_provider) as client:
        outcomes = await client.cancel_many(_campaign(fake), concurrency=3)

    assert len(outcomes) == 4
    batch = _assert_nested(otel, cancels=3)  # the too-late one made no call
    assert batch.kind == SpanKind.INTERNAL
    assert batch.status.status_code == StatusCode.UNSET
    assert dict(batch.attributes or {}) == EXPECTED_COUNTS


def test_the_sync_batch_nests_its_worker_threads_calls_under_its_span(otel: Telemetry) -> None:
    fake = FakeMailPartner(KEY)
    with fake.client(tracer_provider=otel.tracer_provider) as client:
        client.cancel_many(_campaign(fake), concurrency=3)

    batch = _assert_nested(otel, cancels=3)
    assert dict(batch.attributes or {}) == EXPECTED_COUNTS


@pytest.mark.anyio
async def test_the_batch_span_is_a_child_of_the_span_current_where_the_batch_starts(
    otel: Telemetry,
) -> None:
    fake = FakeMailPartner(KEY)
    tracer = otel.tracer_provider.get_tracer("app")
    async with fake.async_client(tracer_provider=otel.tracer_provider) as client:
        with tracer.start_as_current_span("rescue") as rescue:
            await client.cancel_many([fake.schedule(HOUR)])

    batch = _assert_nested(otel, cancels=1)
    assert batch.parent is not None
    assert batch.parent.span_id == rescue.get_span_context().span_id


@pytest.mark.anyio
async def test_a_batch_whose_ids_raise_ends_its_span_as_an_error_with_the_counts_so_far(
    otel: Telemetry,
) -> None:
    fake = FakeMailPartner(KEY)
    first = fake.schedule(HOUR)

    def ids() -> Iterator[str]:
        yield first
        raise OSError("the export broke")

    async with fake.async_client(tracer_provider=otel.tracer_provider) as client:
        with pytest.raises(IdsSourceError):
            await client.cancel_many(ids())

    batch = _assert_nested(otel, cancels=1)
    assert batch.status.status_code == StatusCode.ERROR
    attributes = dict(batch.attributes or {})
    assert attributes["error.type"] == "IdsSourceError"
    assert attributes["mailpartner.batch.outcomes"] == 1
    assert attributes["mailpartner.batch.cancelled"] == 1


@pytest.mark.anyio
async def test_a_batch_ended_by_an_error_quoting_the_key_records_it_without_the_key(
    otel: Telemetry,
) -> None:
    fake = FakeMailPartner(KEY)

    def ids() -> Iterator[str]:
        yield fake.schedule(HOUR)
        raise OSError(f"the export of {KEY} broke")  # the key itself, not as apiKey=

    async with fake.async_client(tracer_provider=otel.tracer_provider) as client:
        with pytest.raises(IdsSourceError):
            await client.cancel_many(ids())

    (batch,) = _spans(otel, "mailpartner.batch")
    (event,) = batch.events
    stacktrace = str((event.attributes or {})["exception.stacktrace"])
    assert "OSError: the export of [REDACTED] broke" in stacktrace
    assert KEY not in batch.to_json()


@pytest.mark.anyio
async def test_a_batch_closed_early_ends_its_span_once_with_what_it_gave(
    otel: Telemetry,
) -> None:
    fake = FakeMailPartner(KEY)
    ids = [fake.schedule(HOUR) for _ in range(5)]
    async with fake.async_client(tracer_provider=otel.tracer_provider) as client:
        batch = client.cancel_iter(ids, concurrency=1)
        async with batch:
            async for _ in batch:
                break
        await batch.aclose()  # a second close ends nothing twice

    (span,) = _spans(otel, "mailpartner.batch")
    assert dict(span.attributes or {})["mailpartner.batch.outcomes"] == 1


_WITHOUT_OTEL = """
import sys
from datetime import timedelta
sys.modules["opentelemetry"] = None  # as if it were not installed
from mailpartner_async.testing import FakeMailPartner
fake = FakeMailPartner()
ids = [fake.schedule(timedelta(hours=1)) for _ in range(3)]
with fake.client() as client:
    outcomes = client.cancel_many([*ids, "nope"], concurrency=2)
print(sorted((o.message_id, o.ok) for o in outcomes))
"""


def test_without_opentelemetry_a_batch_runs_as_before() -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-W", "error", "-c", _WITHOUT_OTEL],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[('1', True), ('2', True), ('3', True), ('nope', False)]"
