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
from datetime import datetime, tzinfo
from typing import TextIO

import anyio

from .. import (
    AsyncBatch,
    BatchProgress,
    ConfigurationError,
    IdsSourceError,
    Journal,
    MailPartnerError,
    ScheduledMessage,
    plan_rescue,
)
from .._core.journal import decided_locally
from .._core.models import BatchItem
from .client_setup import build_client
from .errors import EXIT_INTERRUPTED, EXIT_NOT_ALL_CANCELLED, EXIT_OK, EXIT_USAGE, UsageError
from .inputs import Items, ids_to_cancel, unreadable
from .journaling import check_not_input, held, left, open_journal
from .ledger import OutcomeLedger
from .output import held_line, none_goes_out, nothing_left, outcome_line, summary
from .parser import build_parser, keys_given, parse, redacted
from .progress import ProgressDisplay, open_display
from .server_clock import ServerClock
from .terminal import OUTPUT_CLOSED, is_broken, safe_streams

__all__ = ["main"]

# After Ctrl+C, how long the calls in flight may take to answer.
INTERRUPT_GRACE_SECONDS = 3.0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status. Whatever it prints is made safe
    for the terminal (:mod:`.terminal`)."""
    try:
        with safe_streams():
            return _main(argv)
    except UsageError as exc:  # standard output is closed
        print(f"mailpartner: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _main(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    keys = keys_given(argv)
    args = parse(build_parser(keys), argv)
    args.keys_given = keys  # what every line the run prints masks
    try:
        if args.command == "serve-fake":
            from .serve_fake import serve

            return serve(args)
        if args.command == "rescue":
            from .rescue import run_rescue

            return run_rescue(args)
        return _run_cancel(args)
    except (UsageError, ConfigurationError) as exc:
        # keys_given: the --api-key values, and the rescue's Redis password.
        print(f"mailpartner: error: {redacted(str(exc), args.keys_given)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mailpartner: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run_cancel(args: argparse.Namespace) -> int:
    """Read the ids, open the journal, print the plan for what is left, then run."""
    _check_cancel_args(args)
    check_not_input(args)
    with ExitStack() as stack:
        items, total = ids_to_cancel(
            args.ids,
            args.from_file,
            timezone=args.timezone,
            dry_run=args.dry_run,
            stack=stack,
            dst=args.dst_times,
        )
        journal = open_journal(args, stack)
        if isinstance(items, list):
            if not items and args.from_file is not None:
                raise UsageError(f"no ids in {args.from_file}")
            todo, earlier = left(journal, items), held(journal, items)
            if journal is not None and items and not todo:
                print(nothing_left(journal, earlier), file=sys.stderr)
                return EXIT_OK if none_goes_out(earlier) else EXIT_NOT_ALL_CANCELLED
            if args.dry_run or any(isinstance(item, ScheduledMessage) for item in todo):
                _print_plan(todo, journal, earlier, args, sys.stderr)
            if args.dry_run:
                return EXIT_OK
            total = len(todo)
        return anyio.run(_cancel, args, items, total, journal, sys.stdout, sys.stderr)


def _check_cancel_args(args: argparse.Namespace) -> None:
    if args.sandbox and args.base_url:
        raise UsageError("--sandbox and --base-url exclude each other")
    if args.sandbox and args.api_key is not None:
        raise UsageError("--sandbox and --api-key exclude each other (the sandbox has its own)")


def _print_plan(
    items: Sequence[BatchItem],
    journal: Journal | None,
    earlier: BatchProgress,
    args: argparse.Namespace,
    err: TextIO,
) -> None:
    """The plan for the ids left, in the input's time zone (else the local one)."""
    if journal is not None and earlier.done:
        print(f"plan: {held_line(journal, earlier)}; planning the {len(items)} left", file=err)
    rate = args.rate_limit  # the sandbox's too: it paces as the provider does
    plan = plan_rescue(items, now=datetime.now(_shown_zone(items)), rate_limit=rate)
    print(plan.describe(), file=err, flush=True)


def _shown_zone(items: Sequence[BatchItem]) -> tzinfo | None:
    for item in items:
        if isinstance(item, ScheduledMessage):
            return item.send_at.tzinfo
    return datetime.now().astimezone().tzinfo


