"""The key in an aiohttp request where nothing of aiohttp shows it: below its traces and errors.

aiohttp's traces (each ``TraceConfig``, and so OpenTelemetry's aiohttp
instrumentation, which records ``url.full`` and every exception it sees) are given
the URL a request is made with, and aiohttp's errors render that URL
(``ClientResponseError``: ``url=...``) or the request's target
(``ConnectionTimeoutError``: ``Connection timeout to host ...``). So the transport
makes each request with the key masked in its URL (``apiKey=[REDACTED]``), and a
per-request middleware, :class:`KeyedAttempt`, puts the URL with the key on the
request (``ClientRequest.url``: the target aiohttp sends) only once the traces have
seen it. Whatever aiohttp raises under the middleware is kept aside for the
transport's exception map, and what goes up through aiohttp's traces is a
stand-in, :class:`WithheldError`: the class name and the redacted text, nothing chained.

The stand-in is neither ``ClientOSError`` nor ``ServerDisconnectedError``, the two
failures after which aiohttp sends an idempotent request again on its own: a cancel
is never re-sent unseen (a second one answers code 5, and every attempt is counted).
"""

from __future__ import annotations

import aiohttp
import yarl

from ..._core.secrets import Secret, redact

__all__ = ["KeyedAttempt", "WithheldError"]


class WithheldError(aiohttp.ClientError):
    """What aiohttp's traces see of a failure under :class:`KeyedAttempt`: the name of
    aiohttp's error and its text, redacted; the error itself is the attempt's
    :attr:`KeyedAttempt.failure`."""


class KeyedAttempt:
    """One attempt's middleware: sends ``url`` (the URL with the key) in place of the
    masked URL the request was made with, and keeps what failed under it."""

    __slots__ = ("_secret", "_url", "failure")

    def __init__(self, url: yarl.URL, secret: Secret) -> None:
        self._url = url
        self._secret = secret
        self.failure: Exception | None = None

    async def __call__(
        self, request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        request.url = self._url
        try:
            return await handler(request)
        except Exception as exc:
            self.failure = exc
            text = redact(str(exc), self._secret)
            raise WithheldError(
                f"{type(exc).__name__}: {text}" if text else type(exc).__name__
            ) from None

    def original(self, exc: Exception) -> Exception:
        """What aiohttp raised: ``exc`` itself, unless it is the stand-in."""
        if isinstance(exc, WithheldError) and self.failure is not None:
            return self.failure
        return exc

    def __repr__(self) -> str:
        return "KeyedAttempt(url=[REDACTED])"
