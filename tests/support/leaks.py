"""Where an API key could show to a user, and the check that it shows nowhere.

Every spelling (raw, percent- and plus-encoded) is searched in ``str``/``repr`` of a
result or an error, the error's ``vars`` and ``errors``, its pickle, its traceback
rendered with the locals of every frame, every log record at DEBUG, every span the
SDK or an HTTP instrumentation exported (name, attributes, events, status, as
OpenTelemetry's JSON), every metric point (:class:`Recorded`), and every journal
line (:func:`journal_texts`).
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mailpartner_async import CancelOutcome

__all__ = [
    "Recorded",
    "assert_key_absent",
    "captured_logs",
    "journal_texts",
    "outcome_texts",
    "spellings",
    "texts_of",
]


def spellings(key: str) -> set[str]:
    return {key, quote(key, safe=""), quote(key), quote_plus(key)}


def texts_of(thing: object) -> list[str]:
    """Every text a user could see of a result or an error."""
    texts = [str(thing), repr(thing)]
    if isinstance(thing, BaseException):
        texts += [repr(vars(thing)), repr(getattr(thing, "errors", None))]
        rendered = traceback.TracebackException.from_exception(thing, capture_locals=True)
        texts.append("".join(rendered.format()))
        texts.append(pickle.dumps(thing).decode("latin-1"))
    return texts


def outcome_texts(outcomes: Sequence[CancelOutcome]) -> list[str]:
    return [text for outcome in outcomes for text in texts_of(outcome.error or outcome.result)]


def assert_key_absent(key: str, texts: Sequence[str]) -> None:
    for spelling in spellings(key):
        leaks = [text for text in texts if spelling in text]
        assert leaks == [], f"{spelling!r} leaked in {leaks!r}"


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.texts += [self.format(record), record.getMessage()]


@contextlib.contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every record of every logger at DEBUG, formatted (tracebacks included) and bare.

    For tests where pytest's function-scoped ``caplog`` does not fit (Hypothesis).
    """
    root = logging.getLogger()
    handler = _Keep()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.texts
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


class Recorded:
    """An SDK tracer provider and meter provider keeping every span and metric point in
    memory, with no span processor of the SDK's (no ``RedactAPIKeySpanProcessor``):
    give ``tracer_provider``/``meter_provider`` to a client, an instrumentation, or
    both, then scan :meth:`texts`."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def span_texts(self) -> list[str]:
        """Each finished span as OpenTelemetry's JSON: its name, attributes, events
        (``exception.message``, ``exception.stacktrace``), status and description."""
        return [span.to_json() for span in self.exporter.get_finished_spans()]

    def texts(self) -> list[str]:
        data = self.reader.get_metrics_data()
        return [*self.span_texts(), *([data.to_json()] if data is not None else [])]

    def options(self) -> dict[str, Any]:
        """The client options that trace and measure into this recorder."""
        return {"tracer_provider": self.tracer_provider, "meter_provider": self.meter_provider}

    @contextlib.contextmanager
    def instrumented(self, transport: str) -> Iterator[None]:
        """With ``transport="aiohttp"``, OpenTelemetry's aiohttp instrumentation on
        while the block runs, recording here: the SDK's own session is then traced
        (the httpx instrumentations see only a client the user gives, and so are
        tested on their own, in tests/transports/test_instrumented_spans.py)."""
        if transport != "aiohttp":
            yield
            return
        from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

        instrumentor = AioHttpClientInstrumentor()
        instrumentor.instrument(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )
        try:
            yield
        finally:
            instrumentor.uninstrument()

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def journal_texts(path: Path) -> list[str]:
    """Every line of a journal file, as text (an absent file has none)."""
    if not path.exists():
        return []
    return path.read_bytes().decode("utf-8", errors="replace").splitlines()
