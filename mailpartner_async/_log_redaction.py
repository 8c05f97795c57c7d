"""The filter that masks the API key in the HTTP libraries' log records, attached by a client.

httpx logs every request at INFO with its full URL, query string (so the key)
included; httpcore's DEBUG records show response headers, where a server may echo the
key (a redirect's ``Location``). Those records are made by code the SDK cannot give
its key to, so a filter on their loggers masks ``apiKey=`` values and the keys of the
clients alive.

Importing the SDK attaches nothing. The first client constructed attaches the one
filter to each logger of :data:`FILTERED_LOGGERS`, once for the process, and every
client hands it its key, held weakly: a key is forgotten with the last client holding
it. The SDK's own records (``mailpartner_async``) are not filtered: they are built
redacted, with the client's key.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Final

from ._core.secrets import Secret, redact

__all__ = ["FILTERED_LOGGERS", "attach_log_redaction"]

# A filter acts on its own logger's records only, not on those its children propagate.
FILTERED_LOGGERS: Final = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    # The httpx2 fork logs under its own names.
    "httpx2",
    "httpcore2.connection",
    "httpcore2.http11",
    "httpcore2.http2",
    "httpcore2.proxy",
    "httpcore2.socks",
)


class _RedactAPIKey(logging.Filter):
    """Masks ``apiKey=`` values and the keys of live clients in a record's message.

    One instance for the process: a logger carries it once, however many clients
    there are, and a record costs one pass per live key. The keys are a weak set, so
    a client that is never closed (a sync client often is not) leaves nothing behind.
    """

    def __init__(self) -> None:
        super().__init__()
        self._live: weakref.WeakSet[Secret] = weakref.WeakSet()
        # Reentrant: a record logged while the set is read (a finalizer run by the
        # garbage collector, in this thread) must not deadlock.
        self._lock = threading.RLock()
        self._attached = False

    def protect(self, key: Secret | None) -> None:
        """Mask ``key`` while it lives; attach the filter to the loggers if not yet."""
        with self._lock:
            if key is not None:
                self._live.add(key)
            if not self._attached:
                for name in FILTERED_LOGGERS:
                    logging.getLogger(name).addFilter(self)
                self._attached = True

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        with self._lock:
            keys = list(self._live)
        redacted = redact(message)
        for key in keys:
            redacted = redact(redacted, key)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


_FILTER: Final = _RedactAPIKey()


def attach_log_redaction(key: Secret | None) -> None:
    """Have the HTTP libraries' records masked of ``key`` (and of any ``apiKey=`` value).

    Called by each client as it is constructed: the first call attaches the filter
    to the loggers of :data:`FILTERED_LOGGERS` (once for the process, thread-safe);
    every call adds the client's key, which the filter forgets once no client holds
    it. Once attached, the filter stays for the life of the process.
    """
    _FILTER.protect(key)
