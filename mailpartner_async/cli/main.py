"""The command line's entry point: parse, dispatch, and run ``mailpartner cancel``.

Exit status: 0 when no id will go out (each was cancelled now or already), 1 when
any may (not found, too late, already sent, an error, or the batch stopped before
every id had its outcome), 2 for a usage or configuration error, 130 on Ctrl+C
(after the summary so far). Whatever ends the run early, the summary so far and one
``mailpartner: error:`` line come on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import TextIO

import anyio

from .. import (
    AsyncBatch,
    AsyncMailPartner,
    BatchProgress,
    ConfigurationError,
    IdsSourceError,
    Journal,
    MailPartnerError,
    ScheduledMessage,
    plan_rescue,
)
from .._compat import RateLimiter
from .._core.models import BatchItem
from .._core.secrets import redact
from .._core.settings import API_KEY_ENV, resolve_api_key
from .errors import EXIT_INTERRUPTED, EXIT_NOT_ALL_CANCELLED, EXIT_OK, EXIT_USAGE, UsageError
from .inputs import Items, ids_to_cancel, unreadable
from .ledger import OutcomeLedger
from .output import none_goes_out, outcome_line, summary
from .parser import build_parser, hold_keys, parse
from .progress import ProgressDisplay, open_display

__all__ = ["main"]

# After Ctrl+C, how long the calls in flight may take to answer.
INTERRUPT_GRACE_SECONDS = 3.0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    held = hold_keys(argv)  # noqa: F841 - alive while main runs: redact() masks them
    args = parse(build_parser(), argv)
    try:
        if args.command == "serve-fake":
            from .serve_fake import serve

            return serve(args)
        return _run_cancel(args)
    except (UsageError, ConfigurationError) as exc:
        print(f"mailpartner: error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mailpartner: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run_cancel(args: argparse.Namespace) -> int:
    """Read the ids, print the plan when there is one, then run the batch."""
    _check_cancel_args(args)
    with ExitStack() as stack:
        items, total = ids_to_cancel(
            args.ids, args.from_file, timezone=args.timezone, dry_run=args.dry_run, stack=stack
        )
        if isinstance(items, list):
            if not items and args.from_file is not None:
                raise UsageError(f"no ids in {args.from_file}")
            if args.dry_run or any(isinstance(item, ScheduledMessage) for item in items):
                rate = None if args.sandbox else args.rate_limit
                _print_plan(items, rate, sys.stderr)
            if args.dry_run:
                return EXIT_OK
        return anyio.run(_cancel, args, items, total, sys.stdout, sys.stderr)


def _check_cancel_args(args: argparse.Namespace) -> None:
    if args.sandbox and args.base_url:
        raise UsageError("--sandbox and --base-url exclude each other")
    if args.sandbox and args.api_key is not None:
        raise UsageError("--sandbox and --api-key exclude each other (the sandbox has its own)")


def _print_plan(items: Sequence[BatchItem], rate_limit: int | None, err: TextIO) -> None:
    plan = plan_rescue(items, now=datetime.now(UTC), rate_limit=rate_limit)
    print(plan.describe(), file=err, flush=True)


async def _cancel(
    args: argparse.Namespace, items: Items, total: int | None, out: TextIO, err: TextIO
) -> int:
    client = _client(args)
    journal = Journal(args.journal) if args.journal else None
    ledger = OutcomeLedger(items)
    with ExitStack() as stack:
        if journal is not None:
            stack.enter_context(journal)
            if total is not None:
                # A rerun: the ids the journal holds as final get no outcome. Exact
                # when the input is the one the journal was written for.
                total = max(total - journal.previous.done, 0)
        display = open_display(stack, out, err, total)
        async with client:
            batch = client.cancel_iter(ledger, concurrency=args.concurrency, journal=journal)
            interrupted, error = await _run(batch, ledger, out, display)
    print(summary(batch.progress, journal), file=err)  # counted as outcomes arrived
    if interrupted:
        print("mailpartner: interrupted; rerun with the same --journal to go on", file=err)
        return EXIT_INTERRUPTED
    if isinstance(error, IdsSourceError):
        raise UsageError(unreadable(error.__cause__))
    unfinished = _unfinished(error, ledger, journal)
    if unfinished is not None:
        print(f"mailpartner: error: {unfinished}; rerun with the same --journal to go on", file=err)
        return EXIT_NOT_ALL_CANCELLED
    return _exit_status(args, batch.progress, journal)


def _unfinished(
    error: MailPartnerError | None, ledger: OutcomeLedger, journal: Journal | None
) -> str | None:
    """Why the batch did not finish, in one line; None when it did."""
    if error is not None:
        text = " ".join(redact(str(error)).split())
        return f"the batch stopped before every id had its outcome: {text}"
    return ledger.unfinished(journal)


def _exit_status(args: argparse.Namespace, progress: BatchProgress, journal: Journal | None) -> int:
    """0 when no id will go out, this run and the journal's earlier ones together."""
    earlier = journal.previous if journal is not None else BatchProgress()
    if progress.done == 0 and earlier.done == 0:
        where = f"in {args.from_file}" if args.from_file not in (None, "-") else "given"
        raise UsageError(f"no ids {where}: pass IDs or --from-file")
    ok = none_goes_out(progress) and none_goes_out(earlier)
    return EXIT_OK if ok else EXIT_NOT_ALL_CANCELLED


