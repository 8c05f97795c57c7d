"""AsyncMailPartner: the async client, and the only hand-written I/O of the SDK.

The sync client in ``_sync/client.py`` is generated from this file by
``scripts/generate_sync.py``: edit here, then regenerate.
"""

from __future__ import annotations

import logging
import time
import warnings
from types import TracebackType
from typing import Self

from .._batch import AsyncBatch, AsyncIds, ProgressCallback, check_concurrency
from .._concurrency import AsyncLimiter, AsyncLoopGuard, AsyncPacer, async_sleep
from .._config import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RATE_LIMIT,
    DEFAULT_TIMEOUT,
    MAX_BODY_BYTES,
    UNSET,
    ResponseFormat,
    RetryPolicy,
    Unset,
    resolve_api_key,
    resolve_base_url,
)
from .._exceptions import APIConnectionError, ConfigurationError, MailPartnerError
from .._http import (
    TRANSPORT_ERRORS,
    USER_AGENT,
    AsyncHTTPClient,
    RawResponse,
    Timeout,
    TimeoutTypes,
    TransportName,
    connection_error,
    new_async_http_client,
    to_timeout,
)
from .._models import CancelOutcome, CancelResult
from .._protocol import (
    CancelRequest,
    build_request,
    interpret_response,
    interpret_transport_error,
)
from .._secrets import Secret, redacted_url

__all__ = ["AsyncMailPartner"]

logger = logging.getLogger("mailpartner_async")


class _AsyncPool:
    """What a client and its ``with_options`` copies share: HTTP pool and limiters."""

    def __init__(
        self,
        http: AsyncHTTPClient,
        *,
        owns_http: bool,
        max_concurrency: int,
        rate_limit: int | None,
    ) -> None:
        self.http = http
        self.owns_http = owns_http
        self.limiter = AsyncLimiter(max_concurrency)
        self.pacer = AsyncPacer(rate_limit)
        self.loop_guard = AsyncLoopGuard()
        self.closed = False

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.owns_http:
            await self.http.aclose()

    def __del__(self) -> None:
        # No I/O here: only tell the user a pool they own was never closed.
        if getattr(self, "owns_http", False) and not getattr(self, "closed", True):
            warnings.warn(
                "AsyncMailPartner was never closed: use `async with` or `await client.aclose()`",
                ResourceWarning,
                stacklevel=2,
            )


