"""The ``mailpartner`` command line: cancel ids in bulk, or serve the fake API.

Installed with the ``cli`` extra. ``mailpartner cancel`` prints one JSON line per id
on stdout (completion order), a summary on stderr, and a progress bar on stderr when
it is a terminal. Exit status: 0 when no id will go out (each was cancelled now or
already), 1 when any may (not found, too late, already sent, an error), 2 for a
usage or configuration error, 130 on Ctrl+C (after the summary so far).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any, NoReturn, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import anyio

from ._async.batch import AsyncBatch
from ._async.client import AsyncMailPartner
from ._core.errors import APIError, ConfigurationError, IdsSourceError
from ._core.models import BatchItem, BatchProgress, CancelOutcome, ScheduledMessage
from ._core.pacing import RateLimiter
from ._core.rescue import plan_rescue
from ._core.secrets import redact
from ._core.settings import API_KEY_ENV, DEFAULT_RATE_LIMIT, check_count, resolve_api_key
from ._ids_file import read_items
from ._journal import Journal
from ._progress import ProgressDisplay
from ._version import __version__

__all__ = ["main"]

EXIT_OK = 0
EXIT_NOT_ALL_CANCELLED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# After Ctrl+C, how long the calls in flight may take to answer.
INTERRUPT_GRACE_SECONDS = 3.0


class _UsageError(Exception):
    """A problem with what the user typed or configured: exit 2, one line."""


class _HelpFormatter(argparse.HelpFormatter):
    """Each option's default at the end of its help, unless the help says it already;
    none for switches, which are off unless given."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """argparse, with every error message redacted of ``keys``, the keys typed: a key
    typed in the wrong place (``mailpartner --api-key KEY cancel``) must not come back
    as ``invalid choice``."""

    def __init__(self, *, keys: Sequence[str] = (), **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(**kwargs)
        self.keys = tuple(keys)

    def error(self, message: str) -> NoReturn:
        super().error(_redacted(message, self.keys))


def _keys_given(argv: Sequence[str]) -> tuple[str, ...]:
    """The values given to ``--api-key``: every text the command prints masks them."""
    keys = []
    for index, arg in enumerate(argv):
        if arg == "--api-key" and index + 1 < len(argv):
            keys.append(argv[index + 1])
        elif arg.startswith("--api-key="):
            keys.append(arg.partition("=")[2])
    return tuple(keys)


def _redacted(text: str, keys: Sequence[str]) -> str:
    for key in keys:
        text = redact(text, key)
    return redact(text)


def _parser(keys: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = _Parser(
        keys=keys,
        prog="mailpartner",
        description="Cancel scheduled emails on the Mail Partner API.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    _add_cancel(commands, keys)
    _add_serve_fake(commands, keys)
    return parser


# Each command's parser, so an unknown flag after it prints that command's usage.
_SUBPARSERS: dict[str, argparse.ArgumentParser] = {}


def _add_cancel(commands: Any, keys: Sequence[str]) -> None:
    cancel = _SUBPARSERS["cancel"] = commands.add_parser(
        "cancel",
        keys=keys,
        help="cancel scheduled emails by message id",
        description=(
            "Cancel scheduled emails. Prints one JSON line per id on stdout and a "
            "summary on stderr. Exit 0 when every id was cancelled, 1 when any was "
            "not, 2 for usage or configuration errors."
        ),
    )
    cancel.add_argument("ids", nargs="*", metavar="ID", help="message ids to cancel")
    cancel.add_argument(
        "--from-file",
        metavar="PATH",
        help="read ids from a file ('-' for stdin): one id a line, or CSV or JSON lines "
        "with message_id and send_at (then the soonest cut-off goes first); blank lines "
        "and lines starting with # are skipped (default: the IDs given only)",
    )
    cancel.add_argument(
        "--timezone",
        default="Europe/Paris",
        help="time zone of send times written without an offset (the provider's form)",
    )
    cancel.add_argument(
        "--journal",
        metavar="PATH",
        help="append each final outcome to PATH as it happens; a rerun with the same "
        "PATH skips the ids already final (default: no journal)",
    )
    cancel.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (what can be cancelled in time) and stop",
    )
    cancel.add_argument(
        "--concurrency",
        type=_positive_int,
        default=None,
        help="requests in flight at once (default: the transport's best)",
    )
    cancel.add_argument(
        "--rate-limit",
        type=_rate_limit,
        default=DEFAULT_RATE_LIMIT,
        metavar="N|none",
        help=f"requests a minute at most (default {DEFAULT_RATE_LIMIT}, the provider's cap; "
        "'none' for a local fake server)",
    )
    cancel.add_argument(
        "--redis-url",
        metavar="URL",
        help="share the rate limit with every client on this Redis (the redis extra; "
        "default: this process paces itself alone)",
    )
    cancel.add_argument(
        "--redis-key", default="mailpartner", help="the shared budget's key (default: %(default)s)"
    )
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
        "--api-key",
        help=f"API key (default: ${API_KEY_ENV}; prefer the variable: "
        "arguments are visible to other users of the machine)",
        default=None,
    )
    cancel.add_argument(
        "--sandbox",
        action="store_true",
        help="run against an in-process fake API where every id is scheduled an hour ahead",
    )


def _add_serve_fake(commands: Any, keys: Sequence[str]) -> None:
    serve = _SUBPARSERS["serve-fake"] = commands.add_parser(
        "serve-fake",
        keys=keys,
        help="serve the fake API over HTTP at /v1/message-cancel",
        description="Serve FakeMailPartner over HTTP, for any client (even curl).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=_port, default=8025, help="port to listen on (1-65535)")
    serve.add_argument("--api-key", default="test-key", help="the key the fake accepts")
    serve.add_argument(
        "--schedule-unknown",
        action="store_true",
        help="take any id not seen before as scheduled an hour ahead (otherwise: code 4)",
    )
    serve.add_argument(
        "--rate-limit-per-minute",
        type=_positive_int,
        default=None,
        metavar="N",
        help="answer code 429 past N requests in 60 seconds, as the provider does "
        "(default: no cap)",
    )
    serve.add_argument(
        "--rate-window",
        type=_positive_seconds,
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
        "--freeze-clock",
        action="store_true",
        help="stop the fake's clock when it starts, so each --schedule keeps its answer "
        "(+4m stays code 6) however long the fake runs",
    )


def _positive_int(text: str) -> int:
    try:
        return check_count("the value", int(text), minimum=1)
    except ValueError:  # ConfigurationError is one too
        raise argparse.ArgumentTypeError(
            f"must be an integer of at least 1, got {text!r}"
        ) from None


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return seconds


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, got {text!r}")
    return port


def _rate_limit(text: str) -> int | None:
    if text.strip().lower() == "none":
        return None
    return _positive_int(text)


def _outcome_line(outcome: CancelOutcome) -> str:
    record: dict[str, Any] = {"message_id": outcome.message_id, "ok": outcome.ok}
    if outcome.result is not None:
        record |= {
            "code": int(outcome.result.code),
            "message": outcome.result.message,
            "error": None,
        }
    else:
        error = outcome.error
        assert error is not None
        record |= {
            "code": int(error.code) if isinstance(error, APIError) else None,
            "message": str(error),
            "error": type(error).__name__,
        }
    return json.dumps(record, ensure_ascii=False)


def _summary(progress: BatchProgress, journal: Journal | None) -> str:
    parts = [f"{progress.cancelled} cancelled now"]
    for label, count in (
        ("already cancelled", progress.already_cancelled),
        ("too late", progress.too_late),
        ("already sent", progress.already_sent),
        ("not found", progress.not_found),
        ("failed", progress.failed),
    ):
        if count:
            parts.append(f"{count} {label}")
    text = f"{', '.join(parts)} (of {progress.done})"
    if journal is not None:
        earlier = journal.previous
        text += f"; journal {journal.path}"
        if earlier.done:
            text += f" ({earlier.done} ids final from earlier runs skipped: {_counts(earlier)})"
    return text


def _counts(progress: BatchProgress) -> str:
    pairs = [
        ("cancelled", progress.cancelled),
        ("already cancelled", progress.already_cancelled),
        ("too late", progress.too_late),
        ("already sent", progress.already_sent),
        ("not found", progress.not_found),
        ("failed", progress.failed),
    ]
    return ", ".join(f"{count} {label}" for label, count in pairs if count)


def _none_goes_out(progress: BatchProgress) -> bool:
    """True when every id counted was cancelled now or already."""
    return progress.cancelled + progress.already_cancelled == progress.done


def _client(args: argparse.Namespace) -> AsyncMailPartner:
    if args.sandbox:
        from .testing import FakeMailPartner

        fake = FakeMailPartner(schedule_unknown=True)
        return fake.async_client(response_format=args.fmt)
    api_key = resolve_api_key(args.api_key)
    if api_key is None:
        raise _UsageError(f"no API key: set ${API_KEY_ENV} or pass --api-key")
    try:
        return AsyncMailPartner(
            api_key,
            base_url=args.base_url,
            response_format=args.fmt,
            rate_limit=args.rate_limit,
            rate_limiter=_shared_limiter(args),
            allow_insecure_http=args.allow_insecure_http,
        )
    except ConfigurationError as exc:
        if "allow_insecure_http" in str(exc):
            raise _UsageError(
                str(exc).replace("allow_insecure_http=True", "--allow-insecure-http")
            ) from None
        raise


async def _cancel(
    args: argparse.Namespace, items: Items, total: int | None, out: TextIO, err: TextIO
) -> int:
    client = _client(args)
    journal = Journal(args.journal) if args.journal else None
    with ExitStack() as stack:
        if journal is not None:
            stack.enter_context(journal)
            if total is not None:
                # A rerun: the ids the journal holds as final get no outcome. Exact
                # when the input is the one the journal was written for.
                total = max(total - journal.previous.done, 0)
        display = _progress_display(stack, out, err, total)
        async with client:
            batch = client.cancel_iter(items, concurrency=args.concurrency, journal=journal)
            interrupted, source_error = await _run(batch, out, display)
    progress = batch.progress  # the batch keeps the counts as outcomes arrive
    print(_summary(progress, journal), file=err)
    if interrupted:
        print("mailpartner: interrupted; rerun with the same --journal to go on", file=err)
        return EXIT_INTERRUPTED
    if source_error is not None:
        raise _UsageError(_unreadable(source_error.__cause__))
    earlier = journal.previous if journal is not None else BatchProgress()
    if progress.done == 0 and earlier.done == 0:
        where = f"in {args.from_file}" if args.from_file not in (None, "-") else "given"
        raise _UsageError(f"no ids {where}: pass IDs or --from-file")
    ok = _none_goes_out(progress) and _none_goes_out(earlier)
    return EXIT_OK if ok else EXIT_NOT_ALL_CANCELLED


async def _run(
    batch: AsyncBatch, out: TextIO, display: ProgressDisplay | None
) -> tuple[bool, IdsSourceError | None]:
    """Print each outcome; on Ctrl+C start nothing new and give the calls in flight
    a few seconds. Returns (interrupted, the ids source's error)."""
    interrupted = False
    source_error: IdsSourceError | None = None
    async with anyio.create_task_group() as group:
        with anyio.CancelScope() as reading:

            async def on_interrupt() -> None:
                nonlocal interrupted
                with anyio.open_signal_receiver(signal.SIGINT) as signals:
                    async for _ in signals:
                        if not interrupted:
                            interrupted = True
                            batch.stop_starting()
                            reading.deadline = anyio.current_time() + INTERRUPT_GRACE_SECONDS
                        else:
                            reading.cancel()  # a second Ctrl+C: stop waiting

            group.start_soon(on_interrupt)
            async with batch:
                try:
                    async for outcome in batch:
                        if display is None:
                            print(_outcome_line(outcome), file=out, flush=True)
                        else:
                            display.line(_outcome_line(outcome), batch.progress)
                except IdsSourceError as exc:
                    source_error = exc  # every id sent was reported above
        group.cancel_scope.cancel()
    return interrupted, source_error


def _shared_limiter(args: argparse.Namespace) -> RateLimiter | None:
    if args.redis_url is None:
        return None
    if args.rate_limit is None:
        raise _UsageError(
            "--redis-url shares a rate limit: it needs a number, not --rate-limit none"
        )
    try:
        from .redis import RedisRateLimiter
    except ImportError:
        raise _UsageError(
            "--redis-url needs the redis extra: "
            "pip install '.[redis]' in a clone of the repository (not on PyPI yet)"
        ) from None
    return RedisRateLimiter(args.redis_url, rate_limit=args.rate_limit, key=args.redis_key)


def _unreadable(cause: BaseException | None) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return f"{_not_utf8(cause)}; stopped there"
    return f"reading the ids failed ({type(cause).__name__}); stopped there"


def _not_utf8(error: UnicodeDecodeError) -> str:
    return f"the ids are not UTF-8 text (byte {error.object[error.start]:#04x})"


def _progress_display(
    stack: ExitStack, out: TextIO, err: TextIO, total: int | None
) -> ProgressDisplay | None:
    """The progress line on ``err``, or None when it is no terminal."""
    if not err.isatty():
        return None
    return stack.enter_context(ProgressDisplay(err, total, out))


def _timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _UsageError(f"unknown --timezone {name!r} (try Europe/Paris or UTC)") from None


Items = Sequence[BatchItem] | Iterator[BatchItem]


def _items(args: argparse.Namespace, stack: ExitStack) -> tuple[Items, int | None]:
    """The ids to cancel, and how many there are (None when unknown).

    With send times (or ``--dry-run``) every item is read into a list: the plan needs
    them all. Plain ids from a file are counted first, in a pass that reads and
    checks the whole file, so an unreadable line stops the command before any
    request and the progress line shows the total; then the file is read again as the
    batch goes, so memory stays flat. A pipe is read once, as it comes: no total.
    """
    if args.from_file is None:
        return list(args.ids), len(args.ids)
    name = args.from_file
    stream = _open_ids(name, stack)
    # Where the input starts (a stdin redirected from a file may be read part-way);
    # None for a pipe, which is read once.
    start = stream.tell() if stream.seekable() else None
    timezone = _timezone(args.timezone)
    read = read_items(stream, timezone)
    first = _first_item(read, name)
    if isinstance(first, ScheduledMessage) or args.dry_run:
        items = [*args.ids, *_all_items(read, name, first)]
        return items, len(items)
    head: list[BatchItem] = [*args.ids] if first is None else [*args.ids, first]
    if start is None:
        return itertools.chain(head, read), None
    total = len(head) + _count(read, name)
    stream.seek(start)
    again = read_items(stream, timezone)
    next(again, None)  # the first item, already in head
    return itertools.chain(head, again), total


def _open_ids(name: str, stack: ExitStack) -> TextIO:
    if name == "-":
        # UTF-8 and strict, as files are read, whatever the locale says.
        reconfigure = getattr(sys.stdin, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(encoding="utf-8", errors="strict")
        return sys.stdin
    try:
        return stack.enter_context(open(name, encoding="utf-8"))
    except OSError as exc:
        raise _UsageError(f"cannot read {name}: {exc.strerror}") from None


def _first_item(read: Iterator[BatchItem], name: str) -> BatchItem | None:
    try:
        return next(read, None)
    except ValueError as exc:
        raise _UsageError(_bad_input(name, exc)) from None


def _all_items(read: Iterator[BatchItem], name: str, first: BatchItem | None) -> list[BatchItem]:
    try:
        return ([] if first is None else [first]) + list(read)
    except ValueError as exc:
        raise _UsageError(_bad_input(name, exc)) from None


def _count(read: Iterator[BatchItem], name: str) -> int:
    try:
        return sum(1 for _ in read)
    except ValueError as exc:
        raise _UsageError(_bad_input(name, exc)) from None


def _bad_input(name: str, exc: ValueError) -> str:
    """A line saying why the ids could not be read; read before any request."""
    if isinstance(exc, UnicodeDecodeError):
        return f"{name}: {_not_utf8(exc)}; nothing was sent"
    return f"{name}: {exc}"


def _print_plan(items: Sequence[BatchItem], rate_limit: int | None, err: TextIO) -> None:
    plan = plan_rescue(items, now=datetime.now(UTC), rate_limit=rate_limit)
    print(plan.describe(), file=err, flush=True)


def _check_cancel_args(args: argparse.Namespace) -> None:
    if args.sandbox and args.base_url:
        raise _UsageError("--sandbox and --base-url exclude each other")
    if args.sandbox and args.api_key is not None:
        raise _UsageError("--sandbox and --api-key exclude each other (the sandbox has its own)")


def _run_cancel(args: argparse.Namespace) -> int:
    _check_cancel_args(args)
    with ExitStack() as stack:
        items, total = _items(args, stack)
        if isinstance(items, list):
            if not items and args.from_file is not None:
                raise _UsageError(f"no ids in {args.from_file}")
            if args.dry_run or any(isinstance(item, ScheduledMessage) for item in items):
                rate = None if args.sandbox else args.rate_limit
                _print_plan(items, rate, sys.stderr)
            if args.dry_run:
                return EXIT_OK
        return anyio.run(_cancel, args, items, total, sys.stdout, sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    keys = _keys_given(argv)
    parser = _parser(keys)
    args, extras = parser.parse_known_args(argv)
    if extras:
        if args.command == "cancel" and not any(extra.startswith("-") for extra in extras):
            args.ids.extend(extras)  # argparse fills `ids` once: take ids after an option
        else:
            # Name unknown flags only: a mistyped --api-key must not echo the key.
            flags = sorted({extra.split("=", 1)[0] for extra in extras if extra.startswith("-")})
            command = _SUBPARSERS.get(args.command, parser)
            command.error(f"unrecognized arguments: {' '.join(flags) or 'extra values'}")
    try:
        if args.command == "serve-fake":
            from ._serve_fake import serve

            return serve(args)
        return _run_cancel(args)
    except (_UsageError, ConfigurationError) as exc:
        print(f"mailpartner: error: {_redacted(str(exc), keys)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mailpartner: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
