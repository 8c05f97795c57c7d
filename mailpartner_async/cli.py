"""The ``mailpartner`` command line: cancel ids in bulk, or serve the fake API.

Installed with the ``cli`` extra. ``mailpartner cancel`` prints one JSON line per id
on stdout (completion order), a summary on stderr, and a progress bar on stderr when
it is a terminal. Exit status: 0 when every id was cancelled, 1 when any was not,
2 for a usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from typing import IO, Any, NoReturn, TextIO

import anyio

from ._async.client import AsyncMailPartner
from ._compat import RateLimiter
from ._config import API_KEY_ENV, DEFAULT_RATE_LIMIT, check_count, resolve_api_key
from ._exceptions import APIError, ConfigurationError, IdsSourceError
from ._models import BatchProgress, CancelOutcome
from ._secrets import Secret, redact

__all__ = ["main"]

EXIT_OK = 0
EXIT_NOT_ALL_CANCELLED = 1
EXIT_USAGE = 2


class _UsageError(Exception):
    """A problem with what the user typed or configured: exit 2, one line."""


class _Parser(argparse.ArgumentParser):
    """argparse, with every error message redacted: a key typed in the wrong place
    (``mailpartner --api-key KEY cancel``) must not come back as ``invalid choice``."""

    def error(self, message: str) -> NoReturn:
        super().error(redact(message))


def _hold_keys(argv: Sequence[str]) -> list[Secret]:
    """The values given to ``--api-key``, held so that every text masks them."""
    held = []
    for index, arg in enumerate(argv):
        if arg == "--api-key" and index + 1 < len(argv):
            held.append(Secret(argv[index + 1]))
        elif arg.startswith("--api-key="):
            held.append(Secret(arg.partition("=")[2]))
    return held


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mailpartner",
        description="Cancel scheduled emails on the Mail Partner API.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_cancel(commands)
    _add_serve_fake(commands)
    return parser


def _add_cancel(commands: Any) -> None:
    cancel = commands.add_parser(
        "cancel",
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
        help="read ids from a file, one per line ('-' for stdin); blank lines and "
        "lines starting with # are skipped",
    )
    cancel.add_argument(
        "--concurrency", type=_positive_int, default=None, help="requests in flight at once"
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
        help="share the rate limit with every client on this Redis (the redis extra)",
    )
    cancel.add_argument("--redis-key", default="mailpartner", help="the shared budget's key")
    cancel.add_argument("--format", choices=("json", "xml"), default="json", dest="fmt")
    cancel.add_argument("--base-url", help="API base URL (default: $MAILPARTNER_BASE_URL)")
    cancel.add_argument(
        "--api-key",
        help=f"API key (default: ${API_KEY_ENV}; prefer the variable: "
        "arguments are visible to other users of the machine)",
    )
    cancel.add_argument(
        "--sandbox",
        action="store_true",
        help="run against an in-process fake API where every id is scheduled an hour ahead",
    )


def _add_serve_fake(commands: Any) -> None:
    serve = commands.add_parser(
        "serve-fake",
        help="serve the fake API over HTTP at /v1/message-cancel",
        description="Serve FakeMailPartner over HTTP, for any client (even curl).",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8025)
    serve.add_argument("--api-key", default="test-key")
    serve.add_argument(
        "--schedule-unknown",
        action="store_true",
        help="take any id not seen before as scheduled an hour ahead",
    )
    serve.add_argument(
        "--rate-limit-per-minute",
        type=_positive_int,
        default=None,
        metavar="N",
        help="answer code 429 past N requests in 60 seconds, as the provider does",
    )


def _positive_int(text: str) -> int:
    try:
        return check_count("the value", int(text), minimum=1)
    except ValueError:  # ConfigurationError is one too
        raise argparse.ArgumentTypeError(
            f"must be an integer of at least 1, got {text!r}"
        ) from None


def _rate_limit(text: str) -> int | None:
    if text.strip().lower() == "none":
        return None
    return _positive_int(text)


def _read_ids(stream: IO[str]) -> Iterator[str]:
    for line in stream:
        text = line.strip()
        if text and not text.startswith("#"):
            yield text


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


def _summary(progress: BatchProgress) -> str:
    parts = [f"{progress.cancelled} cancelled"]
    for label, count in (
        ("already cancelled", progress.already_cancelled),
        ("too late", progress.too_late),
        ("already sent", progress.already_sent),
        ("not found", progress.not_found),
        ("failed", progress.failed),
    ):
        if count:
            parts.append(f"{count} {label}")
    return f"{', '.join(parts)} (of {progress.done})"


async def _cancel(args: argparse.Namespace, ids: Iterator[str], out: TextIO, err: TextIO) -> int:
    if args.sandbox:
        from .testing import FakeMailPartner

        fake = FakeMailPartner(schedule_unknown=True)
        client = fake.async_client(response_format=args.fmt)
    else:
        api_key = resolve_api_key(args.api_key)
        if api_key is None:
            raise _UsageError(f"no API key: set ${API_KEY_ENV} or pass --api-key")
        client = AsyncMailPartner(
            api_key,
            base_url=args.base_url,
            response_format=args.fmt,
            rate_limit=args.rate_limit,
            rate_limiter=_shared_limiter(args),
        )

    source_error: IdsSourceError | None = None
    with ExitStack() as stack:
        bar = _progress_bar(stack, err)
        async with (
            client,
            client.cancel_iter(ids, concurrency=args.concurrency) as outcomes,
        ):
            try:
                async for outcome in outcomes:
                    print(_outcome_line(outcome), file=out, flush=True)
                    if bar is not None:
                        bar()
            except IdsSourceError as exc:
                source_error = exc  # every id sent was reported above
    progress = outcomes.progress  # the batch keeps the counts as outcomes arrive
    if source_error is not None:
        print(_summary(progress), file=err)
        raise _UsageError(_unreadable(source_error.__cause__))
    if progress.done == 0:
        raise _UsageError("no message ids given: pass IDs or --from-file")
    print(_summary(progress), file=err)
    return EXIT_OK if progress.cancelled == progress.done else EXIT_NOT_ALL_CANCELLED


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
            "--redis-url needs the redis extra: pip install 'mailpartner-async[redis]'"
        ) from None
    return RedisRateLimiter(args.redis_url, rate_limit=args.rate_limit, key=args.redis_key)


def _unreadable(cause: BaseException | None) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return f"the ids are not UTF-8 text (byte {cause.object[cause.start]:#04x}); stopped there"
    return f"reading the ids failed ({type(cause).__name__}); stopped there"


def _progress_bar(stack: ExitStack, err: TextIO) -> Any:
    """A callable advancing a progress bar on ``err``, or None when it is no terminal."""
    if not err.isatty():
        return None
    try:
        from rich.console import Console
        from rich.progress import Progress
    except ImportError:  # pragma: no cover - rich comes with the cli extra
        return None
    bar = stack.enter_context(Progress(console=Console(file=err), transient=True))
    task = bar.add_task("cancelling", total=None)
    return lambda: bar.advance(task)


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        raise _UsageError(
            "serve-fake needs the cli extra: pip install 'mailpartner-async[cli]'"
        ) from None
    from .testing import FakeMailPartner

    fake = FakeMailPartner(
        args.api_key,
        schedule_unknown=args.schedule_unknown,
        rate_limit_per_minute=args.rate_limit_per_minute,
    )
    print(
        f"fake Mail Partner API on http://{args.host}:{args.port}/v1/message-cancel "
        f"(API key {args.api_key!r}); Ctrl+C stops it",
        file=sys.stderr,
    )
    uvicorn.run(fake.asgi_app, host=args.host, port=args.port, access_log=False)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    held = _hold_keys(argv)  # noqa: F841 - alive while main runs: redact() masks them
    parser = _parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        if args.command == "cancel" and not any(extra.startswith("-") for extra in extras):
            args.ids.extend(extras)  # argparse fills `ids` once: take ids after an option
        else:
            # Name unknown flags only: a mistyped --api-key must not echo the key.
            flags = sorted({extra.split("=", 1)[0] for extra in extras if extra.startswith("-")})
            parser.error(f"unrecognized arguments: {' '.join(flags) or 'extra values'}")
    try:
        if args.command == "serve-fake":
            return _serve(args)
        if args.sandbox and args.base_url:
            raise _UsageError("--sandbox and --base-url exclude each other")
        with ExitStack() as stack:
            sources: list[Iterator[str]] = [iter(args.ids)]
            if args.from_file == "-":
                sources.append(_read_ids(sys.stdin))
            elif args.from_file:
                try:
                    handle = stack.enter_context(open(args.from_file, encoding="utf-8"))
                except OSError as exc:
                    raise _UsageError(f"cannot read {args.from_file}: {exc.strerror}") from None
                sources.append(_read_ids(handle))
            ids = (message_id for source in sources for message_id in source)
            return anyio.run(_cancel, args, ids, sys.stdout, sys.stderr)
    except (_UsageError, ConfigurationError) as exc:
        print(f"mailpartner: error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mailpartner: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
