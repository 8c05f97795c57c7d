"""Reading the command line's id files: plain ids, CSV or JSON lines with send times.

The first line that is not blank or a ``#`` comment decides the format:

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
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, tzinfo
from typing import Any

from .._models import BatchItem, ScheduledMessage

__all__ = ["parse_send_at", "read_items"]

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
