"""What a cancel tells the outside: a hook per attempt, log fields and OpenTelemetry.

OpenTelemetry is optional (extra ``otel``, ``opentelemetry-api`` only). It is
imported on a client's first call, and only if it is installed; without it, or with
the API's default no-op providers, a call pays a few attribute look-ups: spans are
made current and filled only when they record.

Names (fixed by the contract for the span, ours for the rest):

- span ``mailpartner.cancel``: ``mailpartner.message_id``, ``mailpartner.code``,
  ``http.request.resend_count``, ``mailpartner.limits.wait`` (seconds queued for
  ``max_concurrency`` and ``rate_limit``, all attempts), ``error.type`` on failure;
- span ``mailpartner.batch`` (see :class:`BatchObservation`): the parent of a batch's
  ``mailpartner.cancel`` spans, with ``mailpartner.batch.concurrency`` and, when the
  batch ends, its counts (``mailpartner.batch.outcomes``, ``.cancelled``,
  ``.already_cancelled``, ``.too_late``, ``.already_sent``, ``.not_found``,
  ``.failed``), ``error.type`` when it stopped early;
- one event ``mailpartner.attempt`` per attempt (see :meth:`CallObservation.attempt`);
- metrics ``mailpartner.cancel.outcomes`` (counter, by ``mailpartner.code`` or
  ``error.type``), ``mailpartner.cancel.duration`` and ``mailpartner.limits.wait``
  (histograms, seconds). Their attributes come from bounded sets only: a code
  outside :class:`~mailpartner_async.CancelCode`, and an error that is none of the
  SDK's (nor a cancellation), count as ``"_OTHER"``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from ._core import errors
from ._core.errors import ConfigurationError
from ._core.models import CancelCode
from ._core.secrets import SecretText, redact
from ._extras import missing_extra
from ._version import __version__

if TYPE_CHECKING:
    from ._core.models import BatchProgress, CancelResult
    from ._core.protocol import Verdict

__all__ = [
    "AttemptHook",
    "AttemptInfo",
    "AttemptReport",
    "BatchObservation",
    "CallObservation",
    "Observer",
    "log_fields",
]

logger = logging.getLogger("mailpartner_async")

_SCOPE: Final = "mailpartner_async"


def log_fields(
    message_id: str | None,
    attempt: int | None = None,
    code: int | None = None,
    delay: float | None = None,
    reason: str | None = None,
    *,
    secret: SecretText = None,
) -> dict[str, object]:
    """The ``extra`` every log record of the SDK carries (``None`` where it does not apply).

    The message id is redacted of ``secret``, the client's key: it may be the key by
    mistake. ``reason`` is taken as given: reasons are built redacted.
    """
    return {
        "message_id": None if message_id is None else redact(message_id, secret),
        "attempt": attempt,
        "code": None if code is None else int(code),
        "delay": delay,
        "reason": reason or None,
    }


@dataclasses.dataclass(frozen=True, slots=True)
class AttemptInfo:
    """One HTTP attempt of a cancel, as the ``on_attempt`` hook receives it.

    ``status`` is the HTTP status (``None`` when no answer came) and ``code`` the
    control code the body carried; ``error`` names the error class the attempt
    ended in (``None`` when it succeeded). ``elapsed`` is the seconds the exchange
    took, ``waited`` the seconds it queued for ``max_concurrency`` and
    ``rate_limit`` first. ``will_retry`` says whether another attempt follows, after
    ``delay`` seconds (``None`` when none follows); in a batch, a retry announced can
    still be dropped when its backoff ends past its message's cut-off. ``reason``
    says why the attempt did not succeed, for logs.
    """

    message_id: str
    attempt: int
    status: int | None
    code: int | None
    error: str | None
    elapsed: float
    waited: float
    will_retry: bool
    delay: float | None
    reason: str | None


AttemptHook: TypeAlias = Callable[[AttemptInfo], object]
"""``on_attempt=``: called after each attempt; what it returns is ignored."""


@dataclasses.dataclass(slots=True)
class AttemptReport:
    """What the client measured of one attempt, before deciding on a retry."""

    verdict: Verdict
    status: int | None
    elapsed: float
    waited: float

    @property
    def code(self) -> int | None:
        verdict = self.verdict
        if verdict.result is not None:
            return int(verdict.result.code)
        code = getattr(verdict.error, "code", None)
        return None if code is None else int(code)


class _Otel:
    """A tracer and the three instruments, from the given or the global providers."""

    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        from opentelemetry import context, metrics, trace

        self.context = context
        self.trace = trace
        self.tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider=meter_provider)
        self.outcomes = meter.create_counter(
            "mailpartner.cancel.outcomes",
            unit="{call}",
            description="Cancel calls, by control code or, without one, by error type",
        )
        self.duration = meter.create_histogram(
            "mailpartner.cancel.duration",
            unit="s",
            description="Duration of cancel calls, retries and waits included",
        )
        self.limits_wait = meter.create_histogram(
            "mailpartner.limits.wait",
            unit="s",
            description="Time each attempt queued for max_concurrency and rate_limit",
        )


_UNRESOLVED: Final[Any] = object()


class Observer:
    """A client's ``on_attempt`` hook and OpenTelemetry providers, checked once.

    Shared by a client and its ``with_options`` copies. Equal observers were made
    from the same options.
    """

    __slots__ = (
        "_hook_failed",
        "_lock",
        "_otel",
        "meter_provider",
        "on_attempt",
        "tracer_provider",
    )

    def __init__(
        self,
        on_attempt: AttemptHook | None = None,
        tracer_provider: Any = None,
        meter_provider: Any = None,
    ) -> None:
        self.on_attempt = on_attempt
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self._otel: _Otel | None = _UNRESOLVED
        self._lock = threading.Lock()
        self._hook_failed = False

    @classmethod
    def create(
        cls, on_attempt: object, tracer_provider: object, meter_provider: object
    ) -> Observer:
        """Check the options; with a provider given, OpenTelemetry must be installed."""
        if on_attempt is not None and not callable(on_attempt):
            raise ConfigurationError(f"on_attempt must be callable, got {on_attempt!r}")
        for name, value, method in (
            ("tracer_provider", tracer_provider, "get_tracer"),
            ("meter_provider", meter_provider, "get_meter"),
        ):
            if value is not None and not callable(getattr(value, method, None)):
                raise ConfigurationError(f"{name} must have a {method}() method, got {value!r}")
        if on_attempt is None and tracer_provider is None and meter_provider is None:
            return DEFAULT_OBSERVER
        observer = cls(on_attempt, tracer_provider, meter_provider)
        if (tracer_provider is not None or meter_provider is not None) and observer.otel is None:
            raise missing_extra("OpenTelemetry (tracer_provider, meter_provider)", "otel")
        return observer

    @property
    def otel(self) -> _Otel | None:
        """The instruments, made on first use; ``None`` without ``opentelemetry-api``."""
        otel = self._otel
        if otel is _UNRESOLVED:
            with self._lock:
                if self._otel is _UNRESOLVED:
                    try:
                        self._otel = _Otel(self.tracer_provider, self.meter_provider)
                    except ImportError:
                        self._otel = None
                otel = self._otel
        return otel

    def call(self, message_id: str | None, secret: SecretText = None) -> CallObservation:
        """Observe one ``cancel`` call: use as ``with observer.call(id, key) as call:``.

        ``message_id`` is the id as the request carries it (``None`` when the call
        was refused before one could be read); ``secret``, the client's key, is
        masked in what the call records.
        """
        return CallObservation(self, message_id, secret)

    def hook_failed(self, info: AttemptInfo, exc: Exception, secret: SecretText = None) -> None:
        """Log the first exception of the hook at WARNING, then stay quiet."""
        if self._hook_failed:
            return
        self._hook_failed = True
        fields = log_fields(
            info.message_id,
            info.attempt,
            info.code,
            info.delay,
            redact(f"{type(exc).__name__}: {exc}", secret),
            secret=secret,
        )
        logger.warning(
            "the on_attempt hook raised (logged once per client; the call goes on): %s",
            fields["reason"],
            extra=fields,
        )

    def _key(self) -> tuple[object, ...]:
        return (self.on_attempt, self.tracer_provider, self.meter_provider)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Observer):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(tuple(id(part) for part in self._key()))

    def __repr__(self) -> str:
        return (
            f"Observer(on_attempt={self.on_attempt!r}, tracer_provider={self.tracer_provider!r}, "
            f"meter_provider={self.meter_provider!r})"
        )


DEFAULT_OBSERVER: Final = Observer()
"""No hook, the global providers: what a client gets without telemetry options."""


class CallObservation:
    """One ``cancel`` call's span, timings and hook calls.

    Entering starts the ``mailpartner.cancel`` span and, when it records, makes it
    the current span so the HTTP library's instrumentation nests under it. Leaving
    on an exception marks the span and counts the outcome by ``error.type``.
    """

    __slots__ = (
        "_observer",
        "_otel",
        "_secret",
        "_span",
        "_started",
        "_token",
        "attempts",
        "waited",
    )

    def __init__(
        self, observer: Observer, message_id: str | None, secret: SecretText = None
    ) -> None:
        self._observer = observer
        self._otel = otel = observer.otel
        self._secret = secret
        self._started = time.perf_counter()
        self._token: object = None
        self.attempts = 0
        self.waited = 0.0
        self._span: Any = None
        if otel is not None:
            span = otel.tracer.start_span("mailpartner.cancel", kind=otel.trace.SpanKind.CLIENT)
            if span.is_recording():
                if message_id is not None:
                    span.set_attribute("mailpartner.message_id", redact(message_id, secret))
                self._span = span
                self._token = otel.context.attach(otel.trace.set_span_in_context(span))

    def __enter__(self) -> CallObservation:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, _: object
    ) -> None:
        if exc is not None:
            self._finish(None, exc)

    def attempt(self, report: AttemptReport, message_id: str, delay: float | None) -> None:
        """Record one attempt: a span event, the limits histogram, the hook."""
        self.attempts += 1
        self.waited += report.waited
        otel = self._otel
        if otel is not None:
            otel.limits_wait.record(report.waited)
        hook = self._observer.on_attempt
        span = self._span
        if hook is None and span is None:
            return
        verdict = report.verdict
        info = AttemptInfo(
            message_id=message_id,
            attempt=self.attempts,
            status=report.status,
            code=report.code,
            error=None if verdict.error is None else type(verdict.error).__name__,
            elapsed=report.elapsed,
            waited=report.waited,
            will_retry=delay is not None,
            delay=delay,
            reason=verdict.reason or None,
        )
        if span is not None:
            span.add_event("mailpartner.attempt", _event_attributes(info))
        if hook is not None:
            try:
                hook(info)
            except Exception as exc:
                self._observer.hook_failed(info, exc, self._secret)

    def succeeded(self, result: CancelResult) -> None:
        """The call returns ``result``: close the span, count the outcome."""
        self._finish(result, None)

    def _finish(self, result: CancelResult | None, exc: BaseException | None) -> None:
        otel = self._otel
        if otel is None:
            return
        code = _code_of(result, exc)
        outcome: Mapping[str, str | int] = (
            {"mailpartner.code": _bounded_code(code)}
            if code is not None
            else {"error.type": _bounded_error_type(exc)}
        )
        otel.outcomes.add(1, outcome)
        otel.duration.record(time.perf_counter() - self._started, outcome)
        span = self._span
        if span is None:
            return
        try:
            if code is not None:
                span.set_attribute("mailpartner.code", code)
            span.set_attribute("http.request.resend_count", max(self.attempts - 1, 0))
            span.set_attribute("mailpartner.limits.wait", self.waited)
            if exc is not None:
                span.set_attribute("error.type", _error_type(exc))
                if isinstance(exc, Exception):
                    _record_exception(span, exc, self._secret)
                span.set_status(otel.trace.StatusCode.ERROR, type(exc).__name__)
            span.end()
        finally:
            otel.context.detach(self._token)


# The counts a batch's span ends with, as BatchProgress names them.
_BATCH_COUNTS: Final = (
    ("outcomes", "done"),
    ("cancelled", "cancelled"),
    ("already_cancelled", "already_cancelled"),
    ("too_late", "too_late"),
    ("already_sent", "already_sent"),
    ("not_found", "not_found"),
    ("failed", "failed"),
)


class BatchObservation:
    """One batch's ``mailpartner.batch`` span, the parent of its calls' spans.

    :meth:`start` opens it (as a child of the span current where the batch starts);
    each worker makes it current in its own context for as long as it runs
    (:meth:`worker`), so the ``mailpartner.cancel`` span of every call it makes nests
    under it, on asyncio, trio and threads alike; :meth:`end` closes it with the
    batch's counts. Without OpenTelemetry, or when the span does not record, each
    method returns at once and nothing else changes. A batch dropped unread and
    unclosed leaves its span open: ending it would export from ``__del__``.
    """

    __slots__ = ("_context", "_observer", "_otel", "_secret", "_span")

    def __init__(self, observer: Observer, secret: SecretText = None) -> None:
        self._observer = observer
        self._secret = secret
        self._otel: _Otel | None = None
        self._span: Any = None
        self._context: Any = None

    def start(self, concurrency: int) -> None:
        """Open the span (once); the batch starts with ``concurrency`` workers."""
        otel = self._observer.otel
        if otel is None or self._otel is not None:
            return
        self._otel = otel
        span = otel.tracer.start_span("mailpartner.batch", kind=otel.trace.SpanKind.INTERNAL)
        if span.is_recording():
            span.set_attribute("mailpartner.batch.concurrency", concurrency)
            self._span = span
            self._context = otel.trace.set_span_in_context(span)

    @contextlib.contextmanager
    def worker(self) -> Iterator[None]:
        """While a worker runs: the batch's span is current in its context."""
        otel, context = self._otel, self._context
        if otel is None or context is None:
            yield
            return
        token = otel.context.attach(context)
        try:
            yield
        finally:
            otel.context.detach(token)

    def end(self, progress: BatchProgress, error: BaseException | None = None) -> None:
        """Close the span (once) with the counts of ``progress``; ``error``: what
        stopped the batch early."""
        span, self._span = self._span, None
        if span is None or self._otel is None:
            return
        for name, field in _BATCH_COUNTS:
            span.set_attribute(f"mailpartner.batch.{name}", getattr(progress, field))
        if error is not None:
            span.set_attribute("error.type", type(error).__name__)
            if isinstance(error, Exception):
                _record_exception(span, error, self._secret)
            span.set_status(self._otel.trace.StatusCode.ERROR, type(error).__name__)
        span.end()


