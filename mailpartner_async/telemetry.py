"""OpenTelemetry you opt into: the API key masked in the HTTP instrumentation's spans.

``opentelemetry-instrumentation-httpx`` (for httpx and httpx2) records each request's
full URL, query string included, in ``url.full`` (``http.url`` under the older
conventions), and masks only the parameters of a module global,
``opentelemetry.util.http.PARAMS_TO_REDACT``, which does not name ``apiKey``. The SDK
leaves that global alone, and the instrumentation has no per-client way to extend it
(its ``request_hook`` is yours to set). So with the instrumentation on, add
:class:`RedactAPIKeySpanProcessor` to the tracer provider it records through::

    provider.add_span_processor(RedactAPIKeySpanProcessor())

Needs ``opentelemetry-sdk``, where span processors live. The aiohttp transport needs
none: its instrumentation never sees the key (``docs/observability.md``).
"""

from __future__ import annotations

from ._core.errors import ConfigurationError
from ._core.secrets import redact

try:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import Span, SpanProcessor
except ImportError as exc:  # not a dependency of any extra: the user's own SDK
    raise ConfigurationError(
        "mailpartner_async.telemetry needs the OpenTelemetry SDK, which holds span "
        "processors: pip install opentelemetry-sdk"
    ) from exc

__all__ = ["RedactAPIKeySpanProcessor"]


class RedactAPIKeySpanProcessor(SpanProcessor):
    """Masks every ``apiKey=`` value in the text attributes a span starts with.

    The HTTP instrumentations give a span its URL as it starts, so the key is
    replaced before any exporter sees the span: ``url.full`` reads
    ``...?apiKey=[REDACTED]&messageId=300``. It works for every span of the provider,
    whoever made it, and touches nothing else: no global, no other attribute.

    Example::

        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.sdk.trace import TracerProvider

        from mailpartner_async.telemetry import RedactAPIKeySpanProcessor

        provider = TracerProvider()
        provider.add_span_processor(RedactAPIKeySpanProcessor())
        HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    """

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Mask the key in ``span``'s attributes; the provider calls it as the span starts."""
        for name, value in list((span.attributes or {}).items()):
            if isinstance(value, str) and "=" in value:
                redacted = redact(value)
                if redacted != value:
                    span.set_attribute(name, redacted)
