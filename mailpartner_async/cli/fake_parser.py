"""The arguments of ``mailpartner serve-fake``: where it listens, and what the fake answers."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from .converters import port, positive_int, positive_seconds

__all__ = ["serve_fake_parser"]


def serve_fake_parser(commands: Any, keys: Sequence[str]) -> argparse.ArgumentParser:
    serve: argparse.ArgumentParser = commands.add_parser(
        "serve-fake",
        keys=keys,
        help="serve the fake API over HTTP at /v1/message-cancel",
        description="Serve FakeMailPartner over HTTP, for any client (even curl).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=port, default=8025, help="port to listen on (1-65535)")
    serve.add_argument("--api-key", default="test-key", help="the key the fake accepts")
    _add_fake_options(serve)
    return serve


def _add_fake_options(serve: argparse.ArgumentParser) -> None:
    """What the fake answers: unknown ids, its rate cap, scheduled ids, its clock."""
    serve.add_argument(
        "--schedule-unknown",
        action="store_true",
        help="take any id not seen before as scheduled an hour ahead (otherwise: code 4)",
    )
    serve.add_argument(
        "--rate-limit-per-minute",
        type=positive_int,
        default=None,
        metavar="N",
        help="answer code 429 to a client address past N of its requests in 60 seconds, "
        "each address counted on its own, as the provider does (default: no cap)",
    )
    serve.add_argument(
        "--rate-window",
        type=positive_seconds,
        default=60.0,
        metavar="SECONDS",
        help="the window of --rate-limit-per-minute, shorter to test a scaled-down pace",
    )
    serve.add_argument(
        "--schedule",
        action="append",
        default=[],
        metavar="ID=+DELAY",
        help="schedule ID to be sent DELAY from now (+90s, +4m, +2h, or -1m: already "
        "sent); +4m makes its cancel answer code 6, -1m code 7; repeatable (default: "
        "none)",
    )
    serve.add_argument(
        "--schedule-from",
        metavar="PATH",
        help="schedule each message of a campaign file (as cancel --from-file reads it) at "
        "its send time; ids without one an hour ahead (default: none)",
    )
    serve.add_argument(
        "--timezone",
        default="Europe/Paris",
        help="time zone of --schedule-from's send times written without an offset",
    )
    serve.add_argument(
        "--freeze-clock",
        action="store_true",
        help="stop the fake's clock when it starts, so each --schedule keeps its answer "
        "(+4m stays code 6) however long the fake runs",
    )
