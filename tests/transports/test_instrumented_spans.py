"""Issue 20, item 8: the key in the spans of the HTTP instrumentations, with no opt-in processor.

Each route an instrumentation can trace, against a hostile server (a broken status
line, one echoing the key, a header over the limit, resets, a close, a refused
connection, a connect time-out, a stall), exported through the SDK's in-memory exporters with no
``RedactAPIKeySpanProcessor`` (tests/support/leaks.py's :class:`Recorded`):

- ``transport="aiohttp"`` under ``AioHttpClientInstrumentor``: the SDK's own session.
  No span, event, attribute or status text holds the key, nor any metric point.
- ``http_client=`` an ``httpx.AsyncClient`` / ``httpx2.AsyncClient`` (or the sync
  ones) under ``HTTPXClientInstrumentor`` / ``HTTPX2ClientInstrumentor``: the
  instrumentation wraps the user's transport, below the SDK, and records the
  request's URL as it is sent. What is guaranteed: the key is in ``url.full`` (or
  ``http.url``) only, masked there by the opt-in processor, and everywhere else only
  when the server itself sends it back in a head no parser takes (then httpcore's
  error quotes it).

The instrumentations are switched on here, by the test: the SDK itself changes no
global (the last test).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan

from mailpartner_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncMailPartner,
    CancelResult,
    MailPartner,
    MailPartnerError,
)
from mailpartner_async.telemetry import RedactAPIKeySpanProcessor
from tests.support.hostile import (
    HostileServer,
    Misbehaviour,
    bad_status_line,
    bad_status_line_with_key,
    big_set_cookie,
    close_after_request,
    duplicate_content_length,
    echo_key_in_header,
    echo_key_in_reason,
    header_over_the_limit,
    reply,
    reset_after_request,
    reset_in_the_head,
    stall,
)
from tests.support.leaks import Recorded, assert_key_absent, texts_of
from tests.support.server import unused_port

KEY = "hostile-Key-0123456789"
URL_ATTRIBUTES = ("url.full", "http.url")

CASES = [
    reply(),
    bad_status_line(),
    bad_status_line_with_key(),
    header_over_the_limit(),
    reset_after_request(),
    reset_in_the_head(),
    close_after_request(),
    echo_key_in_reason(),
    echo_key_in_header(),
    big_set_cookie(),
    duplicate_content_length(),
    stall(),
]
# The answers whose head no parser takes and that quote the key: httpcore's error
# text quotes the head, and the httpx instrumentation records that text.
ECHOED_IN_A_BROKEN_HEAD = {"bad-status-line-with-key"}


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    recorded = Recorded()
    yield recorded
    recorded.shutdown()


def _instrumentor(library: str) -> Any:
    if library == "aiohttp":
        from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

        return AioHttpClientInstrumentor()
    from opentelemetry.instrumentation.httpx import (
        HTTPX2ClientInstrumentor,
        HTTPXClientInstrumentor,
    )

    return HTTPXClientInstrumentor() if library == "httpx" else HTTPX2ClientInstrumentor()


@contextlib.contextmanager
def instrumented(library: str, recorded: Recorded) -> Iterator[None]:
    instrumentor = _instrumentor(library)
    instrumentor.instrument(
        tracer_provider=recorded.tracer_provider, meter_provider=recorded.meter_provider
    )
    try:
        yield
    finally:
        instrumentor.uninstrument()


@contextlib.asynccontextmanager
async def traced_client(
    library: str, base_url: str, recorded: Recorded, **options: Any
) -> AsyncIterator[AsyncMailPartner]:
    """The client on ``library``'s route: the SDK's own aiohttp session, or an httpx /
    httpx2 client of the user's (made while the instrumentation is on)."""
    options = {
        "base_url": base_url,
        "max_retries": 0,
        "timeout": 1.0,
        "tracer_provider": recorded.tracer_provider,
        "meter_provider": recorded.meter_provider,
        **options,
    }
    with instrumented(library, recorded):
        if library == "aiohttp":
            async with AsyncMailPartner(KEY, transport="aiohttp", **options) as client:
                yield client
            return
        module = importlib.import_module(library)
        async with (
            module.AsyncClient() as http_client,
            AsyncMailPartner(KEY, http_client=http_client, **options) as client,
        ):
            yield client


