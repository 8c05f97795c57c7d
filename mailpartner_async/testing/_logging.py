"""Logging for a fake served over HTTP: uvicorn's access log quotes each request's
query, ``apiKey=`` included; these mask it."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from .._core.secrets import redact
from .._extras import missing_extra

__all__ = ["RedactAPIKeyFilter", "uvicorn_log_config"]


class RedactAPIKeyFilter(logging.Filter):
    """A :class:`logging.Filter` that masks every ``apiKey=`` value in a record.

    It rewrites the record's message and its string arguments (keeping their number
    and order, which uvicorn's access formatter relies on) and lets every record
    through. Put it on a handler to cover the records of every logger it serves.

    Example::

        handler.addFilter(RedactAPIKeyFilter())
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_redacted(arg) for arg in args)
        elif isinstance(args, Mapping):
            record.args = {name: _redacted(value) for name, value in args.items()}
        return True


def _redacted(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default log configuration with :class:`RedactAPIKeyFilter` on each
    of its handlers: pass it as ``log_config=``. A new dict each call.

    Example::

        uvicorn.run(fake.asgi_app, port=8025, log_config=uvicorn_log_config())
    """
    try:
        from uvicorn.config import LOGGING_CONFIG
    except ImportError:
        raise missing_extra("uvicorn_log_config()", "cli") from None
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_api_key"] = {
        "()": f"{__name__.rsplit('.', 1)[0]}.RedactAPIKeyFilter"
    }
    for handler in config.get("handlers", {}).values():
        handler["filters"] = [*handler.get("filters", ()), "redact_api_key"]
    return config
