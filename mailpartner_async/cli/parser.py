"""The command line's arguments: one argparse builder per command and option group.

Every message argparse prints is redacted (a key typed in the wrong place must not
come back in ``invalid choice``), and each option's help ends with its default.
The value types (``positive_int``, ``port`` ...) answer in argparse's own words.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, NoReturn

from .. import __version__
from .._core.secrets import redact
from .._core.settings import API_KEY_ENV, DEFAULT_RATE_LIMIT
from .converters import positive_int, rate_limit, source_address
from .fake_parser import serve_fake_parser
from .send_times import DST_CHOICES

__all__ = [
    "CommandLineParser",
    "add_client_options",
    "add_input_options",
    "build_parser",
    "keys_given",
    "parse",
    "redacted",
]


class _HelpFormatter(argparse.HelpFormatter):
    """Each option's default at the end of its help, unless the help says it already;
    none for switches, which are off unless given."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


class CommandLineParser(argparse.ArgumentParser):
    """argparse, with every error message redacted: a key typed in the wrong place
    (``mailpartner --api-key KEY cancel``) must not come back as ``invalid choice``.

    ``commands`` holds each command's parser by name, so that an unknown flag after
    a command prints that command's usage.
    """

    def __init__(self, *, keys: Sequence[str] = (), **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(**kwargs)
        self.keys = tuple(keys)
        self.commands: dict[str, argparse.ArgumentParser] = {}

    def error(self, message: str) -> NoReturn:
        super().error(redacted(message, self.keys))


def keys_given(argv: Sequence[str]) -> tuple[str, ...]:
    """The values given to ``--api-key``: every text the command prints masks them."""
    keys = []
    for index, arg in enumerate(argv):
        if arg == "--api-key" and index + 1 < len(argv):
            keys.append(argv[index + 1])
        elif arg.startswith("--api-key="):
            keys.append(arg.partition("=")[2])
    return tuple(keys)


def redacted(text: str, keys: Sequence[str]) -> str:
    """``text`` with each of ``keys`` masked, and any ``apiKey=`` value."""
    for key in keys:
        text = redact(text, key)
    return redact(text)


def parse(parser: CommandLineParser, argv: Sequence[str]) -> argparse.Namespace:
    """The arguments of ``argv``; exits 2 with the usage on an unknown flag."""
    args, extras = parser.parse_known_args(argv)
    takes_ids = args.command == "cancel" or getattr(args, "rescue_command", None) == "submit"
    if extras and takes_ids and not any(arg.startswith("-") for arg in extras):
        args.ids.extend(extras)  # argparse fills `ids` once: take ids after an option
    elif extras:
        # Name unknown flags only: a mistyped --api-key must not echo the key.
        flags = sorted({extra.split("=", 1)[0] for extra in extras if extra.startswith("-")})
        command = parser.commands.get(args.command, parser)
        if isinstance(command, CommandLineParser):  # `rescue work`: work's usage
            command = command.commands.get(getattr(args, "rescue_command", ""), command)
        command.error(f"unrecognized arguments: {' '.join(flags) or 'extra values'}")
    return args


def build_parser(keys: Sequence[str] = ()) -> CommandLineParser:
    """The ``mailpartner`` parser, with its ``cancel``, ``rescue`` and ``serve-fake``
    commands; its error messages mask ``keys``."""
    from .rescue_parser import rescue_parser  # here: it builds on this module's options

    parser = CommandLineParser(
        keys=keys,
        prog="mailpartner",
        description="Cancel scheduled emails on the Mail Partner API.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=CommandLineParser
    )
    parser.commands["cancel"] = _cancel_parser(commands, keys)
    parser.commands["rescue"] = rescue_parser(commands, keys)
    parser.commands["serve-fake"] = serve_fake_parser(commands, keys)
    return parser


def _cancel_parser(commands: Any, keys: Sequence[str]) -> argparse.ArgumentParser:
    cancel: argparse.ArgumentParser = commands.add_parser(
        "cancel",
        keys=keys,
        help="cancel scheduled emails by message id",
        description=(
            "Cancel scheduled emails. Prints one JSON line per id on stdout and a "
            "summary on stderr. Exit 0 when every id was cancelled, 1 when any was "
            "not, 2 for usage or configuration errors."
        ),
    )
    # In this order: the help lists the options as they are added.
    add_input_options(cancel)
    _add_journal_options(cancel)
    _add_pace_options(cancel)
    _add_api_options(cancel)
    return cancel


def add_client_options(parser: argparse.ArgumentParser) -> None:
    """The options of the client ``cancel`` builds, but its shared budget's
    (``--redis-url``, ``--redis-key``) and ``--sandbox``: ``rescue work`` has its own."""
    _add_concurrency_options(parser)
    _add_api_options(parser, sandbox=False)


def add_input_options(cancel: argparse.ArgumentParser, *, verb: str = "cancel") -> None:
    """Which ids, read from where, and how their send times are read."""
    cancel.add_argument("ids", nargs="*", metavar="ID", help=f"message ids to {verb}")
    cancel.add_argument(
        "--from-file",
        metavar="PATH",
        help="read ids from a file ('-' for stdin): one id a line, or JSON lines, or a "
        "header naming message_id (and send_at) split at tabs, ';' or ','; then the "
        "soonest cut-off goes first; blank lines and lines starting with # are skipped; "
        "what could be read two ways is refused (default: the IDs given only)",
    )
    cancel.add_argument(
        "--timezone",
        default="Europe/Paris",
        help="time zone of send times written without an offset (the provider's form)",
    )
    cancel.add_argument(
        "--dst-times",
        choices=DST_CHOICES,
        default="refuse",
        help="a local send time that the zone's clocks skip or show twice (daylight "
        "saving) is refused, or read as the earlier or the later of its two instants",
    )


def _add_journal_options(cancel: argparse.ArgumentParser) -> None:
    """Where the outcomes are kept, and whether to stop at the plan."""
    cancel.add_argument(
        "--journal",
        metavar="PATH",
        help="append each final outcome to PATH as it happens; a rerun with the same "
        "PATH skips the ids already final (default: no journal)",
    )
    cancel.add_argument(
        "--journal-any-target",
        action="store_true",
        help="use a --journal made for another base URL, key or the sandbox "
        "(refused by default: its outcomes are not this target's)",
    )
    cancel.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (what can be cancelled in time) and stop",
    )


