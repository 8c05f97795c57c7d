"""What every transport reads from the environment, once, under the SDK's own rules:
the proxy for the base URL, and the TLS settings.

No HTTP library is imported here: each transport builds its own library's objects
from these answers.
"""

from __future__ import annotations

import errno
import ssl
from collections.abc import Callable, Iterator
from typing import Final
from urllib.parse import urlsplit

from ..._core.errors import ConfigurationError
from ..._core.settings import is_loopback

__all__ = ["proxy_for", "source_failure", "tls_context", "tls_failure"]


def proxy_for(base_url: str) -> str | None:
    """The proxy the environment names for ``base_url``, as httpx reads it
    (``HTTP(S)_PROXY``, then ``ALL_PROXY``; ``NO_PROXY`` honoured), never for a
    loopback host: a local fake or tunnel must not be sent, key and all, elsewhere."""
    import urllib.request  # not loaded with the SDK: only when a client is made

    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if is_loopback(host):
        return None
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not proxy or bypass(host, proxies):
        return None
    return proxy


def tls_context(base_url: str, create: Callable[[], ssl.SSLContext]) -> ssl.SSLContext | None:
    """The TLS settings for ``base_url``, made by ``create`` (the transport's library's
    rule), or ``None`` for a plain ``http://`` URL, which needs none. Certificates that
    cannot be loaded are a ``ConfigurationError`` saying where to look."""
    if not base_url.startswith("https://"):
        return None
    try:
        return create()
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"cannot load the TLS certificates ({type(exc).__name__}): check "
            "$SSL_CERT_FILE and $SSL_CERT_DIR"
        ) from None


# Failures of the TLS layer that say nothing about the server's policy: a connection
# cut during the handshake may well succeed next time.
_TRANSIENT_TLS: Final = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)


def tls_failure(exc: BaseException) -> str | None:
    """What TLS refused, if ``exc`` is (or wraps, at any depth) a TLS refusal: the
    server's certificate did not verify, the server does not speak TLS on the port,
    or the handshake failed; ``None`` for any other failure."""
    for error in _wrapped(exc):
        # ssl's own errors only: aiohttp's subclass them, holding the real one inside.
        ours = type(error).__module__ == "ssl"
        if ours and isinstance(error, ssl.SSLCertVerificationError):
            why = error.verify_message or error.reason or "it did not verify"
            return f"the server's certificate was refused ({why})"
        if ours and isinstance(error, ssl.SSLError) and not isinstance(error, _TRANSIENT_TLS):
            if error.reason == "WRONG_VERSION_NUMBER":
                return "the server does not speak TLS on this port (is it plain HTTP?)"
            return f"the TLS handshake failed ({error.reason or type(error).__name__})"
    return None


def source_failure(exc: BaseException, local_address: str | None) -> str | None:
    """Why a connection could not leave from ``local_address``, if ``exc`` is (or
    wraps) that failure: the address is none of this host's (``EADDRNOTAVAIL``, as a
    bind to it answers); ``None`` for any other failure, or without a local address."""
    if local_address is None:
        return None
    for error in _wrapped(exc):
        if isinstance(error, OSError) and error.errno == errno.EADDRNOTAVAIL:
            return f"{local_address!r} is not an address of this host"
    return None


def _wrapped(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it holds, at any depth, each once."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        # Where the libraries keep what they wrap: the chain, aiohttp's attributes
        # (os_error, certificate_error), an exception's arguments (httpcore) and a
        # group's members (trio's "all attempts to connect failed").
        for inner in (
            error.__cause__,
            error.__context__,
            getattr(error, "os_error", None),
            getattr(error, "certificate_error", None),
            *error.args,
            *(error.exceptions if isinstance(error, BaseExceptionGroup) else ()),
        ):
            if isinstance(inner, BaseException):
                pending.append(inner)