async def _cancel(
    args: argparse.Namespace,
    items: Items,
    total: int | None,
    journal: Journal | None,
    out: TextIO,
    err: TextIO,
) -> int:
    client = build_client(args)
    ledger = OutcomeLedger(items, journal)
    with ExitStack() as stack:
        if journal is not None and total is not None and not isinstance(items, list):
            # A rerun of a file read as it goes: its ids the journal holds as final
            # get no outcome. Exact when the input is the one the journal was made for.
            total = max(total - journal.previous.done, 0)
        display = open_display(stack, out, err, total)
        async with client:
            clock = None if args.sandbox else ServerClock()  # the sandbox shares our clock
            batch = client.cancel_iter(
                ledger, concurrency=args.concurrency, journal=journal, clock=clock
            )
            interrupted, error = await _run(batch, ledger, out, display, clock=clock)
    print(_summary(batch.progress, journal, ledger, total), file=err)
    if is_broken(out):
        print(f"mailpartner: error: {OUTPUT_CLOSED}", file=err)
        return EXIT_NOT_ALL_CANCELLED
    if interrupted:
        print("mailpartner: interrupted; rerun with the same --journal to go on", file=err)
        return EXIT_INTERRUPTED
    if isinstance(error, IdsSourceError):
        raise UsageError(unreadable(error.__cause__))
    unfinished = _unfinished(error, ledger, journal, args.keys_given)
    if unfinished is not None:
        print(f"mailpartner: error: {unfinished}; rerun with the same --journal to go on", file=err)
        return EXIT_NOT_ALL_CANCELLED
    return _exit_status(args, batch.progress, ledger.held)


def _summary(
    progress: BatchProgress, journal: Journal | None, ledger: OutcomeLedger, total: int | None
) -> str:
    """The summary (counted as outcomes arrived); one line when the journal held all."""
    if journal is not None and ledger.read_to_end and not progress.done and ledger.held.done:
        return nothing_left(journal, ledger.held)
    never_started = None if total is None else max(total - progress.done, 0)
    return summary(progress, journal, held=ledger.held, never_started=never_started)


def _unfinished(
    error: MailPartnerError | None,
    ledger: OutcomeLedger,
    journal: Journal | None,
    keys: tuple[str, ...],
) -> str | None:
    """Why the batch did not finish, in one line; None when it did."""
    if error is not None:
        text = " ".join(redacted(str(error), keys).split())
        return f"the batch stopped before every id had its outcome: {text}"
    return ledger.unfinished(journal)


def _exit_status(args: argparse.Namespace, progress: BatchProgress, earlier: BatchProgress) -> int:
    """0 when no id will go out, this run's and those the journal held together."""
    if progress.done == 0 and earlier.done == 0:
        where = f"in {args.from_file}" if args.from_file not in (None, "-") else "given"
        raise UsageError(f"no ids {where}: pass IDs or --from-file")
    ok = none_goes_out(progress) and none_goes_out(earlier)
    return EXIT_OK if ok else EXIT_NOT_ALL_CANCELLED


async def _run(
    batch: AsyncBatch,
    ledger: OutcomeLedger,
    out: TextIO,
    display: ProgressDisplay | None,
    *,
    clock: ServerClock | None = None,
) -> tuple[bool, MailPartnerError | None]:
    """Print each outcome; on Ctrl+C start nothing new and give the calls in flight
    a few seconds. Returns (interrupted, the error that ended the batch early)."""
    error: MailPartnerError | None = None
    async with anyio.create_task_group() as group:
        with anyio.CancelScope() as reading:
            interrupts = _Interrupts(batch, reading)
            group.start_soon(interrupts.watch)
            error = await _print_outcomes(batch, ledger, out, display, clock=clock)
        group.cancel_scope.cancel()
    return interrupts.seen, error


async def _print_outcomes(
    batch: AsyncBatch,
    ledger: OutcomeLedger,
    out: TextIO,
    display: ProgressDisplay | None,
    *,
    clock: ServerClock | None = None,
) -> MailPartnerError | None:
    """Print each outcome as it comes; returns the error that ended the batch early:
    the ids source's (``IdsSourceError``) or the batch's own, with the outcomes so far
    printed. Caught here, inside the task group, so that it is not wrapped in a group."""
    unpaced = 0  # outcomes given without a request: they take no time
    try:
        async with batch:
            async for outcome in batch:
                if display is None:
                    print(outcome_line(outcome), file=out, flush=True)
                else:
                    unpaced += decided_locally(outcome)
                    paced = batch.progress.done - unpaced
                    display.line(outcome_line(outcome), batch.progress, paced=paced)
                ledger.printed(outcome)
                if is_broken(out):
                    batch.stop_starting()  # nobody reads the outcomes any more
                warning = None if clock is None else clock.observe(outcome)
                if warning is not None:
                    print(warning, file=sys.stderr, flush=True)
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
