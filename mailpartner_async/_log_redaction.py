"""The filter that masks the API key in the HTTP libraries' log records, attached by a client.

httpx logs every request at INFO with its full URL, query string (so the key)
included; httpcore's DEBUG records show response headers, where a server may echo the
key (a redirect's ``Location``). Those records are made by code the SDK cannot give
its key to, so a filter on their loggers masks what :func:`~._core.secrets.redact`
masks in them.

Importing the SDK attaches nothing. The first client constructed attaches the one
filter to each logger of :data:`FILTERED_LOGGERS`, once for the process. The SDK's
own records (``mailpartner_async``) are not filtered: they are built redacted.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

from ._core.secrets import redact

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
    """Masks ``apiKey=`` values and live keys in a record's message.

    One instance for the process: a logger carries it once, however many clients
    there are.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._attached = False

    def attach(self) -> None:
        """Attach the filter to the loggers, if not yet."""
        with self._lock:
            if not self._attached:
                for name in FILTERED_LOGGERS:
                    logging.getLogger(name).addFilter(self)
                self._attached = True

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


_FILTER: Final = _RedactAPIKey()


def attach_log_redaction() -> None:
    """Have the HTTP libraries' records masked of ``apiKey=`` values and live keys.

    Called by each client as it is constructed: the first call attaches the filter
    to the loggers of :data:`FILTERED_LOGGERS` (once for the process, thread-safe).
    Once attached, the filter stays for the life of the process.
    """
    _FILTER.attach()