async def _run(
    batch: AsyncBatch, ledger: OutcomeLedger, out: TextIO, display: ProgressDisplay | None
) -> tuple[bool, MailPartnerError | None]:
    """Print each outcome; on Ctrl+C start nothing new and give the calls in flight
    a few seconds. Returns (interrupted, the error that ended the batch early)."""
    error: MailPartnerError | None = None
    async with anyio.create_task_group() as group:
        with anyio.CancelScope() as reading:
            interrupts = _Interrupts(batch, reading)
            group.start_soon(interrupts.watch)
            error = await _print_outcomes(batch, ledger, out, display)
        group.cancel_scope.cancel()
    return interrupts.seen, error


async def _print_outcomes(
    batch: AsyncBatch, ledger: OutcomeLedger, out: TextIO, display: ProgressDisplay | None
) -> MailPartnerError | None:
    """Print each outcome as it comes; returns the error that ended the batch early:
    the ids source's (``IdsSourceError``) or the batch's own, with the outcomes so far
    printed. Caught here, inside the task group, so that it is not wrapped in a group."""
    try:
        async with batch:
            async for outcome in batch:
                if display is None:
                    print(outcome_line(outcome), file=out, flush=True)
                else:
                    display.line(outcome_line(outcome), batch.progress)
                ledger.printed(outcome)
    except MailPartnerError as exc:
        return exc
    return None


class _Interrupts:
    """Ctrl+C while a batch runs: the first starts no other id and gives the calls in
    flight a few seconds (``reading`` ends then); a second stops waiting at once."""

    def __init__(self, batch: AsyncBatch, reading: anyio.CancelScope) -> None:
        self._batch = batch
        self._reading = reading
        self.seen = False

    async def watch(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT) as signals:
            async for _ in signals:
                self._interrupted()

    def _interrupted(self) -> None:
        if not self.seen:
            self.seen = True
            self._batch.stop_starting()
            self._reading.deadline = anyio.current_time() + INTERRUPT_GRACE_SECONDS
        else:
            self._reading.cancel()  # a second Ctrl+C: stop waiting


def _client(args: argparse.Namespace) -> AsyncMailPartner:
    """The client the options ask for: the sandbox's, or the API's with its key."""
    if args.sandbox:
        from ..testing import FakeMailPartner

        fake = FakeMailPartner(schedule_unknown=True)
        return fake.async_client(response_format=args.fmt)
    api_key = resolve_api_key(args.api_key)
    if api_key is None:
        raise UsageError(f"no API key: set ${API_KEY_ENV} or pass --api-key")
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
            raise UsageError(
                str(exc).replace("allow_insecure_http=True", "--allow-insecure-http")
            ) from None
        raise


def _shared_limiter(args: argparse.Namespace) -> RateLimiter | None:
    if args.redis_url is None:
        return None
    if args.rate_limit is None:
        raise UsageError(
            "--redis-url shares a rate limit: it needs a number, not --rate-limit none"
        )
    try:
        from ..redis import RedisRateLimiter
    except ImportError:
        raise UsageError(
            "--redis-url needs the redis extra: "
            "pip install '.[redis]' in a clone of the repository (not on PyPI yet)"
        ) from None
    try:
        return RedisRateLimiter(args.redis_url, rate_limit=args.rate_limit, key=args.redis_key)
    except ConfigurationError as exc:
        raise UsageError(f"--redis-url: {exc}; give one like redis://host:6379/0") from None
