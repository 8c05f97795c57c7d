"""The client ``mailpartner cancel`` runs with: the sandbox's, or the API's with its
key and, with ``--redis-url``, a rate limit shared through Redis."""

from __future__ import annotations

import argparse

from .. import AsyncMailPartner, ConfigurationError
from .._core.settings import API_KEY_ENV, resolve_api_key
from .._extras import install_command
from .._rate_limiter import RateLimiter
from .errors import UsageError

__all__ = ["build_client", "shared_limiter"]


def build_client(args: argparse.Namespace) -> AsyncMailPartner:
    """The client the options ask for: the sandbox's, or the API's with its key."""
    if args.sandbox:
        from .sandbox import sandbox_client, sandbox_fake

        return sandbox_client(
            sandbox_fake(),
            rate_limit=args.rate_limit,
            response_format=args.fmt,
            local_address=args.source_address,
        )
    api_key = resolve_api_key(args.api_key)
    if api_key is None:
        raise UsageError(f"no API key: set ${API_KEY_ENV} or pass --api-key")
    try:
        return AsyncMailPartner(
            api_key,
            base_url=args.base_url,
            response_format=args.fmt,
            rate_limit=args.rate_limit,
            rate_limiter=shared_limiter(args),
            allow_insecure_http=args.allow_insecure_http,
            local_address=args.source_address,
        )
    except ConfigurationError as exc:
        if "allow_insecure_http" in str(exc):
            raise UsageError(
                str(exc).replace("allow_insecure_http=True", "--allow-insecure-http")
            ) from None
        raise


def shared_limiter(args: argparse.Namespace) -> RateLimiter | None:
    if args.redis_url is None:
        return None
    if args.rate_limit is None:
        raise UsageError(
            "--redis-url shares a rate limit: it needs a number, not --rate-limit none"
        )
    try:
        from ..redis import RedisRateLimiter
    except ImportError:
        raise UsageError(f"--redis-url needs the redis extra: {install_command('redis')}") from None
    try:
        return RedisRateLimiter(args.redis_url, rate_limit=args.rate_limit, key=args.redis_key)
    except ConfigurationError as exc:
        raise UsageError(f"--redis-url: {exc}; give one like redis://host:6379/0") from None