async def _outcome(client: AsyncMailPartner) -> CancelResult | MailPartnerError:
    try:
        return await client.cancel("1")
    except MailPartnerError as exc:
        return exc


def http_spans(recorded: Recorded) -> list[ReadableSpan]:
    return [s for s in recorded.exporter.get_finished_spans() if s.name != "mailpartner.cancel"]


def without_url(span: ReadableSpan) -> str:
    """The span as JSON, less the URL attributes."""
    data = json.loads(span.to_json())
    data["attributes"] = {
        name: value for name, value in data["attributes"].items() if name not in URL_ATTRIBUTES
    }
    return json.dumps(data)


def url_of(span: ReadableSpan) -> str:
    attributes = dict(span.attributes or {})
    return str(next(attributes[name] for name in URL_ATTRIBUTES if name in attributes))


# --- aiohttp: nothing holds the key --------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_aiohttp_instrumentation_records_no_key_in_any_span_event_status_or_metric(
    hostile: HostileServer, recorded: Recorded, case: Misbehaviour
) -> None:
    hostile.default = case
    async with traced_client("aiohttp", hostile.base_url, recorded) as client:
        outcome = await _outcome(client)

    (span,) = http_spans(recorded)
    assert url_of(span).endswith("/message-cancel?apiKey=[REDACTED]&messageId=1")
    assert hostile.requests[0].key == KEY  # the key was sent all the same
    if isinstance(outcome, MailPartnerError):
        assert [event.name for event in span.events] == ["exception"]
    assert_key_absent(KEY, [*recorded.texts(), *texts_of(outcome)])


@pytest.mark.asyncio
async def test_aiohttp_instrumentation_records_a_refused_connection_without_the_key(
    recorded: Recorded,
) -> None:
    base_url = f"http://127.0.0.1:{unused_port()}/v1"
    async with traced_client("aiohttp", base_url, recorded) as client:
        outcome = await _outcome(client)

    assert isinstance(outcome, APIConnectionError)
    assert outcome.request_sent is False  # the stand-in did not hide what aiohttp raised
    (span,) = http_spans(recorded)
    assert "ClientConnectorError" in str(span.events[0].attributes)
    assert_key_absent(KEY, [*recorded.texts(), *texts_of(outcome)])


