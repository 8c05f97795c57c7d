"""The ids to cancel: from the arguments, a file or standard input, in any of three forms.

:func:`ids_to_cancel` opens the input and decides how to read it (all at once, in two
passes, or once as it comes). :func:`read_items` reads an id file's lines; the first
line that is not blank or a ``#`` comment decides the format:

- a JSON object (``{...}``): JSON lines, each with ``message_id`` (or the provider's
  ``messageId``) and ``send_at`` (or ``scheduledDeliveryDate``);
- a CSV header naming a ``message_id`` (or ``messageId``) column, and optionally
  ``send_at`` (or ``scheduledDeliveryDate``);
- anything else: one id a line.

A send time is ISO 8601 with an offset (``2020-09-25T12:00:00+02:00``, ``...Z``) or,
without one, a local time in ``timezone`` (the provider's
``"2020-09-25 12:00:00"``, read as Europe/Paris by default). A UTF-8 byte-order
mark is ignored. A line that cannot be read is a ``ValueError`` naming it.
"""

from __future__ import annotations

import csv
import itertools
import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from datetime import datetime, tzinfo
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .. import ScheduledMessage
from .._core.models import BatchItem
from .errors import UsageError

__all__ = ["Items", "ids_to_cancel", "parse_send_at", "read_items", "unreadable"]

Items = Sequence[BatchItem] | Iterator[BatchItem]


def ids_to_cancel(
    ids: Sequence[str], from_file: str | None, *, timezone: str, dry_run: bool, stack: ExitStack
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
    read = read_items(stream, zone)
    first = _first_item(read, from_file)
    if isinstance(first, ScheduledMessage) or dry_run:
        items = [*ids, *_all_items(read, from_file, first)]
        return items, len(items)
    head: list[BatchItem] = [*ids] if first is None else [*ids, first]
    if start is None:
        return itertools.chain(head, read), None
    total = len(head) + _count(read, from_file)
    stream.seek(start)
    again = read_items(stream, zone)
    next(again, None)  # the first item, already in head
    return itertools.chain(head, again), total


def unreadable(cause: BaseException | None) -> str:
    """Why the ids stopped part-way through a run (``cause``: what reading them raised)."""
    if isinstance(cause, UnicodeDecodeError):
        return f"{_not_utf8(cause)}; stopped there"
    return f"reading the ids failed ({type(cause).__name__}); stopped there"


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
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None


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
    if isinstance(exc, UnicodeDecodeError):
        return f"{name}: {_not_utf8(exc)}; nothing was sent"
    return f"{name}: {exc}"


def _not_utf8(error: UnicodeDecodeError) -> str:
    return f"the ids are not UTF-8 text (byte {error.object[error.start]:#04x})"


# --- the id file's forms ------------------------------------------------------------

_ID_KEYS = ("message_id", "messageId", "messageid", "id")
_TIME_KEYS = ("send_at", "scheduledDeliveryDate", "scheduleddeliverydate")


def parse_send_at(text: str, timezone: tzinfo) -> datetime:
    """An aware send time from ISO 8601; without an offset it is local to ``timezone``."""
    value = datetime.fromisoformat(text.strip())
    if value.utcoffset() is None:
        value = value.replace(tzinfo=timezone)
    return value


def read_items(lines: Iterable[str], timezone: tzinfo) -> Iterator[BatchItem]:
    """The ids (or scheduled messages) of an id file, lazily, in file order."""
    content = _content(lines)
    first = next(content, None)
    if first is None:
        return
    _, text = first
    if text.startswith("{"):
        yield from _json_lines(_chain(first, content), timezone)
    elif "," in text and _header_id(next(csv.reader([text]))) is not None:
        yield from _csv_rows(_chain(first, content), timezone)
    else:
        yield text
        yield from (text for _, text in content)


def _content(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(lines, start=1):
        text = line.lstrip("\ufeff").strip() if number == 1 else line.strip()
        if text and not text.startswith("#"):
            yield number, text


def _chain(first: tuple[int, str], rest: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    yield first
    yield from rest


def _json_lines(lines: Iterator[tuple[int, str]], timezone: tzinfo) -> Iterator[BatchItem]:
    for number, text in lines:
        try:
            record = json.loads(text)
        except ValueError:
            raise ValueError(f"line {number}: not a JSON object") from None
        if not isinstance(record, dict):
            raise ValueError(f"line {number}: not a JSON object")
        yield _item(record, number, timezone)


def _csv_rows(lines: Iterator[tuple[int, str]], timezone: tzinfo) -> Iterator[BatchItem]:
    numbers: list[int] = []

    def texts() -> Iterator[str]:
        for number, text in lines:
            numbers.append(number)
            yield text

    for row in csv.DictReader(texts()):
        yield _item(row, numbers[-1], timezone)


def _item(record: Mapping[str, Any], number: int, timezone: tzinfo) -> BatchItem:
    message_id = _first(record, _ID_KEYS)
    if message_id is None or not str(message_id).strip():
        raise ValueError(f"line {number}: no message_id")
    send_at = _first(record, _TIME_KEYS)
    if send_at is None or not str(send_at).strip():
        return str(message_id).strip()
    try:
        when = parse_send_at(str(send_at), timezone)
    except ValueError:
        raise ValueError(f"line {number}: send_at {str(send_at)[:40]!r} is not a date") from None
    return ScheduledMessage(str(message_id).strip(), when)


def _first(record: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in record and record[key] is not None:
            return record[key]
    return None


def _header_id(header: list[str]) -> str | None:
    names = {name.strip() for name in header}
    return next((key for key in _ID_KEYS[:3] if key in names), None)