def _add_pace_options(cancel: argparse.ArgumentParser) -> None:
    """How many requests at once, and how many a minute (alone or shared on Redis)."""
    _add_concurrency_options(cancel)
    cancel.add_argument(
        "--redis-url",
        metavar="URL",
        help="share the rate limit with every client on this Redis (the redis extra; "
        "default: this process paces itself alone)",
    )
    cancel.add_argument(
        "--redis-key", default="mailpartner", help="the shared budget's key (default: %(default)s)"
    )


def _add_concurrency_options(cancel: argparse.ArgumentParser) -> None:
    """How many requests at once, and how many a minute."""
    cancel.add_argument(
        "--concurrency",
        type=positive_int,
        default=None,
        help="requests in flight at once (default: the transport's best)",
    )
    cancel.add_argument(
        "--rate-limit",
        type=rate_limit,
        default=DEFAULT_RATE_LIMIT,
        metavar="N|none",
        help=f"requests a minute at most (default {DEFAULT_RATE_LIMIT}, the provider's cap; "
        "'none' for a local fake server)",
    )


def _add_api_options(cancel: argparse.ArgumentParser, *, sandbox: bool = True) -> None:
    """Which API to call, with which key, in which format."""
    cancel.add_argument(
        "--format",
        choices=("json", "xml"),
        default="json",
        dest="fmt",
        help="the format asked of the API (answers are read in either)",
    )
    cancel.add_argument(
        "--base-url",
        help="API base URL (default: $MAILPARTNER_BASE_URL, else https://api.mailpartner.fr/v1)",
    )
    cancel.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow a plain http:// base URL to a host other than this machine",
    )
    cancel.add_argument(
        "--source-address",
        type=source_address,
        metavar="IP",
        help="the address of this host the requests leave from: the provider caps each "
        "address on its own (default: the system's choice)",
    )
    cancel.add_argument(
        "--api-key",
        help=f"API key (default: ${API_KEY_ENV}; prefer the variable: "
        "arguments are visible to other users of the machine)",
        default=None,
    )
    if not sandbox:
        return
    cancel.add_argument(
        "--sandbox",
        action="store_true",
        help="rehearse against an in-process fake API where every id is scheduled an hour "
        "ahead, capped at the provider's 2000 requests a minute, paced at --rate-limit",
    )
