"""The journal of ``mailpartner cancel``: bound to the run's target, never the input file.

:func:`open_journal` opens ``--journal`` for the target the options name (the base
URL, a fingerprint of the key, sandbox or real), so that a rehearsal's journal or
another account's is refused (exit 2) unless ``--journal-any-target`` is given.
:func:`held` counts what the journal already holds for the ids given, and
:func:`left` keeps the ids it does not: the plan is made from those.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Iterable, Sequence
from contextlib import ExitStack

from .. import BatchProgress, Journal, ScheduledMessage
from .._core.journal import JournalTarget
from .._core.models import BatchItem
from .._core.settings import API_KEY_ENV, resolve_api_key, resolve_base_url
from .errors import UsageError

__all__ = ["add_held", "check_not_input", "held", "journal_target", "left", "open_journal"]

# The sandbox's requests go nowhere: its journal names no URL and no key.
SANDBOX_TARGET = JournalTarget("sandbox", None, sandbox=True)


def journal_target(args: argparse.Namespace) -> JournalTarget:
    """What a journal of this run is made for."""
    if args.sandbox:
        return SANDBOX_TARGET
    api_key = resolve_api_key(args.api_key)
    if api_key is None:
        raise UsageError(f"no API key: set ${API_KEY_ENV} or pass --api-key")
    base_url = resolve_base_url(args.base_url, allow_insecure_http=args.allow_insecure_http)
    return JournalTarget.of(base_url, api_key)


def open_journal(args: argparse.Namespace, stack: ExitStack) -> Journal | None:
    """The run's journal, open (closed with ``stack``); None without ``--journal``.

    A dry run reads a journal that exists and creates none.
    """
    if not args.journal:
        return None
    check_not_input(args)
    if args.dry_run and not os.path.lexists(args.journal):
        return None
    journal = Journal(args.journal, target=journal_target(args), any_target=args.journal_any_target)
    return stack.enter_context(journal)


def check_not_input(args: argparse.Namespace) -> None:
    """Refuse a journal that is the input file (or the file standard input reads),
    before the input is read."""
    journal, from_file = args.journal, args.from_file
    if not journal or from_file is None:
        return
    try:
        mine = os.stat(journal)
        theirs = os.fstat(sys.stdin.fileno()) if from_file == "-" else os.stat(from_file)
    except (OSError, ValueError):
        return  # no journal yet, or no input to compare: nothing to mix up
    if (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino):
        where = "standard input" if from_file == "-" else f"the input file {from_file}"
        raise UsageError(f"--journal {journal} is {where}: give the journal a path of its own")


def _message_id(item: BatchItem) -> str:
    return str(item.message_id if isinstance(item, ScheduledMessage) else item)


def held(journal: Journal | None, items: Iterable[BatchItem]) -> BatchProgress:
    """The final outcomes ``journal`` holds for ``items``, counted as a batch counts."""
    progress = BatchProgress()
    if journal is None:
        return progress
    for item in items:
        progress = add_held(progress, journal, _message_id(item))
    return progress


def add_held(progress: BatchProgress, journal: Journal, message_id: str) -> BatchProgress:
    """``progress`` with the journal's outcome of ``message_id``, if it holds one."""
    category = journal.outcome_of(message_id)
    if category is None:
        return progress
    changes = {"done": progress.done + 1, category: getattr(progress, category) + 1}
    return dataclasses.replace(progress, **changes)


def left(journal: Journal | None, items: Sequence[BatchItem]) -> list[BatchItem]:
    """The items ``journal`` does not hold as final: what this run has to do."""
    if journal is None:
        return list(items)
    return [item for item in items if not journal.is_final(_message_id(item))]
