"""``mailpartner rescue submit|work|status``: one rescue shared by a fleet through Redis.

``submit`` queues the ids of a campaign (read as ``cancel --from-file`` reads them,
refused the same way before anything is queued), then prints how many were new and
the plan for what is left. ``work`` cancels the campaign's ids with a client built
from ``cancel``'s options, on the budget ``--pool`` names, until none is left
anywhere; its exit status is the campaign's, derived from ``stopped``. ``status``
prints the campaign's progress, or ``--json``.

No line printed holds the Redis URL: it may hold a password, which every error line
masks too.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import ExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

import anyio

from .. import BatchProgress, ConfigurationError, MailPartnerError
from .._core.models import BatchItem
from .._extras import install_command
from .client_setup import build_client
from .errors import EXIT_INTERRUPTED, EXIT_NOT_ALL_CANCELLED, EXIT_OK, UsageError
from .inputs import ids_to_cancel
from .output import counts_line, verdict
from .parser import redacted
from .progress import ProgressDisplay, open_display
from .rescue_parser import REDIS_URL_ENV
from .rescue_status import status_json, status_lines

if TYPE_CHECKING:
    from ..redis import AsyncRedisRescue, RescueStatus

__all__ = ["redis_secrets", "run_rescue"]

# How often the progress line of ``work`` reads the campaign's status.
STATUS_EVERY_SECONDS = 1.0


def run_rescue(args: argparse.Namespace) -> int:
    """Run ``rescue submit``, ``work`` or ``status``; returns the exit status."""
    url = args.redis_url or os.environ.get(REDIS_URL_ENV, "").strip()
    if not url:
        raise UsageError(f"no Redis: pass --redis-url URL or set ${REDIS_URL_ENV}")
    args.redis_url = url
    args.keys_given = (*args.keys_given, *redis_secrets(url))
    try:
        import mailpartner_async.redis  # noqa: F401 - the extra, named when missing
    except ImportError:
        raise UsageError(f"rescue needs the redis extra: {install_command('redis')}") from None
    step = {"submit": _submit, "work": _work, "status": _status}[args.rescue_command]
    try:
        return step(args)
    except KeyboardInterrupt:
        print(
            f"mailpartner: interrupted; the ids this worker held go back to the queue "
            f"after the lease ({getattr(args, 'lease', 30.0):g} s)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


def redis_secrets(url: str) -> tuple[str, ...]:
    """The password a Redis URL holds (``redis://:PASSWORD@host``, ``?password=``), as
    written and decoded: every line printed masks them."""
    try:
        parts = urlsplit(url)
        secrets = [parts.password or "", *parse_qs(parts.query).get("password", [])]
    except ValueError:  # no password can be read from it, nor by redis-py
        return ()
    return tuple({text for secret in secrets if secret for text in (secret, unquote(secret))})


def _open(args: argparse.Namespace, **options: Any) -> AsyncRedisRescue:
    """The campaign's rescue; a URL or a name it refuses is a usage error."""
    from ..redis import AsyncRedisRescue

    try:
        return AsyncRedisRescue(args.redis_url, campaign=args.campaign, **options)
    except ConfigurationError as exc:
        if "campaign" in str(exc):
            raise UsageError(f"--campaign: {exc}") from None
        raise UsageError(f"--redis-url: {exc}; give one like redis://host:6379/0") from None


@asynccontextmanager
async def _reached(args: argparse.Namespace, rescue: AsyncRedisRescue) -> AsyncIterator[None]:
    """Redis away, or answering what the rescue never writes: a usage error saying so."""
    from ..redis import RedisUnavailableError

    try:
        yield
    except RedisUnavailableError as exc:
        reason = " ".join(redacted(str(exc), args.keys_given).split()) or "no answer"
        raise UsageError(
            f"cannot use the Redis of --redis-url ({type(exc).__name__}: {reason}); "
            "check the URL and that Redis is running"
        ) from None


async def _existing(args: argparse.Namespace, rescue: AsyncRedisRescue) -> RescueStatus:
    """The campaign's status; a campaign with no id queued is a usage error."""
    async with _reached(args, rescue):
        status = await rescue.status()
    if status.submitted == 0:
        raise UsageError(
            f"no campaign {args.campaign!r} on this Redis: queue its ids first with "
            f"mailpartner rescue submit --campaign {args.campaign} --from-file PATH"
        )
    return status


# --- submit ---------------------------------------------------------------------------


def _submit(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        items, _ = ids_to_cancel(
            args.ids,
            args.from_file,
            timezone=args.timezone,
            dry_run=True,  # every line read and checked before anything is queued
            stack=stack,
            dst=args.dst_times,
        )
    assert isinstance(items, list)
    if not items:
        where = f"in {args.from_file}" if args.from_file not in (None, "-") else "given"
        raise UsageError(f"no ids {where}: pass IDs or --from-file")
    return anyio.run(_submit_all, args, items, sys.stdout)


async def _submit_all(args: argparse.Namespace, items: Sequence[BatchItem], out: TextIO) -> int:
    rescue = _open(args)
    async with _reached(args, rescue), rescue:
        added = await rescue.submit(items)
        status = await rescue.status()
        plan = await rescue.plan(pools=args.pools, rate_limit=args.rate_limit)
    others = len(items) - added
    again = f" (the other {others} were queued already)" if others else ""
    print(
        f"submit: {added} of {len(items)} ids newly queued{again}; the campaign "
        f"{args.campaign!r} holds {status.submitted} ids, {status.left} not final yet",
        file=out,
    )
    print(plan.describe(), file=out, flush=True)
    return EXIT_OK


# --- status ---------------------------------------------------------------------------


def _status(args: argparse.Namespace) -> int:
    return anyio.run(_show_status, args, sys.stdout)


async def _show_status(args: argparse.Namespace, out: TextIO) -> int:
    rescue = _open(args)
    async with _reached(args, rescue), rescue:
        status = await _existing(args, rescue)
    text = status_json(status) if args.json else "\n".join(status_lines(status))
    print(text, file=out, flush=True)
    return EXIT_OK


# --- work -----------------------------------------------------------------------------


def _work(args: argparse.Namespace) -> int:
    if args.sandbox:
        raise UsageError(
            "rescue work has no --sandbox: its outcomes would be recorded in the campaign "
            "as real ones; rehearse with mailpartner serve-fake, --base-url and a campaign "
            "of its own"
        )
    return anyio.run(_work_on, args, sys.stderr)


async def _work_on(args: argparse.Namespace, err: TextIO) -> int:
    # cancel's key, URL and pace, on the budget of --pool; --rate-limit none: no budget
    # (a local fake), so no shared rate limit either.
    shared = argparse.Namespace(**vars(args))
    shared.redis_url = None if args.rate_limit is None else args.redis_url
    client = build_client(shared)
    rescue = _open(args, lease=args.lease)
    async with _reached(args, rescue), rescue:
        before = await _existing(args, rescue)
        try:
            async with client:
                progress = await _work_showing(rescue, client, before, err)
        except MailPartnerError as exc:
            text = " ".join(redacted(str(exc), args.keys_given).split())
            print(f"mailpartner: error: the worker stopped: {text}", file=err)
            return EXIT_NOT_ALL_CANCELLED
        after = await rescue.status()
    print(_work_summary(args.campaign, progress, after), file=err, flush=True)
    done = after.left == 0 and after.final.going_out == 0
    return EXIT_OK if done else EXIT_NOT_ALL_CANCELLED


async def _work_showing(
    rescue: AsyncRedisRescue, client: Any, before: RescueStatus, err: TextIO
) -> BatchProgress:
    """``rescue.work(client)``, with the campaign's progress line on a terminal."""
    with ExitStack() as stack:
        display = open_display(stack, err, err, before.submitted)
        if display is None:
            return await rescue.work(client)
        async with anyio.create_task_group() as group:
            group.start_soon(_show_progress, rescue, display, before.final.done)
            progress = await rescue.work(client)
            group.cancel_scope.cancel()
        return progress


async def _show_progress(rescue: AsyncRedisRescue, display: ProgressDisplay, start: int) -> None:
    """The campaign's counts every second; the rate counts what was final since this
    worker started. A reading Redis cannot give is skipped: the worker says why."""
    from ..redis import RedisUnavailableError

    while True:
        try:
            status = await rescue.status()
        except RedisUnavailableError:
            pass
        else:
            display(status.final, paced=max(status.final.done - start, 0))
        await anyio.sleep(STATUS_EVERY_SECONDS)


def _work_summary(campaign: str, progress: BatchProgress, after: RescueStatus) -> str:
    """The campaign's verdict, derived from ``stopped``, then this worker's counts."""
    never_started = after.left
    return (
        f"campaign {campaign!r}: {verdict(after.final, BatchProgress(), never_started)}\n"
        f"{counts_line('this worker', progress)}"
    )
