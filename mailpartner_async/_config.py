"""Defaults, the UNSET sentinel, the retry policy and the checks on user settings."""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import os
import random
from collections.abc import Callable
from typing import Final, Literal
from urllib.parse import urlsplit

from ._exceptions import ConfigurationError

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_RATE_LIMIT",
    "DEFAULT_TIMEOUT",
    "MAX_BODY_BYTES",
    "UNSET",
    "ResponseFormat",
    "RetryPolicy",
    "Unset",
    "resolve_api_key",
    "resolve_base_url",
]

DEFAULT_BASE_URL: Final = "https://api.mailpartner.fr/v1"
API_KEY_ENV: Final = "MAILPARTNER_API_KEY"
BASE_URL_ENV: Final = "MAILPARTNER_BASE_URL"
DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_MAX_RETRIES: Final = 2
# Measured on 2 cores against a local server: httpx 0.28's transport is fastest with
# about 10 requests in flight and slows down beyond (see docs/benchmarks.md).
DEFAULT_MAX_CONCURRENCY: Final = 10
DEFAULT_RATE_LIMIT: Final = 2000
# The real answer is under 200 bytes; anything this large is not an API response.
MAX_BODY_BYTES: Final = 64 * 1024

ResponseFormat = Literal["json", "xml"]


class Unset(enum.Enum):
    """The type of :data:`UNSET`: "argument not given", distinct from ``None``."""

    UNSET = enum.auto()

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, and how far a ``Retry-After`` is honoured.

    The n-th retry waits ``min(initial * 2 ** (n - 1), maximum)`` scaled by a random
    factor in ``[1 - jitter, 1]``; a ``Retry-After`` of at most ``max_retry_after``
    seconds is waited as given instead.
    """

    initial_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    max_retry_after: float = 60.0

    def delay(
        self,
        retry_number: int,
        retry_after: float | None = None,
        *,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait before retry number ``retry_number`` (1 for the first retry)."""
        if retry_after is not None and 0 <= retry_after <= self.max_retry_after:
            return float(retry_after)
        base = min(self.initial_delay * 2.0 ** min(retry_number - 1, 1023), self.max_delay)
        return base * (1 - self.jitter * rand())


def resolve_api_key(api_key: str | None) -> str | None:
    """The key given, else ``$MAILPARTNER_API_KEY``; blank counts as missing."""
    if api_key is None:
        api_key = os.environ.get(API_KEY_ENV)
    if api_key is None or not api_key.strip():
        return None
    return api_key.strip()


def resolve_base_url(base_url: str | None, *, allow_insecure_http: bool) -> str:
    """The base URL given, else ``$MAILPARTNER_BASE_URL``, else the default; checked.

    Refuses anything but ``https://``, except ``http://`` to a loopback host, or to
    any host when ``allow_insecure_http`` is true: the key travels in the query string.
    """
    if base_url is None:
        base_url = os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    base_url = base_url.strip().rstrip("/")
    try:
        parts = urlsplit(base_url)
    except ValueError:
        raise ConfigurationError("base_url is not a valid URL") from None
    # Messages name the scheme and host only: a URL pasted with a key or password
    # in it must not be echoed.
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"base_url must be an absolute http(s) URL with a host (scheme {parts.scheme!r})"
        )
    if "?" in base_url or "#" in base_url or "@" in parts.netloc:
        raise ConfigurationError("base_url must not carry a query, fragment or credentials")
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise ConfigurationError(
            f"refusing plain http:// to {parts.hostname!r}: the API key would travel "
            "unencrypted; use https:// or pass allow_insecure_http=True"
        )
    return base_url


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
