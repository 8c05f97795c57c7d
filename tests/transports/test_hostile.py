"""The client against a hostile server (tests/support/hostile.py): what must hold whatever it sends.

The key shows in no text, only ``MailPartnerError`` escapes, bad settings fail in the
constructor, every call ends by its deadline, redirects and proxies are never taken
for loopback, a fork never crosses answers, a failing ids source or a bad id ends a
batch cleanly, pacing resumes spaced after a pause, and the CLI stays quiet about
the key. A test taking ``client_transport`` runs on every transport: an async one on
every (event loop, transport) pair the loop has, a sync one on each sync transport
(tests/support/transports.py).
"""

from __future__ import annotations

import gc
import itertools
import logging
import math
import os
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import mailpartner_async
from mailpartner_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncBatch,
    AsyncMailPartner,
    CancelOutcome,
    CancelResult,
    ConfigurationError,
    InvalidRequestError,
    MailPartner,
    MailPartnerError,
    MessageNotFoundError,
    RetryPolicy,
    UnexpectedResponseError,
)
from mailpartner_async._core.framing import OVERSIZED_HEAD, REPEATED_LENGTH
from mailpartner_async.cli import main
from tests.support.hostile import (
    LATIN1_MESSAGE,
    STRAY_MESSAGE,
    CountingServer,
    HostileServer,
    Misbehaviour,
    bad_status_line,
    bad_status_line_with_key,
    big_set_cookie,
    bomb,
    chunked_with_content_length,
    close_after_request,
    conflicting_content_length,
    deep_json,
    drip,
    duplicate_content_length,
    early_hints_then,
    echo_key_in_header,
    echo_key_in_reason,
    errors_with_key,
    gzip_lie,
    header_over_the_limit,
    identical_content_length,
    latin1_json,
    listed_content_length,
    long_header_lines,
    redirect,
    reply,
    reset_after_request,
    reset_in_the_head,
    stall,
    two_answers,
)
from tests.support.leaks import (
    Recorded,
    assert_key_absent,
    journal_texts,
    outcome_texts,
    texts_of,
)
from tests.support.server import unused_port

KEY = "hostile-Key-0123456789"
ENCODED_KEY = "k3y+with/slash&amp=Zz9"  # needs percent-encoding in a query
KEYS = [KEY, ENCODED_KEY]
KEY_IDS = ["plain", "needs-encoding"]
FAST_RETRIES = RetryPolicy(initial_delay=0.01, max_delay=0.02)
PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")

Outcome = CancelResult | MailPartnerError


def options(hostile: HostileServer | None, **overrides: Any) -> dict[str, Any]:
    chosen: dict[str, Any] = {"rate_limit": None, "retry_policy": FAST_RETRIES}
    if hostile is not None:
        chosen["base_url"] = hostile.base_url
    chosen.update(overrides)
    return chosen


def async_client(
    hostile: HostileServer | None, transport: str, key: str = KEY, **overrides: Any
) -> AsyncMailPartner:
    return AsyncMailPartner(key, transport=transport, **options(hostile, **overrides))  # type: ignore[arg-type]


def sync_client(
    hostile: HostileServer | None, transport: str, key: str = KEY, **overrides: Any
) -> MailPartner:
    return MailPartner(key, transport=transport, **options(hostile, **overrides))  # type: ignore[arg-type]


async def async_outcome(client: AsyncMailPartner, message_id: str | int) -> Outcome:
    """The call's result or its ``MailPartnerError``; anything else escapes."""
    try:
        return await client.cancel(message_id)
    except MailPartnerError as exc:
        return exc


def sync_outcome(client: MailPartner, message_id: str | int) -> Outcome:
    try:
        return client.cancel(message_id)
    except MailPartnerError as exc:
        return exc