@contextlib.contextmanager
def full_backlog() -> Iterator[str]:
    """A base URL whose listener's accept queue is full: a new connection waits (its
    SYN is dropped) until the client's connect time-out."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    fillers = [socket.socket() for _ in range(3)]
    for filler in fillers:
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@pytest.mark.asyncio
async def test_aiohttp_instrumentation_records_a_connect_time_out_without_the_key(
    recorded: Recorded,
) -> None:
    # aiohttp's ConnectionTimeoutError quotes the request's target: the URL with the key.
    with full_backlog() as base_url:
        timeout = httpx.Timeout(5.0, connect=0.3)
        async with traced_client("aiohttp", base_url, recorded, timeout=timeout) as client:
            outcome = await _outcome(client)

    assert isinstance(outcome, APITimeoutError)
    assert "ConnectionTimeoutError: Connection timeout to host" in outcome.message
    assert outcome.request_sent is False
    (span,) = http_spans(recorded)
    assert "ConnectionTimeoutError" in str(span.events[0].attributes)
    assert_key_absent(KEY, [*recorded.texts(), *texts_of(outcome)])


@pytest.mark.asyncio
async def test_aiohttp_never_resends_a_dropped_attempt_unseen_under_the_instrumentation(
    hostile: HostileServer, recorded: Recorded
) -> None:
    hostile.script("1", close_after_request(), reply())
    async with traced_client("aiohttp", hostile.base_url, recorded, max_retries=1) as client:
        result = await client.cancel("1")

    assert result.attempts == 2  # both sends were the SDK's own, each a span
    assert len(http_spans(recorded)) == 2
    assert len(hostile.requests_for("1")) == 2


# --- httpx and httpx2 given as http_client: the key in the URL attribute only -------


@pytest.mark.anyio
@pytest.mark.parametrize("library", ["httpx", "httpx2"])
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_user_httpx_client_spans_hold_the_key_only_in_the_url_attribute(
    hostile: HostileServer, recorded: Recorded, case: Misbehaviour, library: str
) -> None:
    hostile.default = case
    async with traced_client(library, hostile.base_url, recorded) as client:
        outcome = await _outcome(client)

    _check_url_only(recorded, case, outcome)


@pytest.mark.parametrize("library", ["httpx", "httpx2"])
@pytest.mark.parametrize("case", CASES[:7], ids=[case.name for case in CASES[:7]])
def test_user_sync_httpx_client_spans_hold_the_key_only_in_the_url_attribute(
    hostile: HostileServer, recorded: Recorded, case: Misbehaviour, library: str
) -> None:
    hostile.default = case
    module = importlib.import_module(library)
    with (
        instrumented(library, recorded),
        module.Client() as http_client,
        MailPartner(
            KEY,
            base_url=hostile.base_url,
            http_client=http_client,
            max_retries=0,
            timeout=1.0,
            tracer_provider=recorded.tracer_provider,
        ) as client,
    ):
        try:
            outcome: CancelResult | MailPartnerError = client.cancel("1")
        except MailPartnerError as exc:
            outcome = exc

    _check_url_only(recorded, case, outcome)


def _check_url_only(
    recorded: Recorded, case: Misbehaviour, outcome: CancelResult | MailPartnerError
) -> None:
    (span,) = http_spans(recorded)
    assert f"apiKey={KEY}&" in url_of(span)  # why the docs ask for the processor
    ours = [s.to_json() for s in recorded.exporter.get_finished_spans() if s not in (span,)]
    assert_key_absent(KEY, [*ours, *texts_of(outcome)])
    if case.name in ECHOED_IN_A_BROKEN_HEAD:
        # The server's own bytes, quoted by httpcore: not the SDK's doing.
        assert KEY in str(span.status.description)
        return
    assert_key_absent(KEY, [without_url(span)])


@pytest.mark.anyio
@pytest.mark.parametrize("library", ["httpx", "httpx2"])
async def test_the_opt_in_processor_masks_the_url_attribute_of_a_user_client(
    hostile: HostileServer, recorded: Recorded, library: str
) -> None:
    recorded.tracer_provider.add_span_processor(RedactAPIKeySpanProcessor())
    hostile.default = bad_status_line()
    async with traced_client(library, hostile.base_url, recorded) as client:
        outcome = await _outcome(client)

    assert isinstance(outcome, APIConnectionError)
    (span,) = http_spans(recorded)
    assert url_of(span).endswith("/message-cancel?apiKey=[REDACTED]&messageId=1")
    assert_key_absent(KEY, recorded.texts())


# --- the SDK changes nothing global ------------------------------------------------

_NO_GLOBALS = """
import aiohttp, asyncio, httpx, httpx2, logging
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.util import http as otel_http

def state():
    return (
        trace.get_tracer_provider(), list(otel_http.PARAMS_TO_REDACT),
        aiohttp.ClientSession.__init__, aiohttp.ClientSession._request,
        httpx.AsyncHTTPTransport.handle_async_request, httpx.HTTPTransport.handle_request,
        httpx2.AsyncHTTPTransport.handle_async_request,
        [logging.getLogger(name).handlers for name in ("", "httpx", "httpcore", "aiohttp")],
    )

before = state()
import mailpartner_async
from mailpartner_async.testing import FakeMailPartner
provider = TracerProvider()
fake = FakeMailPartner()

async def main():
    async with fake.async_client(tracer_provider=provider) as client:
        await client.cancel(fake.schedule(__import__("datetime").timedelta(hours=1)))
    async with mailpartner_async.AsyncMailPartner(
        "k" * 12, transport="aiohttp", base_url="http://127.0.0.1:9/v1", max_retries=0,
        tracer_provider=provider,
    ) as client:
        try:
            await client.cancel("1")
        except mailpartner_async.APIConnectionError:
            pass

asyncio.run(main())
print(state() == before)
"""


@pytest.mark.slow
def test_importing_and_using_the_sdk_with_tracing_changes_no_global() -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-W", "error", "-c", _NO_GLOBALS],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "True", done.stderr
