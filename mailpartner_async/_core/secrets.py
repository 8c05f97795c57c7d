"""The one home for secrets: the key holder and text redaction.

The API key travels in the query string, so any URL, body excerpt or log record
may carry it. Everything that masks it lives here, so one change of the rule (a new
spelling to hide) is made once. The log filter for the HTTP libraries' loggers is
:mod:`mailpartner_async._log_redaction`.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote, quote_plus

__all__ = [
    "REDACTED",
    "Secret",
    "excerpt",
    "redact",
    "redact_json",
    "redact_params",
    "redacted_url",
]

REDACTED: Final = "[REDACTED]"
_KEY_PARAM: Final = "apikey"
_EXCERPT_CHARS: Final = 120
_MIN_SECRET_CHARS: Final = 6
_API_KEY_PARAM = re.compile(r"(apiKey=)[^&\s'\"<>]*", re.IGNORECASE)


class Secret:
    """A string that is never rendered by accident: repr, str and format show a mask.

    The value comes out only through :meth:`reveal`, at the one place that sends it.
    While a ``Secret`` lives, :func:`redact` and the log filter mask its value in
    every text, wherever a server echoes it back (a reason phrase, a header, a body).
    """

    __slots__ = ("__weakref__", "_spellings", "_value")

    def __init__(self, value: str) -> None:
        self._value = value
        # Worked out once: redact() masks them in every answer.
        self._spellings = _spellings(value)
        _LIVE.add(self)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("an API key is not pickled")


# Every key held by a live Secret: a text is redacted of all of them.
_LIVE: weakref.WeakSet[Secret] = weakref.WeakSet()


def _spellings(secret: str) -> frozenset[str]:
    """What :func:`redact` masks of a key: the key as sent, percent-encoded, and
    form-encoded (a space as "+"); nothing for a key under six characters, which
    would mask ordinary words ("ok" for a key "k"). Real keys are far longer."""
    if len(secret) < _MIN_SECRET_CHARS:
        return frozenset()
    return frozenset((secret, quote(secret, safe=""), quote_plus(secret)))


def redact(text: str, secret: str | None = None) -> str:
    """``text`` with every ``apiKey=`` value, and every spelling of ``secret`` and of
    each live :class:`Secret`, masked.

    A secret is masked when it has at least six characters.

    >>> redact("GET /v1/message-cancel?apiKey=s3cr3t&messageId=1")
    'GET /v1/message-cancel?apiKey=[REDACTED]&messageId=1'
    """
    if "=" in text:
        text = _API_KEY_PARAM.sub(_masked_param, text)
    spellings = [held._spellings for held in list(_LIVE)]
    if secret:
        spellings.append(_spellings(secret))
    for forms in spellings:
        for spelling in forms:
            if spelling in text:
                text = text.replace(spelling, REDACTED)
    return text


def _masked_param(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED


def redact_json(value: Any, secret: str | None = None) -> Any:
    """A JSON value with every string in it redacted, at any depth.

    Containers are copied (lists stay lists, objects become dicts with redacted
    keys); numbers, booleans and ``None`` are kept; anything else becomes its
    redacted ``repr``.
    """
    if isinstance(value, str):
        return redact(value, secret)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {redact(str(key), secret): redact_json(item, secret) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_json(item, secret) for item in value]
    return redact(repr(value), secret)


def redact_params(params: Mapping[str, str]) -> dict[str, str]:
    """The query parameters as they are safe to show: the key's value, whatever its case, masked.

    >>> redact_params({"apiKey": "s3cr3t", "messageId": "1"})
    {'apiKey': '[REDACTED]', 'messageId': '1'}
    """
    return {
        name: REDACTED if name.lower() == _KEY_PARAM else value for name, value in params.items()
    }


def redacted_url(url: str, params: Sequence[tuple[str, str]] = ()) -> str:
    """The URL as it is safe to log: the key's value is never shown."""
    shown = "&".join(
        f"{name}={REDACTED if name == 'apiKey' else quote_plus(value)}" for name, value in params
    )
    url = redact(url)
    if not shown:
        return url
    return f"{url}{'&' if '?' in url else '?'}{shown}"


def excerpt(body: bytes, secret: str | None = None) -> str:
    """A short, printable, secret-free start of a body, for error messages."""
    # Redact before cutting: a cut through the key would leave an unmasked piece.
    text = redact(body.decode(errors="replace"), secret)
    text = " ".join(text.split())
    if len(text) > _EXCERPT_CHARS:
        text = text[: _EXCERPT_CHARS - 1] + "…"
    return text
