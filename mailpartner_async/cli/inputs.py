"""The ids to cancel: from the arguments, a file or standard input.

:func:`ids_to_cancel` opens the input and decides how to read it (all at once, in two
passes, or once as it comes); the dry run and the run read it the same way. The
file's forms are :func:`~.campaign.read_items`'s. Its text is UTF-8 (a byte-order mark
is skipped), or UTF-16 or UTF-32 with a byte-order mark (Excel's "Unicode text").

A send time is ISO 8601 with an offset (``2020-09-25T12:00:00+02:00``, ``...Z``) or,
without one, a local time in ``timezone`` (the provider's
``"2020-09-25 12:00:00"``, read as Europe/Paris by default), see
:mod:`~.send_times`. A line that cannot be read is a ``ValueError`` naming it,
and a :class:`UsageError` naming the file too before any request.
"""

from __future__ import annotations

import codecs
import io
import itertools
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from typing import BinaryIO, Final, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .. import ScheduledMessage
from .._core.models import BatchItem
from .campaign import read_items
from .errors import UsageError
from .send_times import DstChoice, parse_send_at

__all__ = ["Items", "ids_to_cancel", "parse_send_at", "read_items", "unreadable"]

# Longest first: UTF-32's little-endian mark starts with UTF-16's.
_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

Items = Sequence[BatchItem] | Iterator[BatchItem]


def ids_to_cancel(
    ids: Sequence[str],
    from_file: str | None,
    *,
    timezone: str,
    dry_run: bool,
    stack: ExitStack,
    dst: DstChoice = "refuse",
) -> tuple[Items, int | None]:
    """The ids to cancel, and how many there are (None when unknown).

    With send times (or ``dry_run``) every item is read into a list: the plan needs
    them all. Plain ids from a file are counted first, in a pass that reads and
    checks the whole file, so an unreadable line stops the command before any
    request and the progress line shows the total; then the file is read again as the
    batch goes, so memory stays flat. A pipe is read once, as it comes: no total.
    ``stack`` closes the file.
    """
    if from_file is None:
        return list(ids), len(ids)
    stream = _open_ids(from_file, stack)
    # Where the input starts (a stdin redirected from a file may be read part-way);
    # None for a pipe, which is read once.
    start = stream.tell() if stream.seekable() else None
    zone = _timezone(timezone)
    read = read_items(_text(stream, stack), zone, dst=dst)
    first = _first_item(read, from_file)
    if isinstance(first, ScheduledMessage) or dry_run:
        items = [*ids, *_all_items(read, from_file, first)]
        return items, len(items)
    head: list[BatchItem] = [*ids] if first is None else [*ids, first]
    if start is None:
        return itertools.chain(head, read), None
    total = len(head) + _count(read, from_file)
    stream.seek(start)
    again = read_items(_text(stream, stack), zone, dst=dst)
    next(again, None)  # the first item, already in head
    return itertools.chain(head, again), total


def unreadable(cause: BaseException | None) -> str:
    """Why the ids stopped part-way through a run (``cause``: what reading them raised)."""
    if isinstance(cause, UnicodeDecodeError):
        return f"{_not_utf8(cause)}; stopped there"
    if isinstance(cause, ValueError):
        return f"the ids on standard input: {cause}; stopped there"
    return f"reading the ids failed ({type(cause).__name__}); stopped there"


def _open_ids(name: str, stack: ExitStack) -> BinaryIO:
    if name == "-":
        stdin: TextIO | None = sys.stdin
        if stdin is None:  # stdin closed (`<&-`): Python then has no sys.stdin
            raise UsageError(
                "--from-file -: standard input is closed; pipe the ids in or give a file"
            )
        return stdin.buffer
    try:
        return stack.enter_context(open(name, "rb"))
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None


def _text(stream: BinaryIO, stack: ExitStack) -> Iterator[str]:
    """The lines of ``stream``, decoded as its byte-order mark says (UTF-8 without one),
    whatever the locale says; the stream stays open (stdin is not ours to close)."""
    start = _peek(stream, 4)
    encoding = next((name for bom, name in _BOMS if start.startswith(bom)), "utf-8")
    text = io.TextIOWrapper(stream, encoding=encoding, errors="strict")
    stack.callback(text.detach)
    return iter(text)


def _peek(stream: BinaryIO, size: int) -> bytes:
    peek = getattr(stream, "peek", None)
    if peek is not None:
        return bytes(peek(size)[:size])
    if stream.seekable():
        where = stream.tell()
        start = stream.read(size)
        stream.seek(where)
        return start
    return b""


def _timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown --timezone {name!r} (try Europe/Paris or UTC)") from None


def _first_item(read: Iterator[BatchItem], name: str) -> BatchItem | None:
    try:
        return next(read, None)
    except ValueError as exc:
        raise UsageError(_bad_input(name, exc)) from None


def _all_items(read: Iterator[BatchItem], name: str, first: BatchItem | None) -> list[BatchItem]:
    try:
        return ([] if first is None else [first]) + list(read)
    except ValueError as exc:
        raise UsageError(_bad_input(name, exc)) from None


def _count(read: Iterator[BatchItem], name: str) -> int:
    try:
        return sum(1 for _ in read)
    except ValueError as exc:
        raise UsageError(_bad_input(name, exc)) from None


def _bad_input(name: str, exc: ValueError) -> str:
    """A line saying why the ids could not be read; read before any request."""
    shown = "standard input" if name == "-" else name
    if isinstance(exc, UnicodeDecodeError):
        return f"{shown}: {_not_utf8(exc)}; nothing was sent"
    return f"{shown}: {exc}; nothing was sent"


def _not_utf8(error: UnicodeDecodeError) -> str:
    return (
        f"the ids are not {error.encoding.upper()} text (byte {error.object[error.start]:#04x}):"
        " save the file as UTF-8"
    )
