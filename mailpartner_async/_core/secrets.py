"""The key holder and text redaction: every function is given the secret it must hide.

The API key travels in the query string, so any URL, body excerpt or log record
may carry it. Everything that masks it lives here, so one change of the rule (a new
spelling to hide) is made once. Nothing here knows which keys exist: a caller passes
its own :class:`Secret` (or string) to :func:`redact`, and only ``apiKey=`` values
are masked without one. The log filter for the HTTP libraries' loggers, which needs
the keys of the clients alive, is :mod:`mailpartner_async._log_redaction`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeAlias
from urllib.parse import quote, quote_plus

__all__ = [
    "REDACTED",
    "Secret",
    "SecretText",
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
    Given to :func:`redact`, its value is masked in every spelling a text may carry
    (raw, percent- or form-encoded), wherever a server echoes it back. A ``Secret``
    is referenced weakly by the log filter, so it is forgotten with its client.
    """

    __slots__ = ("__weakref__", "_spellings", "_value")

    def __init__(self, value: str) -> None:
        self._value = value
        # Worked out once: redact() masks them in every answer.
        self._spellings = _spellings(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("an API key is not pickled")


SecretText: TypeAlias = Secret | str | None
"""What a redaction is given to hide: the key in its holder, as a plain string, or none."""


def _spellings(secret: str) -> frozenset[str]:
    """What :func:`redact` masks of a key: the key as sent, percent-encoded, and
    form-encoded (a space as "+"); nothing for a key under six characters, which
    would mask ordinary words ("ok" for a key "k"). Real keys are far longer."""
    if len(secret) < _MIN_SECRET_CHARS:
        return frozenset()
    return frozenset((secret, quote(secret, safe=""), quote_plus(secret)))


def _spellings_of(secret: SecretText) -> frozenset[str]:
    if isinstance(secret, Secret):
        return secret._spellings
    return _spellings(secret) if secret else frozenset()


def redact(text: str, secret: SecretText = None) -> str:
    """``text`` with every ``apiKey=`` value, and every spelling of ``secret``, masked.

    ``secret`` is the key the caller must hide (its :class:`Secret`, or a string); it
    is masked when it has at least six characters. No other key is: a caller that
    holds a key passes it.

    >>> redact("GET /v1/message-cancel?apiKey=s3cr3t&messageId=1")
    'GET /v1/message-cancel?apiKey=[REDACTED]&messageId=1'
    >>> redact("Incorrect API key s3cr3t-key", Secret("s3cr3t-key"))
    'Incorrect API key [REDACTED]'
    """
    if "=" in text:
        text = _API_KEY_PARAM.sub(_masked_param, text)
    for spelling in _spellings_of(secret):
        if spelling in text:
            text = text.replace(spelling, REDACTED)
    return text


def _masked_param(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED


def redact_json(value: Any, secret: SecretText = None) -> Any:
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


def redacted_url(
    url: str, params: Sequence[tuple[str, str]] = (), secret: SecretText = None
) -> str:
    """The URL as it is safe to log: the key's value is never shown, nor ``secret``
    anywhere else in it (a message id that is the key by mistake)."""
    shown = "&".join(
        f"{name}={REDACTED if name == 'apiKey' else quote_plus(value)}" for name, value in params
    )
    if shown:
        url = f"{url}{'&' if '?' in url else '?'}{shown}"
    return redact(url, secret)


def excerpt(body: bytes, secret: SecretText = None) -> str:
    """A short, printable, secret-free start of a body, for error messages."""
    # Redact before cutting: a cut through the key would leave an unmasked piece.
    text = redact(body.decode(errors="replace"), secret)
    text = " ".join(text.split())
    if len(text) > _EXCERPT_CHARS:
        text = text[: _EXCERPT_CHARS - 1] + "…"
    return text