def _record_exception(span: Any, exc: BaseException, secret: SecretText) -> None:
    """``span.record_exception(exc)`` with the message and the stack trace redacted of
    ``secret`` and of ``apiKey=`` values: an exception's text (a transport's, chained
    into ours) may hold the URL or an echo of the key."""
    stacktrace = "".join(traceback.format_exception(exc))
    span.record_exception(
        exc,
        attributes={
            "exception.message": redact(str(exc), secret),
            "exception.stacktrace": redact(stacktrace, secret),
        },
    )


def _code_of(result: CancelResult | None, exc: BaseException | None) -> int | None:
    if result is not None:
        return int(result.code)
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


_KNOWN_CODES: Final = frozenset(int(code) for code in CancelCode)

OTHER_CODE: Final = "_OTHER"
"""The metrics' ``mailpartner.code`` for a code outside the provider's table: one
series for all of them, however many a server makes up."""


def _bounded_code(code: int) -> int | str:
    """``code`` for a metric attribute: itself if the provider documents it, else
    :data:`OTHER_CODE` (metric attributes come only from bounded sets)."""
    return code if code in _KNOWN_CODES else OTHER_CODE


def _error_type(exc: BaseException | None) -> str:
    return OTHER_CODE if exc is None else type(exc).__name__


# What ends a call: the SDK's errors, and a cancellation from outside (asyncio's,
# trio's, Ctrl+C). Anything else (a user's transport or hook raising) is a bug or
# the user's own class: one series.
_KNOWN_ERRORS: Final = frozenset(errors.__all__) | {
    "CancelledError",
    "Cancelled",
    "KeyboardInterrupt",
}


def _bounded_error_type(exc: BaseException | None) -> str:
    """``error.type`` for a metric attribute: the class name if it is one of
    :data:`_KNOWN_ERRORS`, else :data:`OTHER_CODE` (bounded, as codes are)."""
    name = _error_type(exc)
    return name if name in _KNOWN_ERRORS else OTHER_CODE


def _event_attributes(info: AttemptInfo) -> dict[str, str | int | float | bool]:
    attributes: dict[str, str | int | float | bool] = {
        "mailpartner.attempt": info.attempt,
        "mailpartner.attempt.elapsed": info.elapsed,
        "mailpartner.limits.wait": info.waited,
        "mailpartner.retry": info.will_retry,
    }
    if info.status is not None:
        attributes["http.response.status_code"] = info.status
    if info.code is not None:
        attributes["mailpartner.code"] = info.code
    if info.error is not None:
        attributes["error.type"] = info.error
    if info.delay is not None:
        attributes["mailpartner.retry.delay"] = info.delay
    if info.reason is not None:
        attributes["mailpartner.retry.reason"] = info.reason
    return attributes