# --- where the key must never show ----------------------------------------------


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every logger at DEBUG, captured."""
    caplog.set_level(logging.DEBUG)
    for name in sorted({"httpx", "httpcore", "aiohttp", "mailpartner_async", "asyncio", "trio"}):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [caplog.text, *(record.getMessage() for record in caplog.records)]


KEY_ECHOES = [
    echo_key_in_reason(),
    echo_key_in_header(),
    bad_status_line_with_key(),
    errors_with_key(),
    big_set_cookie(),
    duplicate_content_length(),
]


@pytest.mark.anyio
@pytest.mark.parametrize("key", KEYS, ids=KEY_IDS)
@pytest.mark.parametrize("echo", KEY_ECHOES, ids=[m.name for m in KEY_ECHOES])
async def test_key_echoed_by_server_shows_in_no_text(
    hostile: HostileServer,
    logs: pytest.LogCaptureFixture,
    client_transport: str,
    key: str,
    echo: Misbehaviour,
) -> None:
    hostile.default = echo
    async with async_client(hostile, client_transport, key, max_retries=0) as client:
        single = await async_outcome(client, "1")
        outcomes = await client.cancel_many(["2", "3"])

    assert len(outcomes) == 2
    assert_key_absent(key, [*texts_of(single), *outcome_texts(outcomes), *log_texts(logs)])


@pytest.mark.parametrize("key", KEYS, ids=KEY_IDS)
@pytest.mark.parametrize("echo", KEY_ECHOES, ids=[m.name for m in KEY_ECHOES])
def test_key_echoed_by_server_shows_in_no_text_sync(
    hostile: HostileServer,
    client_transport: str,
    logs: pytest.LogCaptureFixture,
    key: str,
    echo: Misbehaviour,
) -> None:
    hostile.default = echo
    with sync_client(hostile, client_transport, key, max_retries=0) as client:
        single = sync_outcome(client, "1")
        outcomes = client.cancel_many(["2", "3"])

    assert len(outcomes) == 2
    assert_key_absent(key, [*texts_of(single), *outcome_texts(outcomes), *log_texts(logs)])


# Issue 20, items 8 and 10: the same answers, and broken connections, traced. Spans
# and metrics go to in-memory exporters with no opt-in processor; with aiohttp, its
# OpenTelemetry instrumentation is on as well (on the SDK's own session it records no
# key: the httpx ones record the URL of a client the user gives, and so are tested in
# test_instrumented_spans.py); the batch keeps a journal, read back line by line.
TRACED_CASES = [
    *KEY_ECHOES,
    header_over_the_limit(),
    bad_status_line(),
    reset_after_request(),
    reset_in_the_head(),
    close_after_request(),
]


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    recorded = Recorded()
    yield recorded
    recorded.shutdown()


def traced(recorded: Recorded) -> dict[str, Any]:
    return {**recorded.options(), "max_retries": 1}


@pytest.mark.anyio
@pytest.mark.parametrize("case", TRACED_CASES, ids=[m.name for m in TRACED_CASES])
async def test_a_traced_hostile_answer_leaves_no_key_in_spans_metrics_journal_or_logs(
    hostile: HostileServer,
    logs: pytest.LogCaptureFixture,
    recorded: Recorded,
    tmp_path: Path,
    client_transport: str,
    case: Misbehaviour,
) -> None:
    hostile.default = case
    journal = tmp_path / "journal.jsonl"
    with recorded.instrumented(client_transport):
        async with async_client(hostile, client_transport, **traced(recorded)) as client:
            single = await async_outcome(client, "1")
            outcomes = await client.cancel_many(["2", "3"], journal=journal)

    assert len(outcomes) == 2
    assert len(journal_texts(journal)) >= 2
    assert recorded.span_texts()
    assert_key_absent(
        KEY,
        [
            *recorded.texts(),
            *journal_texts(journal),
            *texts_of(single),
            *outcome_texts(outcomes),
            *log_texts(logs),
        ],
    )


@pytest.mark.parametrize("case", TRACED_CASES, ids=[m.name for m in TRACED_CASES])
def test_a_traced_hostile_answer_leaves_no_key_in_spans_metrics_journal_or_logs_sync(
    hostile: HostileServer,
    logs: pytest.LogCaptureFixture,
    recorded: Recorded,
    tmp_path: Path,
    client_transport: str,
    case: Misbehaviour,
) -> None:
    hostile.default = case
    journal = tmp_path / "journal.jsonl"
    with sync_client(hostile, client_transport, **traced(recorded)) as client:
        single = sync_outcome(client, "1")
        outcomes = client.cancel_many(["2", "3"], journal=journal)

    assert len(outcomes) == 2
    assert recorded.span_texts()
    assert_key_absent(
        KEY,
        [
            *recorded.texts(),
            *journal_texts(journal),
            *texts_of(single),
            *outcome_texts(outcomes),
            *log_texts(logs),
        ],
    )


@pytest.mark.anyio
async def test_nested_errors_from_the_server_are_kept_without_the_key(
    hostile: HostileServer, client_transport: str
) -> None:
    hostile.default = errors_with_key()
    async with async_client(hostile, client_transport, max_retries=0) as client:
        error = await async_outcome(client, "1")

    assert isinstance(error, MessageNotFoundError)
    assert_key_absent(KEY, [repr(error.errors), str(error.errors)])


# --- only MailPartnerError escapes cancel() ----------------------------------------

BROKEN_BODIES = [gzip_lie(), deep_json()]


@pytest.mark.anyio
@pytest.mark.parametrize("broken", BROKEN_BODIES, ids=[m.name for m in BROKEN_BODIES])
async def test_broken_body_is_unexpected_response(
    hostile: HostileServer, client_transport: str, broken: Misbehaviour
) -> None:
    hostile.default = broken
    async with async_client(hostile, client_transport, max_retries=0) as client:
        with pytest.raises(UnexpectedResponseError):
            await client.cancel("1")


@pytest.mark.parametrize("broken", BROKEN_BODIES, ids=[m.name for m in BROKEN_BODIES])
def test_broken_body_is_unexpected_response_sync(
    hostile: HostileServer, client_transport: str, broken: Misbehaviour
) -> None:
    hostile.default = broken
    with (
        sync_client(hostile, client_transport, max_retries=0) as client,
        pytest.raises(UnexpectedResponseError),
    ):
        client.cancel("1")


BOMB_PEAK_LIMIT = 8_000_000


@pytest.mark.anyio
async def test_decompression_bomb_is_refused_in_bounded_memory(
    hostile: HostileServer, client_transport: str
) -> None:
    hostile.default = bomb()
    async with async_client(hostile, client_transport, max_retries=0, timeout=10.0) as client:
        tracemalloc.start()
        try:
            outcome = await async_outcome(client, "1")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert isinstance(outcome, UnexpectedResponseError)
    assert peak < BOMB_PEAK_LIMIT, f"peak {peak / 1e6:.1f} MB while reading the bomb"


def test_decompression_bomb_is_refused_in_bounded_memory_sync(
    hostile: HostileServer, client_transport: str
) -> None:
    hostile.default = bomb()
    with sync_client(hostile, client_transport, max_retries=0, timeout=10.0) as client:
        tracemalloc.start()
        try:
            outcome = sync_outcome(client, "1")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert isinstance(outcome, UnexpectedResponseError)
    assert peak < BOMB_PEAK_LIMIT, f"peak {peak / 1e6:.1f} MB while reading the bomb"


@pytest.mark.anyio
async def test_aclose_while_calls_are_in_flight_fails_them_with_mailpartner_error(
    hostile: HostileServer, client_transport: str
) -> None:
    hostile.default = stall()
    client = async_client(hostile, client_transport, max_retries=0, timeout=30.0)
    endings: list[Exception | None] = []

    async def call(message_id: str) -> None:
        try:
            await client.cancel(message_id)
        except Exception as exc:
            endings.append(exc)
        else:
            endings.append(None)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            for message_id in ("1", "2", "3"):
                group.start_soon(call, message_id)
            await arrived(hostile, 3)
            await client.aclose()

    assert len(endings) == 3
    assert all(isinstance(ending, MailPartnerError) for ending in endings), endings


@pytest.mark.anyio
async def test_a_call_still_queued_when_the_client_closes_fails_saying_so(
    hostile: HostileServer, client_transport: str
) -> None:
    hostile.default = stall()
    client = async_client(hostile, client_transport, max_retries=0, max_concurrency=1)
    endings: dict[str, Outcome] = {}

    async def call(message_id: str) -> None:
        endings[message_id] = await async_outcome(client, message_id)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(call, "in-flight")
            await arrived(hostile, 1)
            group.start_soon(call, "queued")  # waits for the one connection
            await anyio.sleep(0.1)
            await client.aclose()

    assert [seen.message_id for seen in hostile.requests] == ["in-flight"]
    assert isinstance(endings["in-flight"], APIConnectionError), endings
    queued = endings["queued"]
    assert type(queued) is MailPartnerError, queued
    assert queued.message in (
        "the client was closed while this call was in flight",  # httpx's client refused it
        "the client is closed",  # the aiohttp transport refused it first
    )


async def arrived(hostile: HostileServer, count: int) -> None:
    """Return once ``count`` requests reached the server (polled: it is another thread)."""
    for _ in range(1000):
        if len(hostile.requests) >= count:
            return
        await anyio.sleep(0.01)
    raise AssertionError(f"only {len(hostile.requests)} of {count} requests arrived")


# Connections of the first loop cannot be closed from the second: they are left to
# the garbage collector, which says so (the documented cost of closing it there).
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_aclose_under_another_event_loop_raises_mailpartner_error(
    hostile: HostileServer, run_backend: str, client_transport: str
) -> None:
    client = async_client(hostile, client_transport)
    result = anyio.run(client.cancel, "1", backend=run_backend)
    assert result.code == 200

    with pytest.raises(MailPartnerError, match="belong to the event loop that used it"):
        anyio.run(client.aclose, backend=run_backend)
    assert client.is_closed
    del client  # its connections go now, under this test's warning filters
    gc.collect()


# --- bad settings fail in the constructor ------------------------------------------

BAD_BASE_URLS = {
    "port-not-a-number": "http://127.0.0.1:abc/v1",
    "dot-localhost": "http://anything.localhost/v1",
    "nul-in-path": "http://127.0.0.1:8025/v1\x00",
    "nul-in-host": "http://127.0.0.1\x00.evil.example/v1",
    "crlf-in-path": "http://127.0.0.1:8025/v1\r\nX-Injected: 1",
    "tab-in-path": "http://127.0.0.1:8025/v\t1",
    "space-in-path": "http://127.0.0.1:8025/v 1",
    "del-in-path": "http://127.0.0.1:8025/v1\x7f",
}
CONSTRUCTOR_KINDS = ["httpx", "httpx2", "aiohttp", "sync-httpx", "sync-httpx2"]


@pytest.mark.parametrize("base_url", BAD_BASE_URLS.values(), ids=BAD_BASE_URLS.keys())
@pytest.mark.parametrize("kind", CONSTRUCTOR_KINDS)
def test_bad_base_url_fails_in_the_constructor(base_url: str, kind: str) -> None:
    with pytest.raises(ConfigurationError):
        build_and_close(kind, base_url=base_url)


@pytest.mark.parametrize("kind", ["httpx", "aiohttp", "sync"])
def test_missing_ssl_cert_file_fails_in_the_constructor(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-bundle.pem"))
    with pytest.raises(ConfigurationError):
        build_and_close(kind, base_url="https://api.mailpartner.fr/v1")


def build_and_close(kind: str, **overrides: Any) -> None:
    """Build a client (raising if the constructor does), then close it."""
    if kind.startswith("sync"):
        sync_client(None, kind.partition("-")[2] or "httpx", **overrides).close()
        return
    client = async_client(None, kind, **overrides)
    anyio.run(client.aclose)


# --- transport failure classes -------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["refused", "unknown-host", "disconnect-after-request"], ids=str)
async def test_transport_failure_is_connection_error_not_timeout(
    hostile: HostileServer, client_transport: str, where: str
) -> None:
    overrides: dict[str, Any] = {"max_retries": 0, "timeout": 5.0}
    if where == "refused":
        overrides["base_url"] = f"http://127.0.0.1:{unused_port()}/v1"
    elif where == "unknown-host":
        overrides |= {"base_url": "http://unknown.invalid/v1", "allow_insecure_http": True}
    hostile.default = close_after_request()
    async with async_client(hostile, client_transport, **overrides) as client:
        error = await async_outcome(client, "1")

    assert isinstance(error, APIConnectionError)
    assert not isinstance(error, APITimeoutError)
    assert error.request_sent is (where == "disconnect-after-request")


# --- every call ends by its deadline ------------------------------------------------

DRIPS = ["head", "body", "chunks"]
DEADLINE_SLACK = 0.75


@pytest.mark.anyio
@pytest.mark.parametrize("where", DRIPS)
async def test_dripping_server_times_out_by_the_deadline(
    hostile: HostileServer, client_transport: str, where: str
) -> None:
    hostile.default = drip(where, every=0.3)  # type: ignore[arg-type]
    async with async_client(hostile, client_transport, timeout=1.0, max_retries=0) as client:
        started = time.monotonic()
        error = await async_outcome(client, "1")
        elapsed = time.monotonic() - started

    assert isinstance(error, APITimeoutError), error
    assert elapsed < 1.0 + DEADLINE_SLACK


@pytest.mark.parametrize("where", DRIPS)
def test_dripping_server_times_out_by_the_deadline_sync(
    hostile: HostileServer, client_transport: str, where: str
) -> None:
    hostile.default = drip(where, every=0.3)  # type: ignore[arg-type]
    with sync_client(hostile, client_transport, timeout=1.0, max_retries=0) as client:
        started = time.monotonic()
        error = sync_outcome(client, "1")
        elapsed = time.monotonic() - started

    assert isinstance(error, APITimeoutError), error
    assert elapsed < 1.0 + DEADLINE_SLACK


# The read phase ends the attempt long before its deadline (the longest phase, 10 s).
READ_ONLY = httpx.Timeout(10.0, read=0.3)


@pytest.mark.anyio
async def test_a_read_time_out_inside_the_body_is_a_time_out_of_a_sent_request(
    hostile: HostileServer, client_transport: str
) -> None:
    hostile.default = drip("body", every=1.5)
    async with async_client(hostile, client_transport, timeout=READ_ONLY, max_retries=0) as client:
        started = time.monotonic()
        error = await async_outcome(client, "1")
        elapsed = time.monotonic() - started

    assert isinstance(error, APITimeoutError), error
    assert error.request_sent is True
    assert elapsed < 5.0  # the read time-out, not the deadline


def test_a_read_time_out_inside_the_body_is_a_time_out_of_a_sent_request_sync(
    hostile: HostileServer,
    client_transport: str,
) -> None:
    hostile.default = drip("body", every=1.5)
    with sync_client(hostile, client_transport, timeout=READ_ONLY, max_retries=0) as client:
        started = time.monotonic()
        error = sync_outcome(client, "1")
        elapsed = time.monotonic() - started

    assert isinstance(error, APITimeoutError), error
    assert error.request_sent is True
    assert elapsed < 5.0


def test_sync_batch_of_dripping_ids_ends_within_its_attempts(hostile: HostileServer) -> None:
    hostile.default = drip("body", every=0.3)
    with sync_client(hostile, "httpx", timeout=1.0, max_retries=2) as client:
        started = time.monotonic()
        outcomes = client.cancel_many(["1", "2", "3", "4"])
        elapsed = time.monotonic() - started

    assert [type(o.error) for o in outcomes] == [APITimeoutError] * 4
    assert elapsed < 4.5


# --- redirects and proxies -------------------------------------------------------------


@pytest.mark.anyio
async def test_redirect_is_never_followed_even_by_a_following_http_client(
    hostile: HostileServer, counting: CountingServer
) -> None:
    hostile.default = redirect(f"{counting.url}/v1/message-cancel")
    async with (
        httpx.AsyncClient(follow_redirects=True) as http,
        AsyncMailPartner(KEY, http_client=http, **options(hostile, max_retries=0)) as client,
    ):
        error = await async_outcome(client, "1")

    assert counting.requests == []
    assert isinstance(error, UnexpectedResponseError)


def test_redirect_is_never_followed_even_by_a_following_http_client_sync(
    hostile: HostileServer, counting: CountingServer
) -> None:
    hostile.default = redirect(f"{counting.url}/v1/message-cancel")
    with (
        httpx.Client(follow_redirects=True) as http,
        MailPartner(KEY, http_client=http, **options(hostile, max_retries=0)) as client,
    ):
        error = sync_outcome(client, "1")

    assert counting.requests == []
    assert isinstance(error, UnexpectedResponseError)


@pytest.fixture
def proxied(monkeypatch: pytest.MonkeyPatch, counting: CountingServer) -> CountingServer:
    """Every proxy variable pointing at the counting server, and no bypass list."""
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, counting.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return counting


@pytest.mark.anyio
async def test_loopback_is_never_sent_through_a_proxy(
    hostile: HostileServer, proxied: CountingServer, client_transport: str
) -> None:
    async with async_client(hostile, client_transport, max_retries=0) as client:
        result = await client.cancel("1")

    assert result.code == 200
    assert proxied.requests == []
    assert len(hostile.requests) == 1


def test_loopback_is_never_sent_through_a_proxy_sync(
    hostile: HostileServer, client_transport: str, proxied: CountingServer
) -> None:
    with sync_client(hostile, client_transport, max_retries=0) as client:
        result = client.cancel("1")

    assert result.code == 200
    assert proxied.requests == []
    assert len(hostile.requests) == 1


# --- charsets ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_latin1_json_answer_is_read_in_its_charset(
    hostile: HostileServer, client_transport: str
) -> None:
    hostile.default = latin1_json()
    async with async_client(hostile, client_transport, max_retries=0) as client:
        result = await client.cancel("1")

    assert result.code == 200
    assert result.message == LATIN1_MESSAGE


def test_latin1_json_answer_is_read_in_its_charset_sync(
    hostile: HostileServer, client_transport: str
) -> None:
    hostile.default = latin1_json()
    with sync_client(hostile, client_transport, max_retries=0) as client:
        result = client.cancel("1")

    assert result.code == 200
    assert result.message == LATIN1_MESSAGE


# --- fork ----------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
# The warning is about the test server's own thread, not the client.
@pytest.mark.filterwarnings("ignore:This process:DeprecationWarning")
def test_forked_child_and_parent_never_get_each_others_answer(hostile: HostileServer) -> None:
    hostile.script("child", reply(4, delay=0.5))
    hostile.script("parent", reply(200))
    with sync_client(hostile, "httpx", max_retries=0, timeout=5.0) as client:
        client.cancel("warm")  # leaves a pooled keep-alive connection
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            report = b"crashed"
            try:
                os.close(read_end)
                outcome = sync_outcome(client, "child")
                report = type(outcome).__name__.encode()
            finally:
                os.write(write_end, report)
                os._exit(0)
        os.close(write_end)
        time.sleep(0.1)  # the child's request goes first, its answer comes late
        parent = sync_outcome(client, "parent")
        with os.fdopen(read_end, "rb") as pipe:
            child = pipe.read()
        os.waitpid(pid, 0)

    assert child == b"MessageNotFoundError"
    assert isinstance(parent, CancelResult), parent
    assert parent.code == 200


# --- an answer belongs to its own request -----------------------------------------------


@pytest.mark.anyio
async def test_a_stray_second_answer_is_never_taken_for_the_next_request(
    hostile: HostileServer, client_transport: str
) -> None:
    hostile.script("1", two_answers())
    hostile.default = reply(4, "Message not found")
    async with async_client(hostile, client_transport) as client:
        first = await async_outcome(client, "1")
        following = [await async_outcome(client, str(n)) for n in range(2, 5)]

    assert isinstance(first, CancelResult)
    assert first.code == 200
    assert first.message != STRAY_MESSAGE
    for outcome in following:
        assert isinstance(outcome, MessageNotFoundError), outcome
    assert all(seen.connection == 1 for seen in hostile.requests_for("1"))


def test_a_stray_second_answer_is_never_taken_for_the_next_request_sync(
    hostile: HostileServer, client_transport: str
) -> None:
    hostile.script("1", two_answers())
    hostile.default = reply(4, "Message not found")
    with sync_client(hostile, client_transport) as client:
        first = sync_outcome(client, "1")
        following = [sync_outcome(client, str(n)) for n in range(2, 5)]

    assert isinstance(first, CancelResult)
    assert first.code == 200
    assert first.message != STRAY_MESSAGE
    for outcome in following:
        assert isinstance(outcome, MessageNotFoundError), outcome


# --- one parsing rule on every transport ------------------------------------------------

# Safe (a long header) is read. Ambiguous is refused at once, with no retry: the
# request reached the server, which would frame its next answer the same way. Both
# Transfer-Encoding and Content-Length is not an API response; a Content-Length sent
# more than once (the same value, a list of it, or two values) is refused by the HTTP
# layer (aiohttp's parser refuses any repeat, so every transport does, RFC 9110
# section 8.6): an APIConnectionError that says so and is not transient. Any
# difference between transports, or a second attempt, fails.
FRAMING_CASES = {
    "big-set-cookie": (big_set_cookie, CancelResult),
    # The SDK's limit (framing.OVERSIZED_HEAD), on either side of it: each line at most
    # 16 KiB, 64 KiB in all (with the status line and Content-Type besides).
    "longest-header-line": (lambda: long_header_lines([16 * 1024], "16k"), CancelResult),
    "header-line-over-16k": (
        lambda: long_header_lines([16 * 1024 + 1], "16k+1"),
        APIConnectionError,
    ),
    "header-lines-of-60k": (lambda: long_header_lines([15 * 1024] * 4, "60k"), CancelResult),
    "header-lines-over-64k": (
        lambda: long_header_lines([13 * 1024] * 5, "65k"),
        APIConnectionError,
    ),
    "identical-content-length": (identical_content_length, APIConnectionError),
    # An interim answer first: the final answer's head is the one judged.
    "early-hints-then-identical-content-length": (
        lambda: early_hints_then(identical_content_length()),
        APIConnectionError,
    ),
    "early-hints-then-big-set-cookie": (lambda: early_hints_then(big_set_cookie()), CancelResult),
    "listed-content-length": (listed_content_length, APIConnectionError),
    "conflicting-content-length": (conflicting_content_length, APIConnectionError),
    "chunked-with-content-length": (chunked_with_content_length, UnexpectedResponseError),
}


def assert_framing_outcome(outcome: Outcome, expected: type[Outcome], case: str) -> None:
    assert type(outcome) is expected, outcome
    if isinstance(outcome, APIConnectionError):
        why = OVERSIZED_HEAD if case.startswith("header-line") else REPEATED_LENGTH
        assert outcome.message.startswith(f"the answer was refused: {why}; not retried ("), (
            outcome.message
        )
        assert outcome.request_sent
        assert not outcome.transient


@pytest.mark.anyio
@pytest.mark.parametrize("case", FRAMING_CASES, ids=list(FRAMING_CASES))
async def test_every_transport_reads_a_framing_case_the_same_way(
    hostile: HostileServer, client_transport: str, case: str
) -> None:
    make, expected = FRAMING_CASES[case]
    hostile.default = make()
    async with async_client(hostile, client_transport) as client:
        outcome = await async_outcome(client, "1")

    assert_framing_outcome(outcome, expected, case)
    assert len(hostile.requests) == 1
    assert_key_absent(KEY, texts_of(outcome))


@pytest.mark.parametrize("case", FRAMING_CASES, ids=list(FRAMING_CASES))
def test_every_transport_reads_a_framing_case_the_same_way_sync(
    hostile: HostileServer, client_transport: str, case: str
) -> None:
    make, expected = FRAMING_CASES[case]
    hostile.default = make()
    with sync_client(hostile, client_transport) as client:
        outcome = sync_outcome(client, "1")

    assert_framing_outcome(outcome, expected, case)
    assert len(hostile.requests) == 1
    assert_key_absent(KEY, texts_of(outcome))


@pytest.mark.anyio
async def test_a_refused_head_leaves_the_client_answering_the_next_call(
    hostile: HostileServer, client_transport: str
) -> None:
    hostile.script("1", identical_content_length())
    hostile.default = reply(4, "Message not found")
    async with async_client(hostile, client_transport) as client:
        refused = await async_outcome(client, "1")
        following = await async_outcome(client, "2")

    assert type(refused) is APIConnectionError, refused
    assert isinstance(following, MessageNotFoundError), following


# --- a failing ids source ----------------------------------------------------------------


def ids_then_boom(count: int = 24) -> Iterator[str]:
    yield from (str(n) for n in range(1, count + 1))
    raise RuntimeError("boom")


def ids_source_error() -> type[MailPartnerError]:
    found = mailpartner_async.__dict__.get("IdsSourceError")
    assert isinstance(found, type), "mailpartner_async.IdsSourceError does not exist"
    assert issubclass(found, MailPartnerError)
    return found


def assert_source_failure(error: BaseException, outcomes: Sequence[CancelOutcome]) -> None:
    assert isinstance(error.__cause__, RuntimeError)
    assert str(error.__cause__) == "boom"
    assert [o.message_id for o in outcomes] == [str(n) for n in range(1, 25)]
    assert all(o.ok for o in outcomes)


@pytest.mark.anyio
async def test_cancel_many_raises_ids_source_error_with_outcomes_so_far(
    hostile: HostileServer, anyio_backend: str
) -> None:
    expected = ids_source_error()
    async with async_client(hostile, "httpx") as client:
        with pytest.raises(expected) as caught:
            await client.cancel_many(ids_then_boom())

    assert_source_failure(caught.value, caught.value.outcomes)  # type: ignore[attr-defined]


def test_cancel_many_raises_ids_source_error_with_outcomes_so_far_sync(
    hostile: HostileServer,
    client_transport: str,
) -> None:
    expected = ids_source_error()
    with sync_client(hostile, client_transport) as client, pytest.raises(expected) as caught:
        client.cancel_many(ids_then_boom())

    assert_source_failure(caught.value, caught.value.outcomes)  # type: ignore[attr-defined]


async def consume(batch: AsyncBatch, seen: list[CancelOutcome]) -> None:
    async with batch as outcomes:
        async for outcome in outcomes:
            seen.append(outcome)


@pytest.mark.anyio
async def test_cancel_iter_yields_every_outcome_before_ids_source_error(
    hostile: HostileServer, anyio_backend: str
) -> None:
    expected = ids_source_error()
    seen: list[CancelOutcome] = []
    async with async_client(hostile, "httpx") as client:
        with pytest.raises(expected) as caught:
            await consume(client.cancel_iter(ids_then_boom()), seen)

    assert_source_failure(caught.value, sorted(seen, key=lambda o: int(o.message_id)))


def test_cancel_iter_yields_every_outcome_before_ids_source_error_sync(
    hostile: HostileServer,
    client_transport: str,
) -> None:
    expected = ids_source_error()
    seen: list[CancelOutcome] = []
    with (
        sync_client(hostile, client_transport) as client,
        pytest.raises(expected) as caught,
        client.cancel_iter(ids_then_boom()) as outcomes,
    ):
        seen.extend(outcomes)

    assert_source_failure(caught.value, sorted(seen, key=lambda o: int(o.message_id)))


# --- a bad id -------------------------------------------------------------------------------

HUGE_ID = 10**4999  # 5,000 digits: past int-to-str's default limit


def assert_bad_id_outcomes(outcomes: Sequence[CancelOutcome], hostile: HostileServer) -> None:
    assert len(outcomes) == 3
    assert [outcomes[0].ok, outcomes[1].ok, outcomes[2].ok] == [True, False, True]
    assert isinstance(outcomes[1].error, InvalidRequestError)
    assert sorted(seen.message_id for seen in hostile.requests) == ["1", "2"]


@pytest.mark.anyio
async def test_huge_int_id_fails_alone_before_any_request(
    hostile: HostileServer, anyio_backend: str
) -> None:
    async with async_client(hostile, "httpx") as client:
        outcomes = await client.cancel_many(["1", HUGE_ID, "2"])
        error = await async_outcome(client, HUGE_ID)

    assert_bad_id_outcomes(outcomes, hostile)
    assert isinstance(error, InvalidRequestError)


def test_huge_int_id_fails_alone_before_any_request_sync(
    hostile: HostileServer, client_transport: str
) -> None:
    with sync_client(hostile, client_transport) as client:
        outcomes = client.cancel_many(["1", HUGE_ID, "2"])
        error = sync_outcome(client, HUGE_ID)

    assert_bad_id_outcomes(outcomes, hostile)
    assert isinstance(error, InvalidRequestError)


# --- pacing after a pause -------------------------------------------------------------


@pytest.mark.anyio
async def test_rate_limit_spaces_requests_after_a_retry_after_pause(
    hostile: HostileServer, anyio_backend: str
) -> None:
    hostile.script("0", reply(429, status=429, headers=[("Retry-After", "1")]))
    async with async_client(hostile, "httpx", rate_limit=120, max_retries=2) as client:
        with anyio.fail_after(8):
            async with anyio.create_task_group() as group:
                for n in range(6):
                    group.start_soon(client.cancel, str(n))

    arrivals = sorted(seen.arrived for seen in hostile.requests)
    assert len(arrivals) == 7  # six ids, one retried
    after_pause = arrivals[1:]
    gaps = [later - earlier for earlier, later in itertools.pairwise(after_pause)]
    assert min(gaps) >= 0.45, [round(gap, 3) for gap in gaps]


# --- the command line ---------------------------------------------------------------------


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


def test_cli_misplaced_api_key_is_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    status = run_cli(["--api-key", KEY, "cancel", "1"])

    out, err = capsys.readouterr()
    assert status == 2
    assert_key_absent(KEY, [out, err])


def test_cli_bad_utf8_in_ids_file_ends_with_one_error_line(
    hostile: HostileServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MAILPARTNER_API_KEY", KEY)
    lines = [f"{n:012d}\n".encode() for n in range(1, 2001)]
    lines[1600] = b"\xff" + lines[1600]  # about 20.8 KB in
    ids_file = tmp_path / "ids.txt"
    ids_file.write_bytes(b"".join(lines))
    argv = ["cancel", "--from-file", str(ids_file), "--base-url", hostile.base_url]

    status = run_cli([*argv, "--rate-limit", "none"])

    out, err = capsys.readouterr()
    assert status == 2
    errors = [line for line in err.splitlines() if line.startswith("mailpartner: error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    printed = {line.split('"message_id": "', 1)[1].split('"', 1)[0] for line in out.splitlines()}
    assert {seen.message_id for seen in hostile.requests} <= printed
    assert_key_absent(KEY, [out, err])


def test_misbehaviour_infinite_stall_is_bounded_by_the_server() -> None:
    """The server itself: a stalled connection ends when the server stops."""
    with HostileServer() as server:
        server.default = stall()
        assert server.default.delay == math.inf
        with (
            MailPartner(KEY, **options(server, timeout=0.3, max_retries=0)) as client,
            pytest.raises(APITimeoutError),
        ):
            client.cancel("1")
    assert not server.errors
