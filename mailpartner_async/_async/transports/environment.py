"""What every transport reads from the environment, once, under the SDK's own rules:
the proxy for the base URL, and the TLS settings.

No HTTP library is imported here: each transport builds its own library's objects
from these answers.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from urllib.parse import urlsplit

from ..._core.errors import ConfigurationError
from ..._core.settings import is_loopback

__all__ = ["proxy_for", "tls_context"]


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
