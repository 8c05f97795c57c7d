"""``mailpartner serve-fake``: the testing fake over real HTTP, with a request log.

``--schedule-from FILE`` seeds the fake from a campaign file (read by the reader of
``cancel --from-file``, so both see the same messages at the same send times), and
the whole rescue can be rehearsed end to end: serve the file, then cancel it.

Everything that can be wrong (an empty key, a bad ``--schedule``, an unreadable
``--schedule-from``, a port in use) is found before the URL is printed, so a script
waiting for that line never waits for a server that will not come. Each request is
logged on stderr with the key masked.
"""

from __future__ import annotations

import argparse
import re
import socket
import sys
from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import Any

from .. import ConfigurationError, ScheduledMessage
from .._core.models import BatchItem
from .._core.secrets import redact_params
from .._extras import missing_extra
from .errors import UsageError
from .inputs import ids_to_cancel

__all__ = ["build_fake", "parse_schedule", "seed", "serve"]

_DELAY = re.compile(r"^(?P<id>[^=]+)=(?P<sign>[+-])(?P<amount>\d+(?:\.\d+)?)(?P<unit>[smh])$")
_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_schedule(text: str) -> tuple[str, timedelta]:
    """``"300=+4m"`` as ``("300", 4 minutes)``; ``ConfigurationError`` when malformed."""
    match = _DELAY.match(text.strip())
    if match is None:
        raise ConfigurationError(f"--schedule {text!r}: expected ID=+DELAY, such as 300=+4m")
    seconds = float(match["amount"]) * _UNITS[match["unit"]]
    if match["sign"] == "-":
        seconds = -seconds
    return match["id"].strip(), timedelta(seconds=seconds)


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


class _LoggingApp:
    """The fake's ASGI app, logging each request it answered (key masked)."""

    def __init__(self, fake: Any) -> None:
        self._fake = fake
        self._app = fake.asgi_app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._app(scope, receive, send)
        if scope["type"] == "http":
            record = self._fake.requests[-1]
            params = "&".join(f"{k}={v}" for k, v in redact_params(record.params).items())
            print(
                f"{record.method} {record.path}?{params} -> {record.status} code={record.code} "
                f"from {record.client_address}",
                file=sys.stderr,
                flush=True,
            )


def build_fake(args: argparse.Namespace) -> Any:
    """The ``FakeMailPartner`` that ``serve-fake`` with these options serves."""
    return _built(args)[0]


def _built(args: argparse.Namespace) -> tuple[Any, int]:
    """The fake, and how many messages ``--schedule-from`` scheduled in it."""
    from ..testing import FakeClock, FakeMailPartner

    if not args.api_key.strip():
        raise ConfigurationError("--api-key must not be empty")
    schedule = [parse_schedule(text) for text in args.schedule]
    fake = FakeMailPartner(
        args.api_key,
        clock=FakeClock() if args.freeze_clock else None,
        schedule_unknown=args.schedule_unknown,
        rate_limit_per_minute=args.rate_limit_per_minute,
        rate_window=args.rate_window,
    )
    for message_id, delay in schedule:
        fake.schedule(delay, message_id=message_id)
    if args.schedule_from is None:
        return fake, 0
    return fake, seed(fake, args.schedule_from, args.timezone)


def seed(fake: Any, path: str, timezone: str) -> int:
    """Schedule each message of the campaign file ``path`` in ``fake`` at its send
    time (an id without one: an hour ahead), read as ``cancel --from-file`` reads it;
    returns how many. ``UsageError`` for a file that cannot be read, an id given twice
    with two send times, or one ``--schedule`` gives too."""
    with ExitStack() as stack:
        items, _ = ids_to_cancel([], path, timezone=timezone, dry_run=True, stack=stack)
        when: dict[str, datetime | None] = {}
        for item in items:
            message_id, send_at = _message_of(item)
            if when.setdefault(message_id, send_at) != send_at:
                raise UsageError(
                    f"--schedule-from {path}: message {message_id!r} has two send times, "
                    f"{_shown(when[message_id])} and {_shown(send_at)}; keep one"
                )
    for message_id, send_at in when.items():
        try:
            fake.schedule(timedelta(hours=1) if send_at is None else send_at, message_id)
        except ValueError:
            raise UsageError(
                f"--schedule-from {path}: message {message_id!r} is given by --schedule too"
            ) from None
    if not when:
        raise UsageError(f"--schedule-from {path}: no messages in the file")
    return len(when)


def _message_of(item: BatchItem) -> tuple[str, datetime | None]:
    if isinstance(item, ScheduledMessage):
        return str(item.message_id), item.send_at
    return str(item), None


def _shown(send_at: datetime | None) -> str:
    return "none" if send_at is None else send_at.isoformat(timespec="seconds")


def serve(args: argparse.Namespace) -> int:
    """Run the fake until Ctrl+C; returns the exit status."""
    try:
        import uvicorn
    except ImportError:
        raise missing_extra("serve-fake", "cli") from None
    fake, seeded = _built(args)
    sock = _listening_socket(args.host, args.port)
    if seeded:
        print(f"scheduled {seeded} messages from {args.schedule_from}", file=sys.stderr)
    print(
        f"fake Mail Partner API on http://{args.host}:{args.port}/v1/message-cancel "
        f"(API key {args.api_key!r}); Ctrl+C stops it",
        file=sys.stderr,
        flush=True,
    )
    from ..testing import uvicorn_log_config

    config = uvicorn.Config(
        _LoggingApp(fake),
        access_log=False,
        log_level="warning",
        log_config=uvicorn_log_config(),
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0
