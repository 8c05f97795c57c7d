"""AsyncMailPartner: one cancel with retries, limits and pacing, and the batch methods.

``_sync/client.py`` is generated from ``_async/client.py`` by
``scripts/generate_sync.py``: edit the async one.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from typing import TYPE_CHECKING, Self

import httpx

from .._compat import AsyncLimiter, async_sleep
from .._core.errors import APIConnectionError, BatchError, MailPartnerError
from .._core.models import CancelOutcome, CancelResult, ProgressCallback, attach_response
from .._core.protocol import (
    CancelRequest,
    Verdict,
    build_request,
    interpret_response,
    interpret_transport_error,
)
from .._core.rescue import Clock, LateRetry, not_retried
from .._core.response import ResponseInfo
from .._core.secrets import redacted_url
from .._core.settings import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_RATE_LIMIT,
    DEFAULT_TIMEOUT,
    UNSET,
    ResponseFormat,
    RetryPolicy,
    Settings,
    Timeout,
    TransportName,
    Unset,
    check_concurrency,
)
from .._journal import Journal
from .._log_redaction import attach_log_redaction
from .._rate_limiter import AsyncPacing, RateLimiter, check_rate_limiter, held_for
from .._telemetry import AttemptHook, AttemptReport, CallObservation, Observer, log_fields

if TYPE_CHECKING:
    import httpx2
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider
from .batch import AsyncBatch
from .ids import AsyncIds, AsyncStop
from .loop_guard import AsyncLoopGuard
from .pacer import AsyncPacer
from .transports import AsyncTransport, open_async_transport

__all__ = ["AsyncMailPartner"]

logger = logging.getLogger("mailpartner_async")


class _AsyncPool:
    """What a client and its ``with_options`` copies share: transport and limits.

    They belong to the process that made them: after ``os.fork()``, the child's
    first call gets a fresh pool (its parent's sockets are left alone), or, on an
    ``http_client`` of the caller's, a clear error, never an answer meant for the
    parent.
    """

    def __init__(
        self,
        settings: Settings,
        http_client: object | None,
        observer: Observer,
        rate_limiter: RateLimiter | None,
    ) -> None:
        self._settings = settings
        self._http_client = http_client
        self.observer = observer
        self._rate_limiter = rate_limiter
        self.closed = False
        self._start()

    def _start(self) -> None:
        settings = self._settings
        self.pid = os.getpid()
        self.transport: AsyncTransport = open_async_transport(settings, self._http_client)
        self.limiter = AsyncLimiter(settings.max_concurrency)
        self.pacer: AsyncPacing = (
            self._rate_limiter.async_pacer()
            if self._rate_limiter is not None
            else AsyncPacer(settings.rate_limit)
        )
        self.loop_guard = AsyncLoopGuard(asyncio_only=settings.transport == "aiohttp")

    def check(self, message_id: str) -> None:
        """Refuse a closed pool; after a fork, start over in the child."""
        if self.closed:
            raise MailPartnerError("the client is closed", message_id=message_id)
        if self.pid != os.getpid():
            if not self.transport.owned:
                raise MailPartnerError(
                    "this client was made in another process (before os.fork()) on your "
                    "http_client, whose connections belong to that process: create the "
                    "client in this process",
                    message_id=message_id,
                )
            self._start()
        self.loop_guard.check()

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.pid != os.getpid():
            return  # the parent's sockets: leave them to the parent
        if self.loop_guard.foreign():
            # Its connections belong to that loop, which alone can close them.
            raise MailPartnerError(
                "the client is closed, but its connections belong to the event loop that "
                "used it and are left open: close a client in that loop (for example in "
                "your app's lifespan)"
            )
        try:
            await self.transport.aclose()
        finally:
            await self.pacer.aclose()

    def __del__(self) -> None:
        # No I/O here: only tell the user a pool they own was never closed.
        transport = getattr(self, "transport", None)
        if transport is not None and transport.owned and not getattr(self, "closed", True):
            warnings.warn(
                "AsyncMailPartner was never closed: use `async with` or `await client.aclose()`",
                ResourceWarning,
                stacklevel=2,
            )


class AsyncMailPartner:
    """Cancels scheduled emails on the Mail Partner API.

    Safe to share between every caller of one event loop (or thread, for
    :class:`MailPartner`): at most ``max_concurrency`` requests are in flight, the
    rest queue, and no more than ``rate_limit`` requests start in any minute.

    Arguments: ``api_key`` falls back to ``$MAILPARTNER_API_KEY`` (without one, each
    cancel fails with ``AuthenticationError``, code 1, before any request);
    ``base_url`` to ``$MAILPARTNER_BASE_URL``, then ``https://api.mailpartner.fr/v1``
    (plain ``http://`` only to loopback unless ``allow_insecure_http``); ``timeout``
    is per attempt, seconds or an ``httpx.Timeout``, and time spent queued for the
    limits does not count; ``max_retries`` counts retries after the first attempt;
    ``max_concurrency`` bounds the requests in flight (default: the transport's
    measured best, 10 on httpx, 20 on httpx2, 50 on aiohttp); ``rate_limit`` bounds the
    requests started in any 60 seconds (``None``: no cap); ``http_client`` is yours
    and never closed by the client. ``transport`` names the HTTP library
    (``"httpx"``; ``"aiohttp"`` for the async client on asyncio, with the
    ``aiohttp`` extra) or is an httpx transport object to build the client's own
    pool on (as ``httpx.AsyncClient(transport=...)`` takes one, for mocks and
    fakes). ``retry_policy`` sets the backoff (:class:`RetryPolicy`).
    ``rate_limiter`` shares one pace between many clients, in many processes
    (:class:`mailpartner_async.redis.RedisRateLimiter`): the client then waits on
    the limiter's pacer instead of its own ``rate_limit``, and a 429 it meets
    pauses every client of the limiter. ``local_address`` (an IP address of this
    host, as ``"192.0.2.10"``) is the address the client's connections leave from, on
    every transport (as ``httpx.AsyncHTTPTransport(local_address=...)`` takes it): the
    provider caps each address on its own, so a fleet leaving through N addresses has
    N budgets. With your own ``http_client``, set it on that client's transport.

    Observability (see ``docs/observability.md``): ``on_attempt`` is called with an
    :class:`~mailpartner_async.AttemptInfo` after each HTTP attempt (an exception it
    raises is logged once, at WARNING, and ignored). With the ``otel`` extra, each
    call makes a ``mailpartner.cancel`` span and records metrics through
    ``tracer_provider`` and ``meter_provider``, by default OpenTelemetry's global ones.

    Example::

        async with AsyncMailPartner() as client:  # key from $MAILPARTNER_API_KEY
            result = await client.cancel("300")
            print(result.code)

    Raises :class:`~mailpartner_async.ConfigurationError` for invalid settings.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        response_format: ResponseFormat = "json",
        max_concurrency: int | None = None,
        rate_limit: int | None = DEFAULT_RATE_LIMIT,
        allow_insecure_http: bool = False,
        http_client: httpx.AsyncClient | httpx2.AsyncClient | None = None,
        transport: TransportName | httpx.AsyncBaseTransport | httpx2.AsyncBaseTransport = "httpx",
        retry_policy: RetryPolicy | None = None,
        on_attempt: AttemptHook | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        rate_limiter: RateLimiter | None = None,
        local_address: str | None = None,
    ) -> None:
        self._settings = Settings.create(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            response_format=response_format,
            max_concurrency=max_concurrency,
            rate_limit=rate_limit,
            allow_insecure_http=allow_insecure_http,
            transport=transport,
            retry_policy=retry_policy,
            local_address=local_address,
        )
        attach_log_redaction(self._settings.api_key)
        self._pool = _AsyncPool(
            self._settings,
            http_client,
            Observer.create(on_attempt, tracer_provider, meter_provider),
            check_rate_limiter(rate_limiter),
        )

    def __repr__(self) -> str:
        key = "set" if self._settings.api_key is not None else "missing"
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key=<{key}>)"

    @property
    def base_url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self._settings.base_url

    @property
    def timeout(self) -> Timeout:
        """The time-out of each attempt, phase by phase."""
        return self._settings.timeout

    @property
    def max_retries(self) -> int:
        """Retries after the first attempt."""
        return self._settings.max_retries

    @property
    def response_format(self) -> ResponseFormat:
        """The format asked of the API (the answer is read as what it is)."""
        return self._settings.response_format

    @property
    def max_concurrency(self) -> int:
        """Requests in flight at once, at most."""
        return self._settings.max_concurrency

    @property
    def rate_limit(self) -> int | None:
        """Requests started in any 60 seconds, at most (``None``: no cap)."""
        return self._settings.rate_limit

    @property
    def retry_policy(self) -> RetryPolicy:
        """The backoff between attempts."""
        return self._settings.retry_policy

    @property
    def local_address(self) -> str | None:
        """The address the client's connections leave from (``None``: the system's choice)."""
        return self._settings.local_address

    @property
    def is_closed(self) -> bool:
        """True once the client (or a ``with_options`` copy of it) was closed."""
        return self._pool.closed

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout | Timeout | Unset = UNSET,
        max_retries: int | Unset = UNSET,
    ) -> Self:
        """A client with other defaults, sharing this one's pool and limits.

        The copy shares the HTTP connection pool, the ``max_concurrency`` limiter
        and the ``rate_limit`` pacing; closing either closes both. An option left
        ``UNSET`` (not given) keeps this client's value.
        """
        copy = object.__new__(type(self))
        copy._settings = self._settings.with_overrides(timeout=timeout, max_retries=max_retries)
        copy._pool = self._pool
        return copy

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        *exc_info: object,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool, unless it is an ``http_client`` you passed in."""
        await self._pool.aclose()

    async def cancel(
        self,
        message_id: str | int,
        *,
        timeout: float | httpx.Timeout | Timeout | Unset = UNSET,
        max_retries: int | Unset = UNSET,
    ) -> CancelResult:
        """Cancel one scheduled email and return the API's confirmation.

        Transport failures, time-outs, code 429 and 5xx answers without a control
        code are retried (``max_retries`` times, exponential backoff with jitter,
        ``Retry-After`` honoured); control codes are final. If a retry answers
        code 5 after an earlier attempt may have reached the server, the result is
        a success with ``code=CancelCode.ALREADY_CANCELLED``: that attempt did it.
        ``timeout`` and ``max_retries`` apply to this call only; left ``UNSET`` (not
        given), they are the client's.

        Raises the most specific :class:`~mailpartner_async.MailPartnerError`:
        :class:`~mailpartner_async.AuthenticationError` (no key, or code 1 or 10),
        :class:`~mailpartner_async.InvalidRequestError` (blank id, code 3),
        :class:`~mailpartner_async.MessageNotFoundError` (4),
        :class:`~mailpartner_async.AlreadyCancelledError` (5),
        :class:`~mailpartner_async.CancellationTooLateError` (6),
        :class:`~mailpartner_async.AlreadySentError` (7),
        :class:`~mailpartner_async.RateLimitError`,
        :class:`~mailpartner_async.APIConnectionError`,
        :class:`~mailpartner_async.APITimeoutError` or
        :class:`~mailpartner_async.UnexpectedResponseError`; plain
        :class:`~mailpartner_async.MailPartnerError` when the client is closed or was
        first used in another event loop.

        Example::

            result = await client.cancel("300", timeout=2.0, max_retries=0)
        """
        settings = self._settings.with_overrides(timeout=timeout, max_retries=max_retries)
        return await self._cancel(message_id, settings, None)

    async def _cancel_in_batch(
        self, message_id: str | int, halt: AsyncStop, late_retry: LateRetry | None
    ) -> CancelResult:
        """The call a batch makes: :meth:`cancel`, retrying only until the batch stops,
        and its attempt in flight aborted when it does (``halt``); with ``late_retry``
        (the id's send time is known), no retry whose start would fall after its
        cut-off."""
        return await self._cancel(message_id, self._settings, halt, late_retry)

    async def _cancel(
        self,
        message_id: str | int,
        settings: Settings,
        halt: AsyncStop | None,
        late_retry: LateRetry | None = None,
    ) -> CancelResult:
        observer = self._pool.observer
        try:
            request = build_request(
                settings.base_url, settings.api_key, message_id, settings.response_format
            )
        except MailPartnerError as refused:
            # The span opens only once the id is read: a refused call still makes
            # one, with the id the error names (if any), and raises what it would
            # raise without tracing.
            with observer.call(refused.message_id, settings.api_key):
                raise
        with observer.call(request.message_id, settings.api_key) as call:
            self._pool.check(request.message_id)
            return await self._cancel_with_retries(request, settings, call, halt, late_retry)

    def cancel_iter(
        self,
        ids: AsyncIds,
        *,
        concurrency: int | None = None,
        on_progress: ProgressCallback | None = None,
        journal: Journal | str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
        window: int | None = None,
    ) -> AsyncBatch:
        """Cancel many ids; yield one :class:`~mailpartner_async.CancelOutcome` each.

        Outcomes come in completion order. ``ids`` is any iterable of ids this
        client takes (``AsyncIds``), pulled lazily, at most twice ``concurrency``
        ids ahead of what you consumed (the calls in flight and the outcomes waiting
        for you), so memory stays flat for millions of ids. ``concurrency``
        (default: the client's ``max_concurrency``) bounds the calls in progress;
        the client's own limits and rate limit still apply. ``on_progress`` is
        called with a :class:`~mailpartner_async.BatchProgress` after each outcome.
        A failing id never stops the batch: its error is on its outcome.
        Items may also be :class:`~mailpartner_async.ScheduledMessage`: those start
        earliest cut-off first, one already inside its last 5 minutes costs no
        request, and no retry is made whose start would fall after the cut-off (the
        outcome keeps the last error, its message saying so). ``journal`` (a
        :class:`~mailpartner_async.Journal` or a path) records each final outcome as
        it happens and skips ids it already holds.
        ``window`` (default 100,000) is how many scheduled messages the batch reads
        ahead to order them; ``clock`` (default: the current time in UTC) is what
        their cut-offs are checked against, a callable returning an aware
        ``datetime`` (give a test fake's clock, or a simulated one).

        Example::

            async for outcome in client.cancel_iter(ids):
                print(outcome.message_id, outcome.ok)

        Leaving the loop early (``break``, an exception, a cancel, Ctrl+C) stops
        the work; ``async with client.cancel_iter(ids) as outcomes:`` also waits
        until no call is left in flight (see :mod:`mailpartner_async._async.batch`).
        """
        return AsyncBatch(
            self._cancel_in_batch,
            ids,
            concurrency=check_concurrency(concurrency, self._settings.max_concurrency),
            on_progress=on_progress,
            journal=journal,
            clock=clock,
            window=window,
            observer=self._pool.observer,
            secret=self._settings.api_key,
        )

    async def cancel_many(
        self,
        ids: AsyncIds,
        *,
        concurrency: int | None = None,
        on_progress: ProgressCallback | None = None,
        journal: Journal | str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
        window: int | None = None,
    ) -> list[CancelOutcome]:
        """Cancel many ids; return one outcome per id, in the order of ``ids``.

        Never raises for one id's failure: each outcome holds a result or an error.
        Duplicated ids are each answered. If the ids iterable itself raises, the ids
        taken are answered first, then :class:`~mailpartner_async.IdsSourceError`
        carries their outcomes; if the batch's own machinery fails (its journal, its
        clock), :class:`~mailpartner_async.BatchError` does, and never fewer
        outcomes are returned silently. See :meth:`cancel_iter` for the arguments; ids
        skipped because the journal holds them as final get no outcome.

        Example::

            outcomes = await client.cancel_many(["300", "301", 302])
            not_cancelled = [o.message_id for o in outcomes if not o.ok]
        """
        by_index: dict[int, CancelOutcome] = {}
        async with self.cancel_iter(
            ids,
            concurrency=concurrency,
            on_progress=on_progress,
            journal=journal,
            clock=clock,
            window=window,
        ) as outcomes:
            while True:
                try:
                    index, outcome = await outcomes.next_indexed()
                except StopAsyncIteration:
                    break
                except BatchError as exc:
                    exc.outcomes = [by_index[index] for index in sorted(by_index)]
                    raise
                by_index[index] = outcome
        # Ids the journal held as final got no outcome: their positions are gaps.
        return [by_index[index] for index in sorted(by_index)]

    async def _cancel_with_retries(
        self,
        request: CancelRequest,
        settings: Settings,
        call: CallObservation,
        halt: AsyncStop | None,
        late_retry: LateRetry | None,
    ) -> CancelResult:
        reached = False
        attempt = 0
        while True:
            attempt += 1
            report = await self._attempt(request, settings.timeout, attempt, reached, halt)
            verdict = report.verdict
            delay, refused = await self._retry_delay(verdict, attempt, settings, late_retry)
            call.attempt(report, request.message_id, delay)
            if verdict.result is not None:
                call.succeeded(verdict.result)
                return verdict.result
            assert verdict.error is not None
            reached = reached or verdict.reached
            if refused is not None:
                raise not_retried(verdict.error, refused).with_traceback(None)
            if delay is None or (halt is not None and halt.is_set):
                # A fresh traceback: the one from the attempt passes through frames
                # whose locals hold what the server sent.
                raise verdict.error.with_traceback(None)
            self._log_retry(request, report, attempt, delay, settings)
            if halt is None:
                await async_sleep(delay)
            elif await halt.sleep(delay):
                raise verdict.error.with_traceback(None)  # the batch stopped: no retry
            # The backoff is over: one more look before the retry takes a start (the
            # pacer's queue may have grown meanwhile).
            refused = None if late_retry is None else late_retry(held_for(self._pool.pacer))
            if refused is not None:
                raise not_retried(verdict.error, refused).with_traceback(None)

    async def _retry_delay(
        self,
        verdict: Verdict,
        attempt: int,
        settings: Settings,
        late_retry: LateRetry | None,
    ) -> tuple[float | None, str | None]:
        """The backoff before the next attempt (None: no retry), and why a retry the
        rules allow is not made (its start would fall after the id's cut-off)."""
        if not verdict.retry or attempt > settings.max_retries:
            return None, None
        delay = settings.retry_policy.delay(attempt, verdict.retry_after)
        pacer = self._pool.pacer
        if verdict.throttle:
            # A 429 or a Retry-After speaks to the whole client: every caller waits,
            # whether or not this id retries.
            await pacer.pause(delay)
        if late_retry is not None:
            refused = late_retry(max(delay, held_for(pacer)))
            if refused is not None:
                return None, refused
        return delay, None

    def _log_retry(
        self,
        request: CancelRequest,
        report: AttemptReport,
        attempt: int,
        delay: float,
        settings: Settings,
    ) -> None:
        reason = report.verdict.reason
        fields = log_fields(
            request.message_id, attempt, report.code, delay, reason, secret=request.api_key
        )
        logger.warning(
            "retrying cancel of message id %r in %.2f s (attempt %d of %d): %s",
            fields["message_id"],
            delay,
            attempt + 1,
            settings.max_retries + 1,
            reason,
            extra=fields,
        )

    async def _attempt(
        self,
        request: CancelRequest,
        timeout: Timeout,
        attempt: int,
        reached: bool,
        halt: AsyncStop | None,
    ) -> AttemptReport:
        """One attempt, once the limits let it start, and what its answer means; a
        batch's stop (``halt``) aborts it."""
        pool = self._pool
        queued = time.perf_counter()
        async with pool.limiter:
            await pool.pacer.wait()
            started = time.perf_counter()
            try:
                raw = await pool.transport.send(request, timeout, halt)
            except APIConnectionError as exc:
                verdict = interpret_transport_error(exc)
                status = None
            else:
                verdict = interpret_response(
                    raw,
                    message_id=request.message_id,
                    attempt=attempt,
                    earlier_attempt_reached=reached,
                    secret=request.api_key,
                    now=time.time(),
                )
                status = raw.status
                info = ResponseInfo(raw.status, raw.headers, secret=request.api_key)
                _attach_response(verdict, info)
        elapsed = time.perf_counter() - started
        report = AttemptReport(verdict, status, elapsed, started - queued)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %s in %.1f ms",
                request.method,
                redacted_url(request.url, request.params, request.api_key),
                "no answer" if status is None else status,
                elapsed * 1000,
                extra=log_fields(
                    request.message_id,
                    attempt,
                    report.code,
                    None,
                    verdict.reason,
                    secret=request.api_key,
                ),
            )
        return report


def _attach_response(verdict: Verdict, response: ResponseInfo) -> None:
    """Give the result or error of ``verdict`` the answer's status and headers."""
    if verdict.result is not None:
        attach_response(verdict.result, response)
    elif verdict.error is not None:
        verdict.error.response = response
