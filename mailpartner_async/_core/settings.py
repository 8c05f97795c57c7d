"""The one home of settings: defaults, UNSET, and every check on what users pass.

The clients' constructors, their per-call overrides and ``with_options``, the CLI's
flags and the fake's options all go through the functions here, once, into frozen
values (:class:`Settings`, :class:`Timeout`, :class:`RetryPolicy`). A bad value is a
:class:`~mailpartner_async.ConfigurationError` (also a ``ValueError``) raised where
it was given, never later.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import math
import os
import random
import unicodedata
from collections.abc import Callable
from typing import Final, Literal, Self, TypeGuard, overload
from urllib.parse import urlsplit

from .errors import ConfigurationError
from .secrets import Secret

__all__ = [
    "AIOHTTP_IS_ASYNC_ONLY",
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_CLIENT_ADDRESS",
    "DEFAULT_MAX_CONCURRENCY_BY_TRANSPORT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_RATE_LIMIT",
    "DEFAULT_TIMEOUT",
    "LOCAL_ADDRESS_EXTENSION",
    "MAX_BODY_BYTES",
    "UNSET",
    "ResponseFormat",
    "RetryPolicy",
    "Secret",
    "Settings",
    "Timeout",
    "TransportName",
    "Unset",
    "check_concurrency",
    "check_count",
    "check_local_address",
    "check_retries",
    "check_seconds",
    "check_timeout",
    "is_loopback",
    "resolve_api_key",
    "resolve_base_url",
]

DEFAULT_BASE_URL: Final = "https://api.mailpartner.fr/v1"
API_KEY_ENV: Final = "MAILPARTNER_API_KEY"
BASE_URL_ENV: Final = "MAILPARTNER_BASE_URL"
DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_MAX_RETRIES: Final = 2
# Measured per transport at 20 ms of latency (bench/RESULTS.md): httpx's pool slows
# down past about 10 in flight; httpx2 peaks near 20-50 and aiohttp still gains at 100.
# A transport object given in place of a name gets httpx's.
DEFAULT_MAX_CONCURRENCY_BY_TRANSPORT: Final[dict[str, int]] = {
    "httpx": 10,
    "httpx2": 20,
    "aiohttp": 50,
}
DEFAULT_RATE_LIMIT: Final = 2000
# The real answer is under 200 bytes; anything this large is not an API response.
MAX_BODY_BYTES: Final = 64 * 1024

ResponseFormat = Literal["json", "xml"]
TransportName = Literal["httpx", "httpx2", "aiohttp"]
_TRANSPORT_NAMES: Final = ("httpx", "httpx2", "aiohttp")
AIOHTTP_IS_ASYNC_ONLY: Final = (
    "transport='aiohttp' is for AsyncMailPartner on asyncio; MailPartner uses httpx"
)
"""Why the sync client refuses aiohttp (kept out of the generated modules, whose
renaming would make it read "for MailPartner")."""


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
    _refuse_hidden_characters(base_url)
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
    try:
        parts.port  # noqa: B018 - reading it is the check
    except ValueError:
        raise ConfigurationError("base_url has an invalid port") from None
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        raise ConfigurationError(
            f"refusing plain http:// to {parts.hostname!r}: the API key would travel "
            "unencrypted; use https:// or pass allow_insecure_http=True"
        )
    return base_url


def _refuse_hidden_characters(base_url: str) -> None:
    """Refuse a control, format (zero-width, bidi) or whitespace character anywhere.

    Each HTTP library treats them differently (httpx raises ``InvalidURL`` on the
    first request, aiohttp a ``ValueError``, others may quote them or cut the URL
    there), so they are refused here, the same way on every transport. The message
    names the character and its position, never the URL, which may carry a secret.
    """
    for position, char in enumerate(base_url):
        if char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Zs", "Zl", "Zp"):
            raise ConfigurationError(
                f"base_url must not contain control characters or whitespace "
                f"(U+{ord(char):04X} at position {position})"
            )


LOCAL_ADDRESS_EXTENSION: Final = "mailpartner.local_address"
"""The request extension carrying a client's ``local_address`` to a transport object
that makes no connection but answers as if from that address (the fake's)."""

DEFAULT_CLIENT_ADDRESS: Final = "127.0.0.1"
"""The address the fake counts a request from when it knows none: in process, a
client without ``local_address``; over HTTP, a peer with no address (a Unix socket)."""


def check_local_address(value: object) -> str | None:
    """The address a client's connections leave from, checked: an IPv4 or IPv6
    address as text (``None``: the system's choice), in its canonical form.

    Only an address: no host name (it would be resolved on every connection, and
    may name an address of another host), no port (the system picks the source
    port), no IPv6 zone (``%eth0``: a link-local source cannot reach the API), no
    multicast address (never the source of a connection).
    """
    if value is None:
        return None
    expected = "an IP address of this host, like '192.0.2.10' or '2001:db8::10'"
    if not isinstance(value, str):
        raise ConfigurationError(
            f"local_address must be a string holding {expected}, got {type(value).__name__}"
        )
    for position, char in enumerate(value):
        if char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Zs", "Zl", "Zp"):
            raise ConfigurationError(
                f"local_address must not contain control characters or whitespace "
                f"(U+{ord(char):04X} at position {position})"
            )
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ConfigurationError(
            f"local_address must be {expected} (no host name, no port, no brackets), got {value!r}"
        ) from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        raise ConfigurationError(
            f"local_address {value!r} has an IPv6 zone (%{address.scope_id}), which is not "
            "supported: give a global address of this host"
        )
    if address.is_multicast:
        raise ConfigurationError(
            f"local_address {value!r} is a multicast address, which cannot be the source "
            "of a connection: give an address of this host"
        )
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    # Written the same on every Python (before 3.13, str() gives ::ffff:c000:20a).
    return str(address) if mapped is None else f"::ffff:{mapped}"


def _check_one_family(base_url: str, local_address: str | None) -> None:
    """Refuse an IPv4 ``local_address`` for an IPv6 host, or the reverse, when the
    base URL names its host by address (a name may resolve to either family)."""
    host = urlsplit(base_url).hostname or ""
    try:
        target = ipaddress.ip_address(host)
    except ValueError:
        return
    if local_address is not None and ipaddress.ip_address(local_address).version != (
        target.version
    ):
        raise ConfigurationError(
            f"local_address {local_address!r} cannot reach {host!r}, an address of the "
            "other IP version: give an IPv4 local_address for an IPv4 host, IPv6 for IPv6"
        )


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP address. Other ``*.localhost`` names are not:
    they may be resolved through DNS, and so leave the machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- numbers ---------------------------------------------------------------------------


def check_count(name: str, value: object, *, minimum: int) -> int:
    """``value`` when it is an ``int`` (not a ``bool``) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def check_retries(max_retries: object) -> int:
    """Retries after the first attempt: an ``int >= 0``."""
    return check_count("max_retries", max_retries, minimum=0)


def _max_concurrency(value: object, transport: object) -> int:
    """``value`` checked; ``None``: the measured default of the transport."""
    if value is None:
        name = transport if isinstance(transport, str) else "httpx"
        return DEFAULT_MAX_CONCURRENCY_BY_TRANSPORT[name]
    return check_count("max_concurrency", value, minimum=1)


def check_concurrency(concurrency: object, default: int) -> int:
    """A batch's ``concurrency``, or ``default`` when it is ``None``."""
    if concurrency is None:
        return default
    return check_count("concurrency", concurrency, minimum=1)


def check_rate_limit(rate_limit: object) -> int | None:
    """Requests a minute (``int >= 1``), or ``None`` for no cap."""
    return None if rate_limit is None else check_count("rate_limit", rate_limit, minimum=1)


@dataclasses.dataclass(frozen=True, slots=True)
class Timeout:
    """Seconds allowed for each phase of one attempt (``None``: no limit).

    ``connect`` to open a connection, ``read`` between two bytes of the answer,
    ``write`` between two bytes of the request, ``pool`` to get a pooled
    connection.
    """

    connect: float | None
    read: float | None
    write: float | None
    pool: float | None

    @property
    def deadline(self) -> float | None:
        """The most one attempt may take in all, whatever the server does: the
        longest phase (``None`` when no phase has a limit)."""
        phases = [p for p in (self.connect, self.read, self.write, self.pool) if p is not None]
        return max(phases) if phases else None


def check_timeout(timeout: object) -> Timeout:
    """A positive number of seconds, or an ``httpx.Timeout`` (or httpx2's), checked."""
    if isinstance(timeout, Timeout):
        return timeout
    if all(hasattr(timeout, phase) for phase in ("connect", "read", "write", "pool")):
        phases = [getattr(timeout, phase) for phase in ("connect", "read", "write", "pool")]
        if all(value is None or _is_positive(value) for value in phases):
            return Timeout(*(None if value is None else float(value) for value in phases))
    elif _is_positive(timeout):
        seconds = float(timeout)
        return Timeout(seconds, seconds, seconds, seconds)
    raise ConfigurationError(
        f"timeout must be a positive number of seconds or an httpx.Timeout, got {timeout!r}"
    )


def _is_positive(value: object) -> TypeGuard[int | float]:
    """Whether ``value`` is a finite number of seconds over 0 (an int or a float, not
    a bool)."""
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and value > 0
        and math.isfinite(value)
    )