class AsyncMailPartner:
    """Cancels scheduled emails on the Mail Partner API, asynchronously.

    Safe to share between any number of tasks of one event loop: at most
    ``max_concurrency`` requests are in flight, the rest queue, and no more than
    ``rate_limit`` requests start in any minute. Works under asyncio and trio.

    ``transport="aiohttp"`` (the ``aiohttp`` extra) runs requests on aiohttp,
    several times faster under load than httpx's own transport, asyncio only.

    Arguments: ``api_key`` falls back to ``$MAILPARTNER_API_KEY`` (without one, each
    cancel fails with ``AuthenticationError``, code 1, before any request);
    ``base_url`` to ``$MAILPARTNER_BASE_URL``, then ``https://api.mailpartner.fr/v1``
    (plain ``http://`` only to loopback unless ``allow_insecure_http``); ``timeout``
    is per attempt, seconds or an ``httpx.Timeout``, and time spent queued for the
    limits does not count; ``max_retries`` counts retries after the first attempt;
    ``max_concurrency`` bounds the requests in flight; ``rate_limit`` bounds the
    requests started in any 60 seconds (``None``: no cap); ``http_client`` is yours
    and never closed by the client.

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
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        response_format: ResponseFormat = "json",
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        rate_limit: int | None = DEFAULT_RATE_LIMIT,
        allow_insecure_http: bool = False,
        http_client: AsyncHTTPClient | None = None,
        transport: TransportName = "httpx",
    ) -> None:
        key = resolve_api_key(api_key)
        self._api_key = Secret(key) if key is not None else None
        self.base_url = resolve_base_url(base_url, allow_insecure_http=allow_insecure_http)
        self.timeout = to_timeout(timeout)
        self.max_retries = _check_retries(max_retries)
        if response_format not in ("json", "xml"):
            raise ConfigurationError(
                f"response_format must be 'json' or 'xml', got {response_format!r}"
            )
        self.response_format: ResponseFormat = response_format
        _check_count("max_concurrency", max_concurrency, minimum=1)
        if rate_limit is not None:
            _check_count("rate_limit", rate_limit, minimum=1)
        self.max_concurrency = max_concurrency
        self.rate_limit = rate_limit
        self.retry_policy = RetryPolicy()
        if http_client is not None and transport != "httpx":
            raise ConfigurationError("pass either http_client or transport, not both")
        owns_http = http_client is None
        http = http_client or new_async_http_client(
            self.timeout, max_concurrency, transport, self.base_url
        )
        self._pool = _AsyncPool(
            http, owns_http=owns_http, max_concurrency=max_concurrency, rate_limit=rate_limit
        )
        self._pool.loop_guard.asyncio_only = transport == "aiohttp"

    def __repr__(self) -> str:
        key = "set" if self._api_key is not None else "missing"
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key=<{key}>)"

    @property
    def is_closed(self) -> bool:
        """True once the client (or a ``with_options`` copy of it) was closed."""
        return self._pool.closed

    def with_options(
        self,
        *,
        timeout: TimeoutTypes | Unset = UNSET,
        max_retries: int | Unset = UNSET,
    ) -> Self:
        """A client with other defaults, sharing this one's pool and limits.

        The copy shares the HTTP connection pool, the ``max_concurrency`` limiter
        and the ``rate_limit`` pacing; closing either closes both.
        """
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        if not isinstance(timeout, Unset):
            copy.timeout = to_timeout(timeout)
        if not isinstance(max_retries, Unset):
            copy.max_retries = _check_retries(max_retries)
        return copy

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool, unless it is an ``http_client`` you passed in."""
        await self._pool.aclose()

    async def cancel(
        self,
        message_id: str | int,
        *,
        timeout: TimeoutTypes | Unset = UNSET,
        max_retries: int | Unset = UNSET,
    ) -> CancelResult:
        """Cancel one scheduled email and return the API's confirmation.

        Transport failures, time-outs, code 429 and 5xx answers without a control
        code are retried (``max_retries`` times, exponential backoff with jitter,
        ``Retry-After`` honoured); control codes are final. If a retry answers
        code 5 after an earlier attempt may have reached the server, the result is
        a success with ``code=CancelCode.ALREADY_CANCELLED``: that attempt did it.

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
        request = build_request(
            self.base_url,
            self._api_key.reveal() if self._api_key is not None else None,
            message_id,
            self.response_format,
        )
        if self._pool.closed:
            raise MailPartnerError("the client is closed", message_id=request.message_id)
        self._pool.loop_guard.check()
        attempt_timeout = self.timeout if isinstance(timeout, Unset) else to_timeout(timeout)
        retries = (
            self.max_retries if isinstance(max_retries, Unset) else _check_retries(max_retries)
        )
        return await self._cancel_with_retries(request, attempt_timeout, retries)

    def cancel_iter(
        self,
        ids: AsyncIds,
        *,
        concurrency: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> AsyncBatch:
        """Cancel many ids; yield one :class:`~mailpartner_async.CancelOutcome` each.

        Outcomes come in completion order. ``ids`` may be any iterable of ids (or
        an async iterable), pulled lazily, ``concurrency`` ids ahead of what you
        consumed, so memory stays flat for millions of ids. ``concurrency``
        (default: the client's ``max_concurrency``) bounds the calls in progress;
        the client's own limits and rate limit still apply. ``on_progress`` is
        called with a :class:`~mailpartner_async.BatchProgress` after each outcome.
        A failing id never stops the batch: its error is on its outcome.

        Example::

            async for outcome in client.cancel_iter(ids):
                print(outcome.message_id, outcome.ok)

        Leaving the loop early (``break``, an exception, cancellation) stops the
        work; ``async with client.cancel_iter(ids) as outcomes:`` makes that
        deterministic.
        """
        return AsyncBatch(
            self.cancel,
            ids,
            concurrency=check_concurrency(concurrency, self.max_concurrency),
            on_progress=on_progress,
        )

    async def cancel_many(
        self,
        ids: AsyncIds,
        *,
        concurrency: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> list[CancelOutcome]:
        """Cancel many ids; return one outcome per id, in the order of ``ids``.

        Never raises for one id's failure: each outcome holds a result or an error.
        Duplicated ids are each answered. See :meth:`cancel_iter` for the arguments.

        Example::

            outcomes = await client.cancel_many(["300", "301", 302])
            not_cancelled = [o.message_id for o in outcomes if not o.ok]
        """
        by_index: dict[int, CancelOutcome] = {}
        async with self.cancel_iter(
            ids, concurrency=concurrency, on_progress=on_progress
        ) as outcomes:
            while True:
                try:
                    index, outcome = await outcomes.next_indexed()
                except StopAsyncIteration:
                    break
                by_index[index] = outcome
        return [by_index[index] for index in range(len(by_index))]

    async def _cancel_with_retries(
        self, request: CancelRequest, timeout: Timeout, retries: int
    ) -> CancelResult:
        pool = self._pool
        secret = self._api_key.reveal() if self._api_key is not None else None
        reached = False
        attempt = 0
        while True:
            attempt += 1
            async with pool.limiter:
                await pool.pacer.wait()
                started = time.perf_counter()
                try:
                    raw = await self._send(request, timeout)
                except APIConnectionError as exc:
                    verdict = interpret_transport_error(exc)
                    status = "no answer"
                else:
                    verdict = interpret_response(
                        raw,
                        message_id=request.message_id,
                        attempt=attempt,
                        earlier_attempt_reached=reached,
                        secret=secret,
                    )
                    status = str(raw.status)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "%s %s -> %s in %.1f ms",
                    request.method,
                    redacted_url(request.url, request.params),
                    status,
                    (time.perf_counter() - started) * 1000,
                )
            if verdict.result is not None:
                return verdict.result
            assert verdict.error is not None
            reached = reached or verdict.reached
            if not verdict.retry or attempt > retries:
                raise verdict.error
            delay = self.retry_policy.delay(attempt, verdict.retry_after)
            if verdict.throttle:
                # A 429 or a Retry-After speaks to the whole client: every caller waits.
                pool.pacer.pause(delay)
            logger.warning(
                "retrying cancel of message id %r in %.2f s (attempt %d of %d): %s",
                request.message_id,
                delay,
                attempt + 1,
                retries + 1,
                verdict.reason,
            )
            await async_sleep(delay)

    async def _send(self, request: CancelRequest, timeout: Timeout) -> RawResponse:
        response_started = False
        try:
            async with self._pool.http.stream(
                request.method,
                request.url,
                params=request.params,
                headers={"User-Agent": USER_AGENT},
                timeout=timeout,
            ) as response:
                response_started = True
                status, headers = response.status_code, dict(response.headers)
                declared = headers.get("content-length", "")
                if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                    # Refuse without reading: leaving httpx's byte stream half-read
                    # abandons its nested async generators, which trio reports as
                    # ResourceWarnings (encode/httpx#3686).
                    return RawResponse(status, headers, b"", oversized=True)
                body = bytearray()
                try:
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_BODY_BYTES:
                            break
                except TRANSPORT_ERRORS:
                    return RawResponse(status, headers, bytes(body), truncated=True)
                return RawResponse(status, headers, bytes(body))
        except TRANSPORT_ERRORS as exc:
            raise connection_error(
                exc, message_id=request.message_id, response_started=response_started
            ) from exc


def _check_count(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _check_retries(max_retries: object) -> int:
    return _check_count("max_retries", max_retries, minimum=0)