@overload
def check_seconds(name: str, value: object, *, or_none: Literal[False] = False) -> float: ...
@overload
def check_seconds(name: str, value: object, *, or_none: bool) -> float | None: ...


def check_seconds(name: str, value: object, *, or_none: bool = False) -> float | None:
    """``value`` as a float when it is a finite number of seconds over 0 (an int or a
    float, not a bool); with ``or_none``, ``None`` too. Anything else is a
    :class:`ConfigurationError` naming ``name``::

        check_seconds("lease", 30)                # 30.0
        check_seconds("ttl", None, or_none=True)  # None
        check_seconds("period", float("inf"))     # ConfigurationError: period must be ...
    """
    if or_none and value is None:
        return None
    if not _is_positive(value):
        expected = "None or a positive" if or_none else "a positive"
        raise ConfigurationError(f"{name} must be {expected} number of seconds, got {value!r}")
    return float(value)


# --- everything a client is built with --------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """A client's settings, every one checked: what ``AsyncMailPartner(...)`` and
    ``MailPartner(...)`` keep, and what :meth:`with_overrides` copies."""

    api_key: Secret | None
    base_url: str
    timeout: Timeout
    max_retries: int
    response_format: ResponseFormat
    max_concurrency: int
    rate_limit: int | None
    transport: TransportName | object
    retry_policy: RetryPolicy
    local_address: str | None = None

    @classmethod
    def create(
        cls,
        *,
        api_key: str | None,
        base_url: str | None,
        timeout: object,
        max_retries: object,
        response_format: object,
        max_concurrency: object,
        rate_limit: object,
        allow_insecure_http: bool,
        transport: object,
        retry_policy: object,
        local_address: object = None,
    ) -> Self:
        """Check every argument a client constructor was given.

        ``transport`` is a name (``"httpx"``, ``"aiohttp"``) or a transport object of
        the HTTP library, which the transport module checks further. The live objects
        a client runs with (its observer, its rate limiter) are not settings: the
        client builds and holds them.
        """
        key = resolve_api_key(api_key)
        if response_format not in ("json", "xml"):
            raise ConfigurationError(
                f"response_format must be 'json' or 'xml', got {response_format!r}"
            )
        if isinstance(transport, str) and transport not in _TRANSPORT_NAMES:
            raise ConfigurationError(
                f"transport must be one of {', '.join(map(repr, _TRANSPORT_NAMES))} "
                f"or an HTTP transport object, got {transport!r}"
            )
        if retry_policy is None:
            retry_policy = RetryPolicy()
        elif not isinstance(retry_policy, RetryPolicy):
            raise ConfigurationError(f"retry_policy must be a RetryPolicy, got {retry_policy!r}")
        base_url = resolve_base_url(base_url, allow_insecure_http=allow_insecure_http)
        source = check_local_address(local_address)
        _check_one_family(base_url, source)
        return cls(
            api_key=Secret(key) if key is not None else None,
            base_url=base_url,
            timeout=check_timeout(timeout),
            max_retries=check_retries(max_retries),
            response_format=response_format,
            max_concurrency=_max_concurrency(max_concurrency, transport),
            rate_limit=check_rate_limit(rate_limit),
            transport=transport,
            retry_policy=retry_policy,
            local_address=source,
        )

    def with_overrides(self, *, timeout: object = UNSET, max_retries: object = UNSET) -> Settings:
        """These settings with a per-call or ``with_options`` override, checked."""
        if timeout is UNSET and max_retries is UNSET:
            return self
        return dataclasses.replace(
            self,
            timeout=self.timeout if timeout is UNSET else check_timeout(timeout),
            max_retries=self.max_retries if max_retries is UNSET else check_retries(max_retries),
        )
